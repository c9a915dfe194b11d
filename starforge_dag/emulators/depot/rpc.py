"""gRPC plumbing shared by the Depot servicers and the BuildKit proxy: credentials, forwarding, paging."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import grpc

from .records import Platform

_HOP_HEADERS = {"user-agent", "content-type", "te", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout"}

T = TypeVar("T")


def bearer(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def forwarded_metadata(context: grpc.ServicerContext) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in context.invocation_metadata() if not k.startswith(":") and k not in _HOP_HEADERS]


def remaining(context: grpc.ServicerContext) -> float | None:
    """The caller's deadline for an upstream call; grpcio reports "none" as a huge number."""
    left = context.time_remaining()
    return left if left is not None and left < 1e9 else None


def identity(value: bytes) -> bytes:
    return value


def platform_name(value: int, context: grpc.ServicerContext) -> str:
    if value not in Platform.values():
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown platform {value}")
    return Platform.Name(value)


def page(items: Sequence[T], request: Any, default_size: int, context: grpc.ServicerContext) -> tuple[list[T], str]:
    """The page a list request asks for, and the token of the next one ("" on the last page)."""
    token = request.page_token if request.HasField("page_token") else ""
    if token and not token.isdigit():
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token")
    start = int(token) if token else 0
    size = request.page_size if request.HasField("page_size") and request.page_size > 0 else default_size
    following = str(start + size) if start + size < len(items) else ""
    return list(items[start : start + size]), following
