"""FakeBuildService: the fake builder as a resource, so the build job runs without a daemon."""

from __future__ import annotations

from ..builders.fake import FakeBuilder, FakeOptions
from .build_service import BuildService, options_of


class FakeBuildService(BuildService, FakeOptions):
    """Builds nothing; scripted outcomes (see `builders.fake`)."""

    def builder(self) -> FakeBuilder:
        return FakeBuilder(options_of(FakeOptions, self))
