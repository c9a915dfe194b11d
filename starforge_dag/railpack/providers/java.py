"""Java apps: Gradle (wrapper) and Maven builds, deployed with a JDK-only runtime toolset."""

from __future__ import annotations

import re

from starforge_dag.railpack.context import GenerateContext, MiseStepBuilder, local_layer, run
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider

DEFAULT_JDK_VERSION = "21"
DEFAULT_GRADLE_VERSION = "8"
_WRAPPER_URL = re.compile(r"(distributionUrl[\S].*[gradle])(-)([0-9|\.]*)")
_WRAPPER_VERSION = re.compile(r"""^(?:[\sa-zA-Z-"']*)(\d*)(?:\.*)(\d*)(?:\.*\d*)(?:["']?)$""")
SPRING_GRADLE_MARKERS = (
    "org.springframework.boot:spring-boot",
    "spring-boot-gradle-plugin",
    "org.springframework.boot",
    "org.grails:grails-",
)


class JavaProvider(BaseProvider):
    """Apps with a Maven pom or a Gradle wrapper."""

    name = "java"
    looked_for = "pom.xml (or another pom.*) or gradlew"

    def detect(self, ctx: GenerateContext) -> bool:
        """A pom of any flavour or a gradlew at the root."""
        return ctx.source.has_match("pom.{xml,atom,clj,groovy,rb,scala,yaml,yml}") or ctx.source.has_match("gradlew")

    def plan(self, ctx: GenerateContext) -> None:
        """One build step (mise + source), a runtime mise step with only the JDK, the jars deployed."""
        source = ctx.source
        mise = ctx.mise
        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        build.add_input(local_layer())
        gradle = self._uses_gradle(ctx)
        if gradle:
            ctx.info("Using Gradle")
            self._gradle_version(ctx, mise)
            self._jdk_version(ctx, mise)
            if source.has_match("gradlew") and not source.is_executable("gradlew"):
                build.add(run("chmod +x gradlew"))
            build.add(run("./gradlew clean build -x check -x test -Pproduction"))
            build.add_cache(ctx.caches.add("gradle", "/root/.gradle"))
        else:
            ctx.info("Using Maven")
            mise.default("maven", "latest")
            self._jdk_version(ctx, mise)
            if source.has_match("mvnw") and not source.is_executable("mvnw"):
                build.add(run("chmod +x mvnw"))
            maven = (
                "./mvnw"
                if source.has_file("mvnw") and source.has_file(".mvn/wrapper/maven-wrapper.properties")
                else "mvn"
            )
            build.add(
                run(
                    f"{maven} -DoutputFile=target/mvn-dependency-list.log -B -DskipTests clean dependency:list "
                    "install -Pproduction"
                )
            )
            build.add_cache(ctx.caches.add("maven", ".m2/repository"))

        runtime = ctx.new_mise_step("packages:mise:runtime")
        self._jdk_version(ctx, runtime)
        out = "." if source.has_match("**/build/libs/*.jar") or gradle else "target/."
        ctx.deploy.inputs += [runtime.layer(), Layer(step=build.name, include=[out])]
        ctx.deploy.start_command = self._start_command(ctx)
        ctx.set_metadata("javaPackageManager", "gradle" if gradle else "maven")
        spring = (
            source.has_match("**/spring-boot*.jar")
            or source.has_match("**/spring-boot*.class")
            or source.has_match("**/org/springframework/boot/**")
        )
        ctx.set_metadata("javaFramework", "spring-boot" if spring else "")

    def _uses_gradle(self, ctx: GenerateContext) -> bool:
        return ctx.source.has_file("gradlew")

    def _gradle_version(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        gradle = mise.default("gradle", DEFAULT_GRADLE_VERSION)
        if version := ctx.env.railpack("GRADLE_VERSION"):
            mise.version(gradle, version, "RAILPACK_GRADLE_VERSION")
        props = ctx.source.read_text("gradle/wrapper/gradle-wrapper.properties")
        if props is None or not (url := _WRAPPER_URL.search(props)):
            return
        if match := _WRAPPER_VERSION.search(url.group(3)):
            mise.version(gradle, match.group(1), "gradle-wrapper.properties")

    def _jdk_version(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        jdk = mise.default("java", DEFAULT_JDK_VERSION)
        if version := ctx.env.railpack("JDK_VERSION"):
            mise.version(jdk, version, "RAILPACK_JDK_VERSION")
        if self._uses_gradle(ctx):
            gradle = ctx.requests.get("gradle")
            if gradle and gradle.version.isdigit() and int(gradle.version) <= 5:
                mise.version(jdk, "8", "Gradle <= 5")

    def _start_command(self, ctx: GenerateContext) -> str:
        if self._uses_gradle(ctx):
            found = ctx.source.read_first("build.gradle", "build.gradle.kts")
            build_gradle = found[1] if found else ""
            port = "-Dserver.port=$PORT" if any(m in build_gradle for m in SPRING_GRADLE_MARKERS) else ""
            return f"java $JAVA_OPTS -jar {port} $(ls -1 */build/libs/*jar | grep -v plain)"
        if ctx.source.has_match("pom.xml"):
            return f"java {_maven_port(ctx)} $JAVA_OPTS -jar target/*jar"
        return "java $JAVA_OPTS -jar target/*jar"


def _maven_port(ctx: GenerateContext) -> str:
    pom = ctx.source.read_text("pom.xml") or ""
    if "<groupId>org.wildfly.swarm" in pom:
        return "-Dswarm.http.port=$PORT"
    if "<groupId>org.springframework.boot" in pom and "<artifactId>spring-boot" in pom:
        return "-Dserver.port=$PORT"
    return ""
