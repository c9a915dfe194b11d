"""Gleam apps, exported and run as an Erlang shipment."""

from __future__ import annotations

from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, sh

SHIPMENT = "build/erlang-shipment"


class GleamProvider(StepLayoutProvider):
    """Apps with a gleam.toml."""

    name = "gleam"
    looked_for = "gleam.toml"

    def detect_app(self, ctx: Context) -> bool:
        """A gleam.toml at the root."""
        return ctx.app.has_file("gleam.toml")

    def start_command_help(self) -> str:
        """Gleam apps start from the shipment's entrypoint."""
        return "make `gleam export erlang-shipment` succeed"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Export an Erlang shipment and run its entrypoint; Erlang stays in the image, Gleam does not."""
        plan = ProviderPlan(
            packages={
                "gleam": ctx.resolve("gleam", "latest", ctx.mise_version("gleam")),
                "erlang": ctx.resolve("erlang", "latest", ctx.mise_version("erlang"), ctx.env_version("erlang")),
                "rebar": ctx.resolve("rebar", "latest", ctx.mise_version("rebar")),
            },
        )
        plan.build = [sh("gleam export erlang-shipment")]
        plan.start_command = f"./{SHIPMENT}/entrypoint.sh run"
        include_source = ctx.env.is_truthy("GLEAM_INCLUDE_SOURCE")
        plan.deploy_inputs = [build_layer("." if include_source else SHIPMENT)]
        return plan
