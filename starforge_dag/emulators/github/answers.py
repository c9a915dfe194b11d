"""GitHub's REST answers: JSON with its rate-limit headers, its error shape, and its page parameters."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

RATE_LIMIT = 5000
DOCS = "https://docs.github.com/rest"


class Answer(Exception):
    """An error answer raised from inside an endpoint, answered with GitHub's `message` shape."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class RateLimit:
    """The primary rate limit as GitHub's headers count it: every answer spends one call, then it refills."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = RATE_LIMIT

    def headers(self) -> dict[str, str]:
        with self._lock:
            self._remaining = max(self._remaining - 1, 0) or RATE_LIMIT
            remaining = self._remaining
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(RATE_LIMIT - remaining),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-resource": "core",
            "x-github-request-id": uuid.uuid4().hex[:20].upper(),
            "x-github-api-version-selected": "2022-11-28",
        }


def answer(limit: RateLimit, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers={**limit.headers(), **(headers or {})})


def error(limit: RateLimit, status: int, message: str) -> Response:
    return answer(limit, {"message": message, "documentation_url": DOCS}, status)


def per_page(request: Request) -> int:
    return min(int(request.query_params.get("per_page", "30") or 30), 100)


def page(request: Request, items: list[Any]) -> list[Any]:
    size = per_page(request)
    number = max(int(request.query_params.get("page", "1") or 1), 1)
    return items[(number - 1) * size : number * size]
