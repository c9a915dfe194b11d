"""FakeBuilder: the builder port without a daemon, with scripted outcomes for tests and demos."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import BuildCanceled, PermanentBuildError, TransientBuildError, UserBuildError
from ..core.models import BuildResult, BuildSpec, BuildTicket, ProgressLine
from .port import CancelCheck, ProgressSink, never

OUTPUT_LINES_PER_STEP = 2
_LAYER_INSTRUCTIONS = {"FROM", "RUN", "COPY", "ADD", "WORKDIR"}


class Outcome(str, Enum):
    SUCCEED = "succeed"
    USER_ERROR = "user_error"
    TRANSIENT_ERROR = "transient_error"
    PERMANENT_ERROR = "permanent_error"


class FakeOptions(BaseModel):
    """What the fake does; the fake build service is configured with exactly these fields."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome = Field(default=Outcome.SUCCEED, description="What every build does.")
    fail_until_file: str | None = Field(
        default=None, description="Builds fail with a user error until this file exists (re-execution tests)."
    )
    step_delay_s: float = Field(default=0.0, description="Pause per step, to watch or cancel builds mid-way.")


def _steps(spec: BuildSpec) -> list[str]:
    """The vertex names a real solve would show: Dockerfile instructions, or the plan's commands."""
    if spec.frontend == "dockerfile":
        path = Path(spec.context_dir) / spec.dockerfile
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        lines = [ln for ln in lines if ln.split(" ", 1)[0].upper() in _LAYER_INSTRUCTIONS]
        return ["[internal] load build definition from " + spec.dockerfile] + [
            f"[{i}/{len(lines)}] {ln}" for i, ln in enumerate(lines, 1)
        ]
    return ["[internal] load build definition", "[build] planned steps", "[deploy] assemble image"]


class FakeBuilder:
    """Builds nothing; walks the same states, emits the same kinds of lines and raises the same errors."""

    def __init__(self, options: FakeOptions | None = None):
        self.options = options or FakeOptions()

    def submit(self, spec: BuildSpec) -> BuildTicket:
        if spec.frontend == "dockerfile" and not (Path(spec.context_dir) / spec.dockerfile).is_file():
            raise UserBuildError(f"no Dockerfile at {spec.dockerfile}", step="submit")
        if spec.frontend == "llb" and not spec.llb_definition:
            raise PermanentBuildError("an llb build needs a definition", step="submit")
        return BuildTicket(spec=spec, backend="fake", ref=uuid.uuid4().hex)

    def run(
        self,
        ticket: BuildTicket,
        on_progress: ProgressSink,
        should_cancel: CancelCheck = never,
        secrets: Mapping[str, str] | None = None,
    ) -> BuildResult:
        spec, options = ticket.spec, self.options
        started = time.monotonic()
        outcome = options.outcome
        if options.fail_until_file and not os.path.exists(options.fail_until_file):
            outcome = Outcome.USER_ERROR
        steps = _steps(spec)
        failing = len(steps) - 1 if outcome == Outcome.USER_ERROR else None
        for index, step in enumerate(steps):
            if should_cancel():
                raise BuildCanceled(f"build canceled during {step}", step=step)
            on_progress(ProgressLine(stream="system", vertex=step, text=f"{step} started"))
            for n in range(OUTPUT_LINES_PER_STEP):
                on_progress(ProgressLine(stream="stdout", vertex=step, text=f"{step}: output line {n + 1}"))
            if options.step_delay_s:
                time.sleep(options.step_delay_s)
            if index == failing:
                message = f"executor failed running [/bin/sh -c {step.split('] ', 1)[-1]}]: exit code: 1"
                on_progress(ProgressLine(stream="stderr", vertex=step, text=message))
                raise UserBuildError(message, step=step)
            if outcome == Outcome.TRANSIENT_ERROR and index == 0:
                raise TransientBuildError("buildkit unavailable: connection reset by peer", step=step)
            if outcome == Outcome.PERMANENT_ERROR and index == 0:
                raise PermanentBuildError("exporter moby could not be found", step=step)
            on_progress(ProgressLine(stream="system", vertex=step, text=f"{step} done"))
        digest = "sha256:" + hashlib.sha256(f"{spec.image.ref}|{spec.build_id}".encode()).hexdigest()
        on_progress(ProgressLine(stream="system", vertex="push", text=f"pushed {spec.image.ref} {digest}"))
        return BuildResult(
            build_id=spec.build_id,
            image=spec.image.model_copy(update={"digest": digest}),
            duration_s=time.monotonic() - started,
            steps_total=len(steps),
        )
