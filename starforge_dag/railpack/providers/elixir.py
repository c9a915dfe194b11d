"""Elixir apps: Mix releases, Erlang matched to the Elixir version, Phoenix assets with Node from assets/."""

from __future__ import annotations

import re

from starforge_dag.railpack.context import CommandStepBuilder, GenerateContext, MiseStepBuilder, copy, run
from starforge_dag.railpack.plan import CopyCommand, Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.providers.node import NodeProvider
from starforge_dag.railpack.semver import extract_semver, parse_semver
from starforge_dag.railpack.source import SourceTree

DEFAULT_ERLANG_VERSION = "27.3"
DEFAULT_ELIXIR_VERSION = "1.18"
MIX_ROOT = "/root/.mix"
ELIXIR_VARIABLES = {
    "LANG": "en_US.UTF-8",
    "LANGUAGE": "en_US:en",
    "LC_ALL": "en_US.UTF-8",
    "ELIXIR_ERL_OPTIONS": "+fnu",
    "MIX_ENV": "prod",
    "MIX_HOME": MIX_ROOT,
    "MIX_ARCHIVES": f"{MIX_ROOT}/archives",
}
# The OTP release each Elixir minor version is built against.
COMPATIBLE_OTP = {
    "1.0": "18",
    "1.1": "18",
    "1.2": "19",
    "1.3": "19",
    "1.4": "20",
    "1.5": "20",
    "1.6": "21",
    "1.7": "22",
    "1.8": "22",
    "1.9": "22",
    "1.10": "23",
    "1.11": "24",
    "1.12": "24",
    "1.13": "25",
    "1.14": "26",
    "1.15": "26",
    "1.16": "26",
    "1.17": "27",
    "1.18": "27",
    "1.19": "28",
    "1.20": "29",
}
_MIX_ELIXIR = re.compile(r"(elixir:[\s].*[> ])([\w|\.]*)")


class ElixirProvider(BaseProvider):
    """Apps with a mix.exs."""

    name = "elixir"
    looked_for = "mix.exs"

    def detect(self, ctx: GenerateContext) -> bool:
        """A mix.exs at the root."""
        return ctx.source.has_file("mix.exs")

    def start_command_help(self) -> str:
        """How an Elixir app starts."""
        return "Railpack builds a Mix release and starts it with /app/_build/prod/rel/<app>/bin/<app> start."

    def plan(self, ctx: GenerateContext) -> None:
        """mise (elixir, erlang), install (deps fetched and compiled), build (release), the release deployed."""
        mise = ctx.mise
        mise.variables.update(ELIXIR_VARIABLES)
        self._install_mise_packages(ctx, mise)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=mise.name))
        install.secrets = []
        install.use_secrets_with_prefixes("MIX", "ERL", "ELIXIR", "OTP")
        install_outputs = self._install(ctx, install)
        install.variables.update(ELIXIR_VARIABLES)

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        build.add_input(Layer(step=install.name, include=install_outputs))
        build.variables.update(ELIXIR_VARIABLES)
        build_outputs = self._build(ctx, build)

        ctx.deploy.variables.update(ELIXIR_VARIABLES)
        ctx.deploy.inputs.append(Layer(step=build.name, include=build_outputs))
        name = _app_name(ctx)
        ctx.deploy.start_command = f"/app/_build/prod/rel/{name}/bin/{name} start"
        self._install_node(ctx, build)

    def _install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        elixir = mise.default("elixir", DEFAULT_ELIXIR_VERSION)
        match = _MIX_ELIXIR.search(ctx.source.read_text("mix.exs") or "")
        if match and (mix_version := extract_semver(match.group(2))):
            mise.version(elixir, mix_version, "mix.exs")
        if (text := ctx.source.read_text(".elixir-version")) is not None:
            mise.version(elixir, text.strip(), ".elixir-version")
        if env_version := ctx.env.railpack("ELIXIR_VERSION"):
            mise.version(elixir, env_version, "RAILPACK_ELIXIR_VERSION")

        erlang = mise.default("erlang", DEFAULT_ERLANG_VERSION)
        elixir_version = DEFAULT_ELIXIR_VERSION
        requested = ctx.requests.get("elixir")
        if requested is not None:
            try:
                elixir_version = ctx.resolver.resolve("elixir", requested.version) or elixir_version
            except ValueError:
                pass
        if semver := parse_semver(extract_semver(elixir_version)):
            otp = COMPATIBLE_OTP.get(f"{semver[0]}.{semver[1]}", DEFAULT_ERLANG_VERSION)
            mise.version(erlang, otp, "default compatible OTP version")
        parts = elixir_version.split("-otp-")
        if len(parts) > 1 and parse_semver(otp_version := extract_semver(parts[1])):
            mise.version(erlang, otp_version, "resolved compatible OTP version")
        if (text := ctx.source.read_text(".erlang-version")) is not None:
            mise.version(erlang, text.strip(), ".erlang-version")
        if erlang_env := ctx.env.railpack("ERLANG_VERSION"):
            mise.version(erlang, erlang_env, "RAILPACK_ERLANG_VERSION")
        mise.use_mise_versions(["elixir", "erlang"])

    def _install(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        if not ctx.source.has_file("mix.lock"):
            ctx.warn("No mix.lock found; add mix.lock or customize the build to avoid a failure")
        install.add(
            run("mkdir -p config deps _build"),
            run("mix local.hex --force"),
            run("mix local.rebar --force"),
            copy("mix.exs"),
            copy("mix.lock"),
            run("mix deps.get --only prod"),
            copy("config/config.exs*", "config/"),
            copy("config/prod.exs*", "config/"),
            run("mix deps.compile"),
        )
        if "assets.setup" in _mix_exs(ctx):
            install.add(run("mix assets.setup"))
        return ["deps", "_build", "config", "mix.exs", "mix.lock", MIX_ROOT]

    def _build(self, ctx: GenerateContext, build: CommandStepBuilder) -> list[str]:
        build.add(
            copy("priv*", "."),
            copy("lib*", "."),
            copy("assets*", "."),
            copy("config/runtime.exs*", "config/"),
            run("mix compile"),
        )
        if "assets.deploy" in _mix_exs(ctx):
            build.add(run("mix assets.deploy"))
        if "ecto.deploy" in _mix_exs(ctx):
            build.add(run("mix ecto.deploy"))
        build.add(copy("rel*", "."), run("mix release"))
        return ["_build/prod/rel"]

    def _install_node(self, ctx: GenerateContext, build: CommandStepBuilder) -> None:
        """Phoenix's assets/ is planned as a Node app whose node_modules the build step receives."""
        if not ctx.source.has_dir("assets"):
            return
        app_source = ctx.source
        ctx.source = SourceTree(app_source.root / "assets")
        try:
            node = NodeProvider()
            if not node.detect(ctx):
                return
            node.initialize(ctx)
            mise = ctx.mise
            node.install_mise_packages(ctx, mise)
            install_node = ctx.new_command_step("install:node")
            install_node.add_input(Layer(step=mise.name))
            node.install_node_deps(ctx, install_node)
            install_node.commands = [
                CopyCommand(src=f"assets/{c.src}", dest=c.dest, image=c.image) if isinstance(c, CopyCommand) else c
                for c in install_node.commands
            ]
            build.add_input(Layer(step=install_node.name, include=["node_modules"]))
        finally:
            ctx.source = app_source


def _mix_exs(ctx: GenerateContext) -> str:
    return ctx.source.read_text("mix.exs") or ""


def _app_name(ctx: GenerateContext) -> str:
    """The `app: :name` of mix.exs."""
    for line in _mix_exs(ctx).split("\n"):
        if "app: :" in line:
            return line.replace("app:", "", 1).split(":")[1].strip(",'\"").strip()
    return ""
