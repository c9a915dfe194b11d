""".NET apps: restore, publish to `out/`, run the published project."""

from __future__ import annotations

import re

from starforge_dag.railpack.plan import Cache
from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, sh

DEFAULT_DOTNET_VERSION = "6.0.428"


class DotnetProvider(StepLayoutProvider):
    """Apps with a *.csproj at the root."""

    name = "dotnet"
    looked_for = "a *.csproj file"

    def detect_app(self, ctx: Context) -> bool:
        """A project file at the root."""
        return bool(ctx.app.glob("*.csproj"))

    def start_command_help(self) -> str:
        """.NET apps run the published project."""
        return "add a *.csproj project at the root"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """dotnet restore, dotnet publish, run ./out/<project> on $PORT."""
        project = ctx.app.glob("*.csproj")[0]
        name = project[: -len(".csproj")]
        csproj = ctx.app.read_text(project) or ""
        framework = re.search(r"<TargetFramework>\s*net(\d+\.\d+)\s*</TargetFramework>", csproj)
        global_json = ctx.app.read_json("global.json") or {}
        sdk = (global_json.get("sdk") or {}).get("version") if isinstance(global_json, dict) else None
        version = ctx.resolve(
            "dotnet",
            DEFAULT_DOTNET_VERSION,
            (framework.group(1) if framework else None, project),
            (sdk, "global.json"),
            ctx.env_version("dotnet"),
        )
        plan = ProviderPlan(
            packages={"dotnet": version},
            build_apt=["libicu-dev"],
            deploy_apt=["libicu-dev"],
            variables={"ASPNETCORE_ENVIRONMENT": "Production", "DOTNET_CLI_TELEMETRY_OPTOUT": "1"},
            caches={"nuget": Cache(directory="/root/.nuget/packages")},
            install_needs_source=True,
            install_caches=["nuget"],
            build_caches=["nuget"],
        )
        plan.deploy_variables = {"ASPNETCORE_ENVIRONMENT": "Production"}
        ctx.metadata["project"] = name
        plan.install = [sh("dotnet restore")]
        plan.build = [sh("dotnet publish --no-restore -c Release -o out")]
        plan.start_command = f"ASPNETCORE_URLS=http://0.0.0.0:${{PORT:-3000}} ./out/{name}"
        plan.deploy_inputs = [build_layer("out")]
        return plan
