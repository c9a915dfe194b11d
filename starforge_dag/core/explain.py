"""Why a build did not succeed, in the words of the person who pushed: a class, a title, a hint and the log line.

Facts in (final state, error, failing step, transitions, log tail), an Explanation out, no I/O. The rules are a
table tried in order; the first whose pattern matches the error or a log line wins, so specific causes (a killed
step, a missing package) come before the generic "a RUN step failed".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import Field

from .models import LogLine, Transition, _FrozenModel
from .states import BuildState

TAIL_LINES = 200  # log lines at the end of a build the rules look at
MAX_LINE_CHARS = 500


class FailureClass(StrEnum):
    OUT_OF_MEMORY = "out_of_memory"
    DISK_FULL = "disk_full"
    RUN_FAILED = "run_failed"
    DEPENDENCY = "dependency"
    BASE_IMAGE = "base_image"
    DOCKERFILE_SYNTAX = "dockerfile_syntax"
    NO_START_COMMAND = "no_start_command"
    NETWORK_DISABLED = "network_disabled"
    PUSH_REFUSED = "push_refused"
    TIMEOUT = "timeout"
    BUILDER_UNAVAILABLE = "builder_unavailable"
    CANCELED = "canceled"
    SUPERSEDED = "superseded"
    CHECKS = "checks"
    UNKNOWN = "unknown"


class Explanation(_FrozenModel):
    """What went wrong and what to do about it; `line_no` is the log line's seq when it came from the log."""

    cls: FailureClass = Field(description="The kind of failure.")
    title: str = Field(description="One line: what went wrong.")
    hint: str = Field(description="What to do about it.")
    line: str | None = Field(default=None, description="The error or log line the explanation came from.")
    line_no: int | None = Field(default=None, description="That line's seq in the build log, when it is a log line.")
    build_id: int | None = Field(default=None, description="The build that superseded this one.")


@dataclass(frozen=True)
class FailureFacts:
    """Everything the rules look at, read from the build's record and log by the caller."""

    state: BuildState
    error: str | None = None
    error_step: str | None = None
    error_kind: str | None = None
    transitions: Sequence[Transition] = ()
    log: Sequence[LogLine] = ()
    network: str | None = None  # the build steps' network ("none" | "host"), when known


@dataclass(frozen=True)
class Rule:
    """A pattern looked for in the error (then the failing step's log lines, newest first) and what it means."""

    cls: FailureClass
    pattern: re.Pattern[str] | None  # None: the state alone decides
    title: str  # str.format over the match's named groups (and `{network}`)
    hint: str
    states: frozenset[BuildState] = frozenset({BuildState.FAILED})
    in_log: bool = True
    when: Callable[[FailureFacts], bool] = field(default=lambda facts: True)


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE | re.MULTILINE)


def _pkg(suffix: str = "") -> str:
    """A package name (npm scopes included) as a named group; alternatives of one rule number their groups."""
    return rf"(?P<package{suffix}>(?:@[\w.\-]+/)?[\w.\-]+)"


_GO_PATH = r"(?P<package>[\w.\-~]+(?:/[\w.\-~]+)+)"
_NETWORK_HINT = (
    "Build steps run without network access (STARFORGE_BUILD_NETWORK=none): commit what the step downloads "
    "(vendor the dependencies) or fetch it before the build; only the platform operator can give steps a network."
)
_DEPENDENCY_HINT = (
    "Check the name and version of {package} in your manifest and lock file (a typo, a version that was never "
    "published, or a private package that needs credentials), then push again."
)
_PUSH_HINT = "The image was built but could not be stored: this is on the platform's side; tell the operator."

_CHECKS_HINT = (
    "Look at the commit's checks on GitHub; once they pass, push again or build the commit by hand "
    "(a manual build does not wait for checks)."
)

RULES: tuple[Rule, ...] = (
    Rule(
        FailureClass.CHECKS,
        None,
        "A check suite of the commit did not pass: not built",
        _CHECKS_HINT,
        states=frozenset({BuildState.CHECKS_FAILED}),
        in_log=False,
    ),
    Rule(
        FailureClass.CHECKS,
        _r(r"timed out waiting for checks"),
        "Waited too long for the commit's checks: not built",
        _CHECKS_HINT + " STARFORGE_CHECKS_TIMEOUT_S sets how long a push waits.",
        states=frozenset({BuildState.TIMED_OUT}),
        in_log=False,
    ),
    Rule(
        FailureClass.TIMEOUT,
        None,
        "The build timed out{after}",
        "Make the build faster (cache dependencies, keep large files out of the context with .dockerignore) or "
        "raise the app's build timeout.",
        states=frozenset({BuildState.TIMED_OUT}),
        in_log=False,
    ),
    Rule(
        FailureClass.TIMEOUT,
        _r(r"build exceeded [\d.]+s|no result after \d+s"),
        "The build timed out{after}",
        "Make the build faster (cache dependencies, keep large files out of the context with .dockerignore) or "
        "raise the app's build timeout.",
        in_log=False,
    ),
    Rule(
        FailureClass.BUILDER_UNAVAILABLE,
        _r(
            r"BuildKit unavailable|BuildKit at \S+ unreachable|could not open a (?:BuildKit )?session|Depot unavailable"
            r"|Depot builder .*(?:did not become active|not ready|unusable)|stopped waiting for the Depot builder"
            r"|Docker daemon unreachable|database unreachable"
        ),
        "The builder was unavailable",
        "Nothing is wrong with your app: the builder did not answer, even after automatic retries. Push again or "
        "re-run the build; if it keeps happening, tell the platform operator.",
        in_log=False,
    ),
    Rule(
        FailureClass.OUT_OF_MEMORY,
        _r(r"exit code: 137\b|^Killed$|out of memory|OOMKilled|Cannot allocate memory|heap out of memory"),
        "A build step ran out of memory and was killed",
        "The step was killed (exit code 137), which is what the out-of-memory killer does: make it use less memory "
        "(fewer parallel jobs, NODE_OPTIONS=--max-old-space-size, smaller test sets) or build on a larger builder.",
    ),
    Rule(
        FailureClass.DISK_FULL,
        _r(r"no space left on device|disk quota exceeded"),
        "The builder ran out of disk space",
        "Keep large files out of the build context (.dockerignore), delete caches in the same RUN step that makes "
        "them (rm -rf /var/lib/apt/lists/*, npm cache clean --force), or use a smaller base image.",
    ),
    Rule(
        FailureClass.NETWORK_DISABLED,
        _r(
            r"Could not resolve host:? '?(?P<host>[\w.\-]+)|bad address '(?P<host2>[^']+)'"
            r"|getaddrinfo (?:EAI_AGAIN|ENOTFOUND) (?P<host3>[\w.\-]+)|dial tcp: lookup (?P<host4>[\w.\-]+)"
            r"|Temporary failure in name resolution|Name or service not known|Network is unreachable"
            r"|Failed to establish a new connection|npm (?:ERR!|error) code (?:EAI_AGAIN|ENOTFOUND|ENETUNREACH)"
        ),
        "A build step tried to reach {host_or_network}, and build steps have no network",
        _NETWORK_HINT,
        when=lambda facts: facts.network in (None, "none"),
    ),
    Rule(
        FailureClass.NETWORK_DISABLED,
        _r(
            r"Could not resolve host:? '?(?P<host>[\w.\-]+)|bad address '(?P<host2>[^']+)'"
            r"|getaddrinfo (?:EAI_AGAIN|ENOTFOUND) (?P<host3>[\w.\-]+)|dial tcp: lookup (?P<host4>[\w.\-]+)"
            r"|Temporary failure in name resolution|Name or service not known|Network is unreachable"
        ),
        "A build step could not reach {host_or_network}",
        "Check the host name; if it is right, the service may be down: push again later.",
    ),
    Rule(
        FailureClass.DEPENDENCY,
        _r(
            r"npm (?:ERR!|error) 404 +Not Found - GET \S*?/" + _pkg() + r"(?: |$)"
            r"|npm (?:ERR!|error) 404 +'" + _pkg("2") + r"@?[^']*' is not in (?:this|the npm) registry"
            r"|npm (?:ERR!|error) notarget No matching version found for " + _pkg("3") + r"@"
        ),
        "npm could not install {package}",
        _DEPENDENCY_HINT,
    ),
    Rule(
        FailureClass.DEPENDENCY,
        _r(r"npm (?:ERR!|error) code E(?:404|TARGET)"),
        "npm could not install a package",
        "A package in package.json or the lock file does not exist in the registry: check its name and version.",
    ),
    Rule(
        FailureClass.DEPENDENCY,
        _r(
            r"No matching distribution found for (?P<package>[\w.\-\[\]]+)"
            r"|Could not find a version that satisfies the requirement (?P<package2>[\w.\-\[\]]+)"
        ),
        "pip could not install {package}",
        _DEPENDENCY_HINT,
    ),
    Rule(
        FailureClass.DEPENDENCY,
        _r(r"Could not find gem '(?P<package>[\w.\-]+)|Could not find (?P<package2>[\w.\-]+-\d[\w.]*) in any of the"),
        "Bundler could not install {package}",
        _DEPENDENCY_HINT,
    ),
    Rule(
        FailureClass.DEPENDENCY,
        _r(
            r"^go: (?:module )?"
            + _GO_PATH
            + r"(?:@\S+?)?: .*(?:unknown revision|not found|404 Not Found|invalid version)"
            r"|no required module provides package (?P<package2>[\w.\-~]+(?:/[\w.\-~]+)+)"
        ),
        "Go could not download the module {package}",
        _DEPENDENCY_HINT.replace("manifest and lock file", "go.mod and go.sum"),
    ),
    Rule(
        FailureClass.DOCKERFILE_SYNTAX,
        _r(r"dockerfile parse error (?:on )?line (?P<line>\d+): (?P<what>[^\n]+)"),
        "The Dockerfile has an error on line {line}: {what}",
        "Fix that line of the Dockerfile (an instruction's spelling, a missing argument, a broken line "
        "continuation), then push again.",
        in_log=False,
    ),
    Rule(
        FailureClass.DOCKERFILE_SYNTAX,
        _r(r"unknown instruction: (?P<what>\S+)|failed to parse (?:the )?dockerfile[^\n]*"),
        "The Dockerfile has a syntax error{what_suffix}",
        "Fix the Dockerfile's syntax, then push again.",
        in_log=False,
    ),
    Rule(
        FailureClass.BASE_IMAGE,
        _r(
            r"pull access denied for (?P<image>[^,\s]+)"
            r"|load metadata for (?P<image2>\S+?): .*(?:unauthorized|denied|401|403|authoriz)"
        ),
        "The base image {image} cannot be pulled: access denied",
        "The registry refused to hand out the image: check its name, or make it public, or ask the platform "
        "operator for credentials to that registry.",
    ),
    Rule(
        FailureClass.BASE_IMAGE,
        _r(
            r"failed to create LLB definition: (?P<image>\S+?): not found"
            r"|load metadata for (?P<image2>\S+?): .*not found"
            r"|failed to resolve source metadata for (?P<image3>\S+?): .*not found"
            r"|docker-image://(?P<image4>\S+?): not found"
        ),
        "The base image {image} does not exist",
        "Check the image's name and tag in your FROM line (or the planner's base images); the tag may never "
        "have been pushed or was deleted.",
    ),
    Rule(
        FailureClass.NO_START_COMMAND,
        _r(r"No start command detected"),
        "No start command was found for the app",
        "Set deploy.startCommand in railpack.json or the RAILPACK_START_CMD variable (or add a Procfile with a "
        "web: line, or a Dockerfile).",
        in_log=False,
    ),
    Rule(
        FailureClass.NO_START_COMMAND,
        _r(r"could not determine how to build the app"),
        "Nothing in the repository says how to build or start the app",
        "Add a Dockerfile at the app's root, or describe the build and start command in railpack.json "
        "(RAILPACK_BUILD_CMD and RAILPACK_START_CMD also work).",
        in_log=False,
    ),
    Rule(
        FailureClass.PUSH_REFUSED,
        _r(r"(?:push|registry) .*(?P<why>quota|storage limit|too many requests|toomanyrequests)[^\n]*"),
        "The registry refused the image: {why}",
        _PUSH_HINT + " The registry's storage quota or rate limit is used up.",
    ),
    Rule(
        FailureClass.PUSH_REFUSED,
        _r(
            r"push of \S+ failed: (?P<why>[^\n]*(?:unauthori[sz]ed|authentication required|no basic auth credentials"
            r"|denied|forbidden|401|403)[^\n]*)"
            r"|registry \S+ refused the credentials[^\n]*"
        ),
        "The registry refused the push: {why_or_credentials}",
        _PUSH_HINT + " The registry credentials (STARFORGE_REGISTRY_USERNAME, STARFORGE_REGISTRY_PASSWORD) are "
        "missing or wrong.",
        in_log=False,
    ),
    Rule(
        FailureClass.RUN_FAILED,
        _r(
            r"executor failed running \[(?P<command>[^\n]*)\]: exit code: (?P<code>\d+)"
            r'|process "(?P<command2>[^\n]*)" did not complete successfully: exit code: (?P<code2>\d+)'
        ),
        "`{command}` failed with exit code {code}",
        "{run_hint}",
    ),
)

_EXIT_HINTS = {
    "127": "Exit code 127 means the command was not found: install it in an earlier step or use a base image "
    "that has it.",
    "126": "Exit code 126 means the file is not executable: chmod +x it in the repository or run it with its "
    "interpreter (sh script.sh).",
}
_TIME_LIMIT = re.compile(r"(?:after|exceeded) (\d+(?:\.\d+)?)s\b")
_RUN_HINT = "The command's own error is in the log lines just above this one; run it locally to reproduce it."


def explain(facts: FailureFacts) -> Explanation | None:
    """The explanation of a build that did not succeed; None for one that succeeded or still runs."""
    if facts.state == BuildState.CANCELED:
        return _canceled(facts)
    if facts.state == BuildState.SUPERSEDED:
        return _superseded(facts)
    if facts.state not in (BuildState.FAILED, BuildState.TIMED_OUT, BuildState.CHECKS_FAILED):
        return None
    lines = _step_lines(facts)
    for rule in RULES:
        if facts.state not in rule.states or not rule.when(facts):
            continue
        found = _match(rule, facts, lines)
        if found is not None:
            return found
    return _unknown(facts, lines)


def _step_lines(facts: FailureFacts) -> list[LogLine]:
    """The failing step's lines (and the system lines around them) when the log names the step; else the tail."""
    tail = list(facts.log[-TAIL_LINES:])
    if facts.error_step and any(line.vertex == facts.error_step for line in tail):
        return [line for line in tail if line.vertex == facts.error_step or line.stream == "system"]
    return tail


def _match(rule: Rule, facts: FailureFacts, lines: list[LogLine]) -> Explanation | None:
    error = facts.error or ""
    if rule.pattern is None:
        return _explanation(rule, None, facts, _first_line(error) or None, None)
    match = rule.pattern.search(error)
    if match is not None:
        at = _log_line_with(lines, match.group(0))
        if at is not None:
            return _explanation(rule, match, facts, at.text, at.seq)
        return _explanation(rule, match, facts, _line_of(error, match), None)
    if not rule.in_log:
        return None
    for line in reversed(lines):
        match = rule.pattern.search(line.text)
        if match is not None:
            return _explanation(rule, match, facts, line.text, line.seq)
    return None


def _explanation(
    rule: Rule, match: re.Match[str] | None, facts: FailureFacts, line: str | None, seq: int | None
) -> Explanation:
    values = _values(match, facts)
    return Explanation(
        cls=rule.cls,
        title=_cut(rule.title.format_map(values), 200),
        hint=rule.hint.format_map(values),
        line=_cut(line, MAX_LINE_CHARS) if line else None,
        line_no=seq,
    )


class _Values(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _values(match: re.Match[str] | None, facts: FailureFacts) -> _Values:
    """The match's named groups, alternatives (`package2`) folded into their first name, and derived words."""
    values = _Values()
    for name, value in (match.groupdict() if match else {}).items():
        base = name.rstrip("0123456789")
        if value is not None and not values.get(base):
            values[base] = value
    if "command" in values:
        values["command"] = _cut(_short_command(values["command"]), 80)
    values["run_hint"] = " ".join(h for h in (_EXIT_HINTS.get(values.get("code", ""), ""), _RUN_HINT) if h)
    host = values.get("host", "")
    values["host_or_network"] = host or "the network"
    what = values.get("what", "")
    values["what_suffix"] = f": unknown instruction {what}" if what else ""
    values["why_or_credentials"] = values.get("why", "") or "credentials refused"
    values["network"] = facts.network or "none"
    limit = _TIME_LIMIT.search(facts.error or "")
    values["after"] = f" after {float(limit.group(1)):g} s" if limit else ""
    if "package" in values:
        values["package"] = values["package"].rstrip(".")
    return values


def _short_command(command: str) -> str:
    """`/bin/sh -c npm ci` reads as `npm ci`: the shell wrapper says nothing the user wrote."""
    return re.sub(r"^(?:/bin/)?(?:ba)?sh -c ", "", command.strip())


def _log_line_with(lines: list[LogLine], text: str) -> LogLine | None:
    needle = text.strip()
    if not needle:
        return None
    return next((line for line in reversed(lines) if needle in line.text), None)


def _line_of(text: str, match: re.Match[str]) -> str:
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : end if end != -1 else len(text)].strip()


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _final(facts: FailureFacts, state: BuildState) -> Transition | None:
    return next((t for t in reversed(facts.transitions) if t.to_state == state), None)


def _canceled(facts: FailureFacts) -> Explanation:
    final = _final(facts, BuildState.CANCELED)
    reason = facts.error or (final.reason if final else "") or "canceled on request"
    who = final.actor if final and not final.actor.startswith("run:") else None
    title = f"Canceled by {who}: {reason}" if who else f"Canceled: {reason}"
    return Explanation(
        cls=FailureClass.CANCELED,
        title=_cut(title, 200),
        hint="Nothing failed: the build was stopped on request. Start a new build (or push again) when you want one.",
        line=_cut(reason, MAX_LINE_CHARS),
    )


_BY_BUILD = re.compile(r"\(?build (\d+)\)?")


def _superseded(facts: FailureFacts) -> Explanation:
    final = _final(facts, BuildState.SUPERSEDED)
    reason = facts.error or (final.reason if final else "") or "superseded by a newer push"
    found = _BY_BUILD.search(reason)
    by = int(found.group(1)) if found else None
    title = f"Superseded by build {by}" if by is not None else "Superseded by a newer push"
    if "desired state is already at" in reason:
        title = "Superseded: desired state is already at a newer commit"
    return Explanation(
        cls=FailureClass.SUPERSEDED,
        title=title,
        hint="Nothing failed: a newer commit of the same branch is built instead, so this one was not needed.",
        line=_cut(reason, MAX_LINE_CHARS),
        build_id=by,
    )


def _unknown(facts: FailureFacts, lines: list[LogLine]) -> Explanation:
    error = _first_line(facts.error or "")
    last_error = next(
        (line for line in reversed(lines) if line.text.startswith("ERROR") or line.stream == "stderr"), None
    )
    where = f" in {facts.error_step}" if facts.error_step else ""
    return Explanation(
        cls=FailureClass.UNKNOWN,
        title=_cut(f"The build failed{where}: {error}" if error else f"The build failed{where}", 200),
        hint="No known cause was recognised: read the log around the highlighted line. If it looks like a hiccup "
        "of the platform, run the build again.",
        line=_cut(last_error.text if last_error else error, MAX_LINE_CHARS) or None,
        line_no=last_error.seq if last_error else None,
    )
