"""The BuildService port: each adapter (Depot, BuildKit, fake) configures one `Builder` and hands it out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

import dagster as dg
from pydantic import BaseModel

from ..builders.port import Builder

Options = TypeVar("Options", bound=BaseModel)


class BuildService(dg.ConfigurableResource, ABC):
    """Port: the builder this run's builds go through; the build logic lives in `builders`, not here."""

    @abstractmethod
    def builder(self) -> Builder:
        """A fresh builder for one op: builders hold per-build state (a Depot build's cancel), resources hold none."""


def options_of(kind: type[Options], service: Options) -> Options:
    """The plain options inside an adapter (which subclasses them), so builders never hold a resource."""
    return kind(**{name: getattr(service, name) for name in kind.model_fields})
