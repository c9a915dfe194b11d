"""ASP.NET and .NET console apps: restore, publish to out/, run the project's binary with the SDK's runtime."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from starforge_dag.railpack.context import GenerateContext, MiseStepBuilder, copy, local_layer, run
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.semver import extract_semver, parse_semver

DEFAULT_DOTNET_VERSION = "8.0"
DOTNET_ROOT = "/mise/installs/dotnet"
NUGET_PACKAGES = "/root/.nuget/packages"
_FRAMEWORK = re.compile(r"(?:net|netcoreapp)(\d+\.\d+)")


class DotnetProvider(BaseProvider):
    """Apps with a *.csproj at the root."""

    name = "dotnet"
    looked_for = "a *.csproj file"

    def detect(self, ctx: GenerateContext) -> bool:
        """A project file at the root."""
        return ctx.source.has_match("*.csproj")

    def start_command_help(self) -> str:
        """How a .NET app starts."""
        return "Railpack publishes the first *.csproj at the root to out/ and runs ./out/<project>."

    def plan(self, ctx: GenerateContext) -> None:
        """mise (dotnet), install (restore), build (publish), the SDK's runtime and out/ deployed."""
        mise = ctx.mise
        self._install_mise_packages(ctx, mise)
        variables = _variables(ctx)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=mise.name))
        install.variables.update(variables)
        install.add(
            copy("nuget.config*"),
            copy("*.csproj"),
            copy("global.json*"),
            run(f"mkdir -p {NUGET_PACKAGES}"),
            run("dotnet restore"),
        )

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        build.add_input(Layer(step=install.name, include=["obj/", NUGET_PACKAGES]))
        build.variables.update(variables)
        build.add_input(local_layer())
        build.add(run("dotnet publish --no-restore -c Release -o out"))

        ctx.deploy.apt_packages.append("libicu-dev")
        ctx.deploy.inputs += [
            Layer(step=mise.name, include=[variables["DOTNET_ROOT"]]),
            Layer(step=build.name, include=["out"]),
        ]
        projects = ctx.source.find_files("*.csproj", max_depth=0)
        if projects:
            project = projects[0].removesuffix(".csproj")
            ctx.deploy.start_command = f"ASPNETCORE_URLS=http://0.0.0.0:${{PORT:-3000}} ./out/{project}"
        ctx.deploy.variables.update(variables)

    def _install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        dotnet = mise.default("dotnet", DEFAULT_DOTNET_VERSION)
        projects = ctx.source.find_files("*.csproj", max_depth=0)
        if projects and (text := ctx.source.read_text(projects[0])) is not None:
            frameworks = _target_frameworks(text)
            if frameworks is None:
                ctx.warn(f"{projects[0]} is not valid XML")
                return
            for version in frameworks:
                if version:
                    mise.version(dotnet, version, "csproj")
                    break
        try:
            sdk = (json.loads(ctx.source.read_text("global.json") or "null") or {}).get("sdk") or {}
        except (ValueError, AttributeError):
            sdk = {}
        sdk_version = sdk.get("version") if isinstance(sdk, dict) else None
        if isinstance(sdk_version, str) and (semver := parse_semver(extract_semver(sdk_version))):
            mise.version(dotnet, "{}.{}.{}".format(*semver), "global.json")
        if env_version := ctx.env.railpack("DOTNET_VERSION"):
            mise.version(dotnet, env_version, "RAILPACK_DOTNET_VERSION")
        mise.use_mise_versions(["dotnet"])


def _target_frameworks(text: str) -> list[str] | None:
    """Per PropertyGroup, the version its TargetFramework (or first of TargetFrameworks) names; None for bad XML."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    versions = []
    for group in root:
        if _local(group.tag) != "PropertyGroup":
            continue
        fields = {_local(child.tag): (child.text or "") for child in group}
        version = ""
        if single := fields.get("TargetFramework", ""):
            version = _framework_version(single)
        if not version and (several := fields.get("TargetFrameworks", "")):
            version = _framework_version(several.split(";")[0])
        versions.append(version)
    return versions


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _framework_version(framework: str) -> str:
    match = _FRAMEWORK.search(framework)
    return match.group(1) if match else ""


def _variables(ctx: GenerateContext) -> dict[str, str]:
    requested = ctx.requests.get("dotnet")
    version = requested.version if requested and requested.version else DEFAULT_DOTNET_VERSION
    return {
        "ASPNETCORE_ENVIRONMENT": "Production",
        "ASPNETCORE_CONTENTROOT": "/app/out",
        "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
        "DOTNET_ROOT": f"{DOTNET_ROOT}/{version}",
    }
