"""The build page: server-rendered HTML behind a signed link (no API token), its live log as Server-Sent Events.

A link opens one build's page until it expires; anything else (tampered, expired, unknown build) is the same plain
404 page, so a link reveals nothing about any other build. The page works without JavaScript; with it, the log is
followed live through `events`, whose event ids are log seqs, so a reconnect (Last-Event-ID) resumes exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from starforge_dag.core.explain import Explanation
from starforge_dag.core.links import PageLinks
from starforge_dag.core.models import App, Build, DesiredChange, DesiredState, LogLine, utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.git.command import redact_url
from starforge_dag.logs import LogStoreBackend, open_log_store
from starforge_dag.logs.masking import Masker
from starforge_dag.pages.ansi import spans, to_html
from starforge_dag.pages.explain import build_masker, explain_build, read_tail
from starforge_dag.settings import Settings
from starforge_dag.store import BuildStore, NotFound, open_store
from starforge_dag.variables.crypto import SecretsKeyError

from .deps import SettingsDep
from .schemas import Phase, phases

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/page-static"
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",  # the link is the capability: never hand it to another site
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
PAGE_LINES = 5000  # the newest lines a page shows; older ones are counted, not shown
EVENT_BATCH = 500
POLL_S = 0.25

router = APIRouter(include_in_schema=False)
_templates = Environment(
    loader=PackageLoader("starforge_dag.api", "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True
)


@dataclass(frozen=True)
class PageLine:
    seq: int
    stream: str
    html: Markup

    @property
    def number(self) -> int:
        return self.seq + 1


@dataclass(frozen=True)
class Desired:
    """What happened to the app's desired state because of this build, in words, with a link where one helps."""

    text: str  # no final full stop: the page adds it after the link
    link_text: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class BuildPage:
    build: Build
    app: App
    repository: str
    commit_url: str | None
    requested_by: str
    phases: list[Phase]
    duration_s: float | None
    lines: list[PageLine]
    hidden_lines: int
    log_unavailable: str | None
    explanation: Explanation | None
    desired: Desired | None
    events_url: str
    after: int

    @property
    def live(self) -> bool:
        return not self.build.status.terminal


def opened_build(token: str, settings: Settings, now: datetime) -> int | None:
    try:
        return settings.page_links().build_of(token, now)
    except SecretsKeyError:
        return None


@router.get("/page/{token}", response_class=HTMLResponse)
def build_page(token: str, settings: SettingsDep, request: Request) -> Response:
    """One build's page, or the plain 404 page for a link that does not open one."""
    now = utcnow()
    build_id = opened_build(token, settings, now)
    if build_id is None:
        return not_found()
    store = open_store(settings.resolved_database_url)
    try:
        build = store.get_build(build_id)
    except NotFound:
        return not_found()
    links = settings.page_links(str(request.base_url))
    with open_log_store(settings.log_store_dsn, settings.resolved_database_url) as logs:
        page = _page(store, logs, build, links, settings, token, now)
    html = _templates.get_template("page.html").render(page=page, static=_relative_static(), fmt=_fmt)
    return HTMLResponse(html, headers=HEADERS)


@router.get("/page/{token}/events")
async def build_events(
    token: str,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=-1)] = -1,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response:
    """The log from `after` (or Last-Event-ID, whichever is later) as `line` events, `state` on each status change,
    and `end` once the build has ended and its last line was sent."""
    build_id = opened_build(token, settings, utcnow())
    if build_id is None:
        return not_found()
    store = open_store(settings.resolved_database_url)
    try:
        build = await run_in_threadpool(store.get_build, build_id)
    except NotFound:
        return not_found()
    if last_event_id is not None and last_event_id.strip().isdigit():
        after = max(after, int(last_event_id.strip()))
    masker = await run_in_threadpool(_masker, store, build_id, settings)
    stream = _events(store, settings, build, after, masker)
    return EventSourceResponse(stream, ping=15, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def not_found() -> HTMLResponse:
    html = _templates.get_template("not_found.html").render(static=_relative_static())
    return HTMLResponse(html, status_code=404, headers=HEADERS)


async def _events(
    store: BuildStore, settings: Settings, build: Build, after: int, masker: Masker | None
) -> AsyncIterator[ServerSentEvent]:
    logs = await run_in_threadpool(open_log_store, settings.log_store_dsn, settings.resolved_database_url)
    try:
        status = build.status
        yield _state_event(build)
        while True:
            current = await run_in_threadpool(store.get_build, build.id)
            lines = await run_in_threadpool(logs.read, build.id, after, EVENT_BATCH)
            for line in lines:
                yield ServerSentEvent(_line_data(line, masker), event="line", id=str(line.seq))
                after = line.seq
            if current.status != status:
                status = current.status
                yield _state_event(current)
            if len(lines) == EVENT_BATCH:
                continue
            if current.status.terminal and not lines:
                yield ServerSentEvent(json.dumps({"status": current.status.value}), event="end")
                return
            await asyncio.sleep(POLL_S)
    finally:
        await run_in_threadpool(logs.close)


def _state_event(build: Build) -> ServerSentEvent:
    return ServerSentEvent(json.dumps({"status": build.status.value, "label": _label(build.status)}), event="state")


def _line_data(line: LogLine, masker: Masker | None) -> str:
    text = _masked(line.text, masker)
    return json.dumps({"seq": line.seq, "n": line.seq + 1, "stream": line.stream, "spans": spans(text)})


def _masked(text: str, masker: Masker | None) -> str:
    return masker.mask(text) if masker else text


def _masker(store: BuildStore, build_id: int, settings: Settings) -> Masker | None:
    """The build's secret values (every log line shown is masked with them); None when they cannot be opened."""
    try:
        return build_masker(store, build_id, settings.secret_box())
    except SecretsKeyError:
        return None


def _page(
    store: BuildStore,
    logs: LogStoreBackend,
    build: Build,
    links: PageLinks,
    settings: Settings,
    token: str,
    now: datetime,
) -> BuildPage:
    app = store.get_app_by_id(build.app_id)
    transitions = store.transitions(build.id)
    steps = phases(transitions)
    masker = _masker(store, build.id, settings)
    unavailable = None if masker is not None else "The log cannot be shown: the secrets it hides could not be opened."
    tail = [] if masker is None else read_tail(logs, build.id, PAGE_LINES)
    explanation = None if masker is None else explain_build(store, logs, build.id, settings.build_network, masker)
    ended = steps[-1].started_at if build.status.terminal and steps else now
    return BuildPage(
        build=build,
        app=app,
        repository=redact_url(app.repo_url),
        commit_url=_commit_url(app, build.commit_sha),
        requested_by=transitions[0].actor if transitions else "",
        phases=steps,
        duration_s=(ended - steps[0].started_at).total_seconds() if steps else None,
        lines=[PageLine(line.seq, line.stream, to_html(_masked(line.text, masker))) for line in tail],
        hidden_lines=tail[0].seq if tail else 0,
        log_unavailable=unavailable,
        explanation=explanation,
        desired=_desired(store, build, links, explanation, now),
        events_url=f"{token}/events",
        after=tail[-1].seq if tail else -1,
    )


def _commit_url(app: App, sha: str) -> str | None:
    """The commit on the forge when the repository is reached over http(s) (GitHub's and GitLab's path shape)."""
    url = redact_url(app.repo_url)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or "@" in parts.netloc or "*" in url:
        return None
    return f"{url.removesuffix('/').removesuffix('.git')}/commit/{sha}"


def _desired(
    store: BuildStore, build: Build, links: PageLinks, explanation: Explanation | None, now: datetime
) -> Desired | None:
    if build.preview:
        return _preview_desired(store, build, links, now)
    current = store.desired_state(build.app_id)
    if build.status == BuildState.SUPERSEDED and explanation is not None and explanation.build_id is not None:
        return Desired(
            "Superseded: desired state was left to",
            f"build {explanation.build_id}",
            _link_to(store, build, explanation.build_id, links, now),
        )
    if build.status != BuildState.SUCCEEDED:
        if not build.status.terminal:
            return None
        return _kept(store, build, current, links, now, "Desired state did not change")
    if current is not None and current.build_id == build.id:
        pin = " (pinned)" if current.pinned else ""
        return Desired(f"Desired state moved to this image{pin}: the deployer runs it (revision {current.revision})")
    if build.held_by_pin:
        return Desired("Held by a pin: this image becomes desired when the app is unpinned")
    was_desired = any(change.build_id == build.id for change in _changes(store, build.app_id))
    lead = "Desired state moved to this image, then on to" if was_desired else "Desired state stayed at a newer commit:"
    return _kept(store, build, current, links, now, lead)


def _preview_desired(store: BuildStore, build: Build, links: PageLinks, now: datetime) -> Desired | None:
    """A preview build moves its pull request's environment only; production is not its business."""
    if not build.status.terminal:
        return None
    record = store.preview(build.app_id, build.pr_number or 0)
    if record is None or record.state != "open":
        return Desired(f"Preview {build.environment} was torn down: its pull request is closed")
    if record.desired_build_id == build.id:
        return Desired(f"Preview {build.environment} runs this image")
    if record.desired_build_id is None:
        return Desired(f"Preview {build.environment} has no image yet")
    other = record.desired_build_id
    return Desired(f"Preview {build.environment} runs", f"build {other}", _link_to(store, build, other, links, now))


def _kept(
    store: BuildStore, build: Build, current: DesiredState | None, links: PageLinks, now: datetime, lead: str
) -> Desired:
    if current is None:
        return Desired(f"{lead}: the app has no desired image yet")
    lead = lead if lead.endswith((":", " to")) else f"{lead}: the app runs"
    return Desired(lead, f"build {current.build_id}", _link_to(store, build, current.build_id, links, now))


def _link_to(store: BuildStore, build: Build, other: int, links: PageLinks, now: datetime) -> str | None:
    """A link to another build's page, only for a build of the same app."""
    try:
        target = store.get_build(other)
    except NotFound:
        return None
    return links.url(other, now) if target.app_id == build.app_id else None


def _changes(store: BuildStore, app_id: int) -> Iterator[DesiredChange]:
    after = 0
    while True:
        batch = store.changes_after(after, limit=500, app_id=app_id)
        yield from batch
        if len(batch) < 500:
            return
        after = batch[-1].revision


_LABELS = {
    BuildState.WAITING: "Waiting for checks",
    BuildState.QUEUED: "Queued",
    BuildState.CLONING: "Cloning",
    BuildState.PLANNING: "Planning",
    BuildState.BUILDING: "Building",
    BuildState.PUSHING: "Pushing",
    BuildState.SUCCEEDED: "Succeeded",
    BuildState.FAILED: "Failed",
    BuildState.CANCELED: "Canceled",
    BuildState.SUPERSEDED: "Superseded",
    BuildState.TIMED_OUT: "Timed out",
    BuildState.CHECKS_FAILED: "Checks failed",
}


def _label(state: BuildState) -> str:
    return _LABELS[state]


def _fmt(value: Any) -> str:
    """Durations as `1m 05s`, times as `2026-11-01 12:00:00 UTC`, state labels."""
    if isinstance(value, BuildState):
        return _label(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int | float):
        seconds = float(value)
        if seconds < 60:
            return f"{seconds:.1f}s"
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m {rest:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"
    return str(value)


def _relative_static() -> str:
    """Pages live at /page/{token}: `../page-static` reaches the static files also behind a path prefix."""
    return ".." + STATIC_PATH
