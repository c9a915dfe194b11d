"""Scriptable misbehaviour of the Depot emulator, for tests of the client's retries and cleanup."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Faults:
    """Misbehaviour a test scripts; every knob can change while the emulator runs.

    `unavailable_once` names methods whose next call answers UNAVAILABLE, once each: Depot's
    ("CreateBuild", "GetEndpoint", "ReportHealth", ...) and, on a build's endpoint, BuildKit's as
    "Control.<Method>" ("Control.ListWorkers": the machine is not ready yet).
    `not_found_first_endpoint`: every build's first GetEndpoint answers NOT_FOUND (the race right after
    CreateBuild). `drop_endpoint_during_solve`: the next solve that starts a step loses its endpoint (one-shot).
    """

    pending_messages: int = 1
    pending_delay_s: float = 0.0
    unavailable_once: set[str] = field(default_factory=set)
    not_found_first_endpoint: bool = False
    reject_tokens: bool = False
    drop_endpoint_during_solve: bool = False
