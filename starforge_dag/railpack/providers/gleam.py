"""Gleam apps: exported as an Erlang shipment and run by its entrypoint on a runtime with only Erlang."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext, local_layer, run
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider

SHIPMENT = "build/erlang-shipment"


class GleamProvider(BaseProvider):
    """Apps with a gleam.toml."""

    name = "gleam"
    looked_for = "gleam.toml"

    def detect(self, ctx: GenerateContext) -> bool:
        """A gleam.toml at the root."""
        return ctx.source.has_file("gleam.toml")

    def plan(self, ctx: GenerateContext) -> None:
        """build (export erlang-shipment) on gleam + erlang, the shipment deployed with a runtime Erlang."""
        mise = ctx.mise
        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        build.add_input(local_layer())
        build.add(run("gleam export erlang-shipment"))
        mise.default("erlang", "latest")
        mise.default("gleam", "latest")
        mise.use_mise_versions(["gleam", "erlang"])

        runtime = ctx.new_mise_step("packages:mise:runtime")
        runtime.default("erlang", "latest")
        runtime.use_mise_versions(["erlang"])
        included = "." if ctx.env.is_truthy("GLEAM_INCLUDE_SOURCE") else f"{SHIPMENT}/."
        ctx.deploy.inputs += [runtime.layer(), Layer(step=build.name, include=[included])]
        ctx.deploy.start_command = f"./{SHIPMENT}/entrypoint.sh run"
