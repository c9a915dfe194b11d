"""FakeBuildService: the BuildService contract without a daemon, with scripted outcomes for tests."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from enum import Enum
from pathlib import Path

from pydantic import Field

from ..core.errors import BuildCanceled, PermanentBuildError, TransientBuildError, UserBuildError
from ..core.models import BuildResult, BuildSpec, BuildTicket, ProgressLine
from .build_service import BuildService, CancelCheck, LogSink, _never


class Outcome(str, Enum):
    SUCCEED = "succeed"
    USER_ERROR = "user_error"
    TRANSIENT_ERROR = "transient_error"
    PERMANENT_ERROR = "permanent_error"


_LAYER_INSTRUCTIONS = {"FROM", "RUN", "COPY", "ADD", "WORKDIR"}


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


class FakeBuildService(BuildService):
    """Builds nothing; walks the same states, emits the same kinds of lines and raises the same errors."""

    outcome: Outcome = Field(default=Outcome.SUCCEED, description="What every build does.")
    outcomes_by_app: dict[str, str] = Field(
        default_factory=dict, description="Per-app outcome, keyed by the image repository's last segment."
    )
    fail_until_file: str | None = Field(
        default=None, description="Builds fail with a user error until this file exists (re-execution tests)."
    )
    step_delay_s: float = Field(default=0.0, description="Pause per step, to watch or cancel builds mid-way.")
    output_lines_per_step: int = Field(default=2, description="stdout lines each step prints.")

    def submit(self, spec: BuildSpec) -> BuildTicket:
        if spec.frontend == "dockerfile" and not (Path(spec.context_dir) / spec.dockerfile).is_file():
            raise UserBuildError(f"no Dockerfile at {spec.dockerfile}", step="submit")
        if spec.frontend == "llb" and not spec.llb_definition:
            raise PermanentBuildError("an llb build needs a definition", step="submit")
        return BuildTicket(spec=spec, backend="fake", ref=uuid.uuid4().hex)

    def run(self, ticket: BuildTicket, on_progress: LogSink, should_cancel: CancelCheck = _never) -> BuildResult:
        spec = ticket.spec
        started = time.monotonic()
        outcome = Outcome(self.outcomes_by_app.get(spec.image.repository.rsplit("/", 1)[-1], self.outcome))
        if self.fail_until_file and not os.path.exists(self.fail_until_file):
            outcome = Outcome.USER_ERROR
        steps = _steps(spec)
        failing = len(steps) - 1 if outcome == Outcome.USER_ERROR else None
        for index, step in enumerate(steps):
            if should_cancel():
                raise BuildCanceled(f"build canceled during {step}", step=step)
            on_progress(ProgressLine(stream="system", vertex=step, text=f"{step} started"))
            for n in range(self.output_lines_per_step):
                on_progress(ProgressLine(stream="stdout", vertex=step, text=f"{step}: output line {n + 1}"))
            if self.step_delay_s:
                time.sleep(self.step_delay_s)
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

    def cancel(self, ticket: BuildTicket) -> None:
        """Nothing runs outside `run`, which stops at its next should_cancel check."""
