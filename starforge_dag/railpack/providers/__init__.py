"""Language providers, in Railpack's detection order: the first whose detect() is true plans the app."""

from __future__ import annotations

from starforge_dag.railpack.providers.base import Provider
from starforge_dag.railpack.providers.cpp import CppProvider
from starforge_dag.railpack.providers.deno import DenoProvider
from starforge_dag.railpack.providers.dotnet import DotnetProvider
from starforge_dag.railpack.providers.elixir import ElixirProvider
from starforge_dag.railpack.providers.gleam import GleamProvider
from starforge_dag.railpack.providers.golang import GoProvider
from starforge_dag.railpack.providers.java import JavaProvider
from starforge_dag.railpack.providers.node import NodeProvider
from starforge_dag.railpack.providers.php import PhpProvider
from starforge_dag.railpack.providers.python import PythonProvider
from starforge_dag.railpack.providers.ruby import RubyProvider
from starforge_dag.railpack.providers.rust import RustProvider
from starforge_dag.railpack.providers.shell import ShellProvider
from starforge_dag.railpack.providers.staticfile import StaticfileProvider


def language_providers() -> list[Provider]:
    """All providers in Railpack's detection order (PHP before Node so Laravel apps with a package.json stay PHP)."""
    return [
        PhpProvider(),
        GoProvider(),
        JavaProvider(),
        RustProvider(),
        RubyProvider(),
        ElixirProvider(),
        PythonProvider(),
        DenoProvider(),
        DotnetProvider(),
        NodeProvider(),
        GleamProvider(),
        CppProvider(),
        StaticfileProvider(),
        ShellProvider(),
    ]


def provider_by_name(name: str) -> Provider | None:
    """The provider called `name` (case-insensitive), as railpack.json's `provider` field names it."""
    return next((p for p in language_providers() if p.name.lower() == name.lower()), None)


__all__ = ["Provider", "language_providers", "provider_by_name"]
