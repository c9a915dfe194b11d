"""Scripted failures of the GitHub emulator's API: 5xx (before the call, or after it took effect: `lost_answer`),
primary and secondary rate limits, slow answers."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response

from .answers import DOCS, RATE_LIMIT


@dataclass
class Faults:
    """What fraction of API calls fail, how, and how slowly every call answers."""

    fail_fraction: float = 0.0
    kinds: tuple[str, ...] = ("5xx", "rate_limit")
    slow_s: float = 0.0
    retry_after_s: int = 1
    seed: int = 0
    scripted: list[str] = field(default_factory=list)  # forced faults for the next calls, in order

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> str | None:
        if self.scripted:
            return self.scripted.pop(0)
        if self.fail_fraction and self._random.random() < self.fail_fraction:
            return self._random.choice(self.kinds)
        return None

    def rate_limited(self) -> Response:
        """Half primary (403, remaining 0, reset soon), half secondary (429 with retry-after)."""
        reset = int(time.time()) + self.retry_after_s
        if self._random.random() < 0.5:
            return JSONResponse(
                {"message": "API rate limit exceeded for installation.", "documentation_url": DOCS},
                status_code=403,
                headers={
                    "x-ratelimit-limit": str(RATE_LIMIT),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": str(RATE_LIMIT),
                    "x-ratelimit-reset": str(reset),
                    "x-ratelimit-resource": "core",
                    "retry-after": str(self.retry_after_s),
                },
            )
        return JSONResponse(
            {"message": "You have exceeded a secondary rate limit.", "documentation_url": DOCS},
            status_code=429,
            headers={"retry-after": str(self.retry_after_s)},
        )
