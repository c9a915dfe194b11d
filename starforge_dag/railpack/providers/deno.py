"""Deno apps: the main module cached at build time and run with every permission."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext, local_layer, run
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider

DEFAULT_DENO_VERSION = "2"
ROOT_CACHE = "/root/.cache"
MAIN_FILES = ("main.ts", "main.js", "main.mjs", "main.mts")


class DenoProvider(BaseProvider):
    """Apps with deno.json or deno.jsonc."""

    name = "deno"
    looked_for = "deno.json or deno.jsonc"

    def __init__(self) -> None:
        self.main_file = ""

    def detect(self, ctx: GenerateContext) -> bool:
        """A Deno config at the root."""
        return ctx.source.has_file("deno.json") or ctx.source.has_file("deno.jsonc")

    def initialize(self, ctx: GenerateContext) -> None:
        """main.ts (or .js/.mjs/.mts), else the first script anywhere."""
        found = ctx.source.read_first(*MAIN_FILES)
        if found:
            self.main_file = found[0]
            return
        scripts = ctx.source.find_files("**/*.{ts,js,mjs,mts}")
        self.main_file = scripts[0] if scripts else ""

    def start_command_help(self) -> str:
        """How a Deno app starts."""
        return (
            "Railpack runs main.ts (or main.js, main.mjs, main.mts), else the first .ts/.js/.mjs/.mts file found, "
            "with `deno run --allow-all`."
        )

    def plan(self, ctx: GenerateContext) -> None:
        """mise (deno), build (deno cache), the app and Deno's cache deployed."""
        mise = ctx.mise
        deno = mise.default("deno", DEFAULT_DENO_VERSION)
        mise.use_mise_versions(["deno"])
        if version := ctx.env.railpack("DENO_VERSION"):
            mise.version(deno, version, "RAILPACK_DENO_VERSION")

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        if self.main_file:
            build.add_input(local_layer())
            build.add(run(f"deno cache {self.main_file}"))

        ctx.deploy.inputs += [mise.layer(), Layer(step=build.name, include=[".", ROOT_CACHE])]
        ctx.deploy.start_command = f"deno run --allow-all {self.main_file}" if self.main_file else ""
