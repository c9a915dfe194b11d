"""Java apps built with Maven or Gradle (Spring Boot included)."""

from __future__ import annotations

import re

from starforge_dag.railpack.plan import Cache
from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, sh

DEFAULT_JDK_VERSION = "21"
POM_FILES = tuple(f"pom.{ext}" for ext in ("xml", "atom", "clj", "groovy", "rb", "scala", "yaml", "yml"))


class JavaProvider(StepLayoutProvider):
    """Apps with a Gradle wrapper or a Maven pom."""

    name = "java"
    looked_for = "pom.xml, gradlew or build.gradle"

    def detect_app(self, ctx: Context) -> bool:
        """gradlew or pom.* at the root."""
        return ctx.app.has_any("gradlew", *POM_FILES)

    def start_command_help(self) -> str:
        """Java apps run the built jar."""
        return "make the build produce a runnable jar in target/ (Maven) or build/libs/ (Gradle)"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Build the jar with the wrapper or the tool, run it with java -jar."""
        gradle = ctx.app.has_file("gradlew")
        plan = ProviderPlan()
        if gradle:
            ctx.metadata["buildTool"] = "gradle"
            wrapper = ctx.app.read_text("gradle/wrapper/gradle-wrapper.properties") or ""
            match = re.search(r"gradle-(\d+)[.\d]*-(?:bin|all)\.zip", wrapper)
            gradle_major = int(match.group(1)) if match else None
            jdk_default = "8" if gradle_major is not None and gradle_major <= 5 else DEFAULT_JDK_VERSION
            plan.packages["java"] = ctx.resolve("java", jdk_default, ctx.env_version("jdk"))
            if gradle_version := ctx.env.railpack("GRADLE_VERSION"):
                plan.packages["gradle"] = ctx.resolve("gradle", gradle_version, ctx.env_version("gradle"))
            plan.caches["gradle"] = Cache(directory="/root/.gradle")
            plan.build_caches = ["gradle"]
            plan.build = [sh("chmod +x gradlew"), sh("./gradlew clean build -x check -x test -Pproduction")]
            jar = "$(ls -1 build/libs/*jar | grep -v plain)"
        else:
            ctx.metadata["buildTool"] = "maven"
            plan.packages["java"] = ctx.resolve("java", DEFAULT_JDK_VERSION, ctx.env_version("jdk"))
            mvn = "mvn"
            if ctx.app.has_file("mvnw"):
                mvn = "./mvnw"
                plan.build.append(sh("chmod +x mvnw"))
            else:
                plan.packages["maven"] = ctx.resolve("maven", "latest")
            plan.caches["maven"] = Cache(directory="/root/.m2/repository")
            plan.build_caches = ["maven"]
            plan.build.append(
                sh(f"{mvn} -DoutputFile=target/mvn-dependency-list.log -B -DskipTests clean dependency:list install")
            )
            jar = "target/*jar"
        spring = _uses_spring_boot(ctx, gradle)
        if spring:
            ctx.metadata["framework"] = "spring-boot"
        port = " -Dserver.port=$PORT" if spring else ""
        plan.start_command = f"java $JAVA_OPTS{port} -jar {jar}"
        plan.deploy_inputs = [build_layer(".")]
        return plan


def _uses_spring_boot(ctx: Context, gradle: bool) -> bool:
    names = ("build.gradle", "build.gradle.kts") if gradle else POM_FILES
    return any("spring-boot" in (ctx.app.read_text(n) or "") for n in names if ctx.app.has_file(n))
