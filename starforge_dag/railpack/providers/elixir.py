"""Elixir apps and Phoenix: a mix release started from its own binary."""

from __future__ import annotations

import re

from starforge_dag.railpack.providers.base import (
    Context,
    ProviderPlan,
    StepLayoutProvider,
    build_layer,
    copy,
    loose_version,
    sh,
)

DEFAULT_ELIXIR_VERSION = "1.18"
DEFAULT_ERLANG_VERSION = "27.3"


class ElixirProvider(StepLayoutProvider):
    """Apps with a mix.exs."""

    name = "elixir"
    looked_for = "mix.exs"

    def detect_app(self, ctx: Context) -> bool:
        """A mix.exs at the root."""
        return ctx.app.has_file("mix.exs")

    def start_command_help(self) -> str:
        """Elixir apps start from their release."""
        return "declare `app:` in mix.exs so the release binary can be found"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Fetch and compile deps, deploy assets, build a release, start it."""
        mix = ctx.app.read_text("mix.exs") or ""
        elixir_req = re.search(r"""elixir:\s*["']([^"']+)["']""", mix)
        elixir = ctx.resolve(
            "elixir",
            DEFAULT_ELIXIR_VERSION,
            ctx.mise_version("elixir"),
            ctx.version_file(".elixir-version"),
            (loose_version(elixir_req.group(1)) if elixir_req else None, "mix.exs"),
            ctx.env_version("elixir"),
        )
        erlang = ctx.resolve(
            "erlang",
            DEFAULT_ERLANG_VERSION,
            ctx.mise_version("erlang"),
            ctx.version_file(".erlang-version"),
            ctx.env_version("erlang"),
        )
        plan = ProviderPlan(
            packages={"erlang": erlang, "elixir": elixir},
            runtime_packages=False,
            variables={"MIX_ENV": "prod", "ELIXIR_ERL_OPTIONS": "+fnu", "LANG": "C.UTF-8"},
            deploy_variables={"MIX_ENV": "prod", "LANG": "C.UTF-8"},
        )
        if ":phoenix" in mix:
            ctx.metadata["framework"] = "phoenix"
        files = [f for f in ("mix.exs", "mix.lock") if ctx.app.has_file(f)]
        plan.install = [
            *copy(*files),
            sh("mix local.hex --force"),
            sh("mix local.rebar --force"),
            sh("mix deps.get --only prod"),
        ]
        plan.build = [sh("mix deps.compile")]
        if '"assets.setup"' in mix:
            plan.build.append(sh("mix assets.setup"))
        plan.build.append(sh("mix compile"))
        if '"assets.deploy"' in mix:
            plan.build.append(sh("mix assets.deploy"))
        if '"ecto.deploy"' in mix:
            plan.build.append(sh("mix ecto.deploy"))
        plan.build.append(sh("mix release"))
        app = re.search(r"app:\s*:(\w+)", mix)
        if app:
            name = app.group(1)
            ctx.metadata["release"] = name
            plan.start_command = f"/app/_build/prod/rel/{name}/bin/{name} start"
        plan.deploy_inputs = [build_layer("/app/_build/prod/rel")]
        return plan
