"""Signed notifications (Standard Webhooks) to workspaces' own endpoints: address checks and the outbox sender."""

from .addresses import AddressPolicy, UnsafeUrl, check_endpoint_url, resolve_checked
from .sender import BuildLinks, SendReport, new_secret, send_notifications

__all__ = [
    "AddressPolicy",
    "BuildLinks",
    "SendReport",
    "UnsafeUrl",
    "check_endpoint_url",
    "new_secret",
    "resolve_checked",
    "send_notifications",
]
