"""Failure explanations: one test per class, on the words BuildKit, npm, pip, Bundler, Go and registries print."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from starforge_dag.core.explain import Explanation, FailureClass, FailureFacts, explain
from starforge_dag.core.models import LogLine, Transition
from starforge_dag.core.states import BuildState

RUN = "[2/2] RUN npm ci"


def log(*texts: str, vertex: str | None = RUN, stream: str = "stderr") -> list[LogLine]:
    """Log lines of one step; a text starting with `ERROR ` is the system line BuildKit's progress ends with."""
    return [
        LogLine(
            build_id=1,
            seq=seq,
            stream="system" if text.startswith(("ERROR ", "[")) else stream,  # type: ignore[arg-type]
            text=text,
            vertex=vertex,
        )
        for seq, text in enumerate(texts)
    ]


def failed(error: str, *lines: str, step: str | None = RUN, **facts: object) -> Explanation:
    found = explain(FailureFacts(BuildState.FAILED, error=error, error_step=step, log=log(*lines), **facts))  # type: ignore[arg-type]
    assert found is not None
    return found


def run_error(command: str, code: int) -> str:
    return f"executor failed running [/bin/sh -c {command}]: exit code: {code}"


def test_a_run_step_failing_names_the_command_and_exit_code_and_points_at_the_error_line() -> None:
    error = run_error("make test", 2)
    found = failed(error, "[2/2] RUN make test", "make: *** [test] Error 2", f"ERROR [2/2] RUN make test: {error}")
    assert found.cls == FailureClass.RUN_FAILED
    assert found.title == "`make test` failed with exit code 2"
    assert found.line_no == 2 and found.line is not None and found.line.startswith("ERROR [2/2] RUN make test")


def test_current_buildkit_wording_of_a_failing_process_is_a_run_failure_too() -> None:
    error = 'process "/bin/sh -c ./missing.sh" did not complete successfully: exit code: 127'
    found = failed(error)
    assert found.cls == FailureClass.RUN_FAILED
    assert found.title == "`./missing.sh` failed with exit code 127"
    assert "not found" in found.hint


@pytest.mark.parametrize(
    "error, lines",
    [
        (run_error("npm run build", 137), ("Killed",)),
        (run_error("cargo build", 1), ("error: could not compile `app`", "Killed")),
        ("process did not complete: OOMKilled", ()),
        (
            run_error("node build.js", 134),
            ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",),
        ),
    ],
)
def test_out_of_memory_from_exit_137_or_the_killed_line(error: str, lines: tuple[str, ...]) -> None:
    found = failed(error, *lines)
    assert found.cls == FailureClass.OUT_OF_MEMORY
    assert "memory" in found.title and "137" in found.hint


def test_disk_full_points_at_the_line_that_said_so() -> None:
    found = failed(
        run_error("dd if=/dev/zero of=/big", 1),
        "dd: error writing '/big': No space left on device",
        "1+0 records in",
    )
    assert found.cls == FailureClass.DISK_FULL
    assert found.line_no == 0 and "No space left" in (found.line or "")


@pytest.mark.parametrize(
    "lines, package",
    [
        (
            ("npm ERR! code E404", "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padx - Not found"),
            "left-padx",
        ),
        (("npm error code E404", "npm error 404  '@acme/widgetz@^1.2.0' is not in this registry."), "@acme/widgetz"),
        (("npm error code ETARGET", "npm error notarget No matching version found for react@99.0.0."), "react"),
    ],
)
def test_npm_names_the_package_that_failed(lines: tuple[str, ...], package: str) -> None:
    found = failed(run_error("npm ci", 1), *lines)
    assert found.cls == FailureClass.DEPENDENCY
    assert found.title == f"npm could not install {package}"
    assert package in found.hint


def test_npm_without_a_package_name_still_says_npm() -> None:
    found = failed(run_error("npm ci", 1), "npm ERR! code E404")
    assert found.cls == FailureClass.DEPENDENCY and "npm" in found.title


@pytest.mark.parametrize(
    "lines",
    [
        (
            "ERROR: Could not find a version that satisfies the requirement flaskk==9.9 (from versions: none)",
            "ERROR: No matching distribution found for flaskk==9.9",
        ),
        ("ERROR: Could not find a version that satisfies the requirement flaskk (from versions: none)",),
    ],
)
def test_pip_names_the_package_that_failed(lines: tuple[str, ...]) -> None:
    found = failed(run_error("pip install -r requirements.txt", 1), *lines)
    assert found.cls == FailureClass.DEPENDENCY
    assert found.title.startswith("pip could not install flaskk")


@pytest.mark.parametrize(
    "line",
    [
        "Could not find gem 'railz (~> 7.1)' in rubygems repository https://rubygems.org/ or installed locally.",
        "Could not find railz-7.1.0 in any of the sources",
    ],
)
def test_bundler_names_the_gem_that_failed(line: str) -> None:
    found = failed(run_error("bundle install", 7), line)
    assert found.cls == FailureClass.DEPENDENCY
    assert found.title.startswith("Bundler could not install railz")


@pytest.mark.parametrize(
    "line",
    [
        "go: github.com/acme/nope@v1.2.3: reading github.com/acme/nope/go.mod at revision v1.2.3: unknown revision v1.2.3",
        "go: module github.com/acme/nope: git ls-remote -q origin in /go/pkg/mod/cache: not found",
        "main.go:4:2: no required module provides package github.com/acme/nope; to add it:",
    ],
)
def test_go_modules_name_the_module_that_failed(line: str) -> None:
    found = failed(run_error("go build ./...", 1), line)
    assert found.cls == FailureClass.DEPENDENCY
    assert found.title == "Go could not download the module github.com/acme/nope"
    assert "go.mod" in found.hint


def test_base_image_not_found() -> None:
    found = failed(
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
        "registry.example/base/nope:latest: not found",
        step="[internal] load metadata for registry.example/base/nope:latest",
    )
    assert found.cls == FailureClass.BASE_IMAGE
    assert found.title == "The base image registry.example/base/nope:latest does not exist"


def test_base_image_pull_denied() -> None:
    found = failed(
        "failed to solve with frontend dockerfile.v0: failed to create LLB definition: pull access denied for "
        "acme/private, repository does not exist or may require authorization",
    )
    assert found.cls == FailureClass.BASE_IMAGE
    assert "acme/private" in found.title and "denied" in found.title


@pytest.mark.parametrize(
    "error, title",
    [
        (
            "failed to solve with frontend dockerfile.v0: failed to create LLB definition: "
            "dockerfile parse error line 7: unknown instruction: RUNN",
            "The Dockerfile has an error on line 7: unknown instruction: RUNN",
        ),
        ("failed to solve: unknown instruction: COPPY", "The Dockerfile has a syntax error: unknown instruction COPPY"),
    ],
)
def test_dockerfile_syntax_names_the_line(error: str, title: str) -> None:
    found = failed(error, step=None)
    assert found.cls == FailureClass.DOCKERFILE_SYNTAX
    assert found.title == title


def test_a_planned_app_with_nothing_to_start() -> None:
    error = "Railpack could not determine how to build the app in /work/app.\n\nThe following languages are supported:"
    found = failed(error, step="plan")
    assert found.cls == FailureClass.NO_START_COMMAND
    assert "RAILPACK_START_CMD" in found.hint and "Dockerfile" in found.hint


def test_no_start_command_warning_as_the_error() -> None:
    found = failed("No start command detected. Set RAILPACK_START_CMD or deploy.startCommand in railpack.json.")
    assert found.cls == FailureClass.NO_START_COMMAND


@pytest.mark.parametrize(
    "line",
    [
        "wget: bad address 'example.com'",
        "curl: (6) Could not resolve host: example.com",
        "npm error code EAI_AGAIN",
        "npm error request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
        "  WARNING: Retrying (Retry(total=4)) after connection broken by 'NewConnectionError: Failed to establish a "
        "new connection: [Errno -3] Temporary failure in name resolution': /simple/flask/",
        "nslookup: can't connect to remote host (10.255.255.53): Network is unreachable",
    ],
)
def test_network_disabled_for_build_steps(line: str) -> None:
    found = failed(run_error("fetch", 1), line, network="none")
    assert found.cls == FailureClass.NETWORK_DISABLED
    assert "no network" in found.title and "STARFORGE_BUILD_NETWORK" in found.hint


def test_the_host_that_could_not_be_reached_is_named() -> None:
    found = failed(run_error("curl", 6), "curl: (6) Could not resolve host: example.com", network="none")
    assert found.title == "A build step tried to reach example.com, and build steps have no network"


def test_with_a_network_a_resolution_failure_is_not_blamed_on_the_platform() -> None:
    found = failed(run_error("curl", 6), "curl: (6) Could not resolve host: exampel.com", network="host")
    assert found.cls == FailureClass.NETWORK_DISABLED
    assert found.title == "A build step could not reach exampel.com"


@pytest.mark.parametrize(
    "error, words",
    [
        ("push of 127.0.0.1:5000/acme/web:abc failed: unauthorized: authentication required", "authentication"),
        ("push of 127.0.0.1:5000/acme/web:abc failed: no basic auth credentials", "no basic auth"),
        ("push of r.example/acme/web:abc failed: denied: requested access to the resource is denied", "denied"),
        ("registry r.example refused the credentials (user 'robot') at its token service (401)", "credentials"),
    ],
)
def test_registry_push_refused_for_credentials(error: str, words: str) -> None:
    found = failed(error, step="push")
    assert found.cls == FailureClass.PUSH_REFUSED
    assert words in found.title and "STARFORGE_REGISTRY_PASSWORD" in found.hint


def test_registry_push_refused_for_quota() -> None:
    found = failed("push of r.example/acme/web:abc failed: denied: storage quota exceeded", step="push")
    assert found.cls == FailureClass.PUSH_REFUSED
    assert "quota" in found.title and "quota" in found.hint


def test_the_timed_out_state_is_a_timeout_with_its_limit() -> None:
    found = explain(FailureFacts(BuildState.TIMED_OUT, error="no result after 600s"))
    assert found is not None and found.cls == FailureClass.TIMEOUT
    assert found.title == "The build timed out after 600 s"


def test_the_builder_s_own_time_limit_is_a_timeout() -> None:
    found = failed("build exceeded 1800s", step="[2/2] RUN sleep 9999")
    assert found.cls == FailureClass.TIMEOUT and found.title == "The build timed out after 1800 s"


@pytest.mark.parametrize(
    "error",
    [
        "BuildKit unavailable: failed to connect to all addresses",
        "BuildKit at docker:///run/docker.sock unreachable: [Errno 2] No such file or directory",
        "Depot builder did not become active within 300s",
        "Depot unavailable during CreateBuild: UNAVAILABLE",
    ],
)
def test_the_builder_unavailable_is_transient_and_says_it_was_retried(error: str) -> None:
    found = failed(error, step="connect", error_kind="transient")
    assert found.cls == FailureClass.BUILDER_UNAVAILABLE
    assert "retries" in found.hint


def transition(to: BuildState, reason: str, actor: str) -> Transition:
    return Transition(build_id=1, from_state=None, to_state=to, reason=reason, actor=actor, at=datetime.now(UTC))


def test_canceled_says_by_whom() -> None:
    facts = FailureFacts(
        BuildState.CANCELED,
        error="canceled via API",
        transitions=[
            transition(BuildState.QUEUED, "push", "github"),
            transition(BuildState.CANCELED, "canceled via API", "api"),
        ],
    )
    found = explain(facts)
    assert found is not None and found.cls == FailureClass.CANCELED
    assert found.title == "Canceled by api: canceled via API"


def test_canceled_while_running_says_why_not_the_run() -> None:
    facts = FailureFacts(
        BuildState.CANCELED,
        error="canceled by ada",
        transitions=[transition(BuildState.CANCELED, "canceled by ada", "run:1234abcd/await_build")],
    )
    found = explain(facts)
    assert found is not None and found.title == "Canceled: canceled by ada"


def test_superseded_names_the_build_that_replaced_it() -> None:
    reason = "superseded by build 42 of the newer commit 0123456789ab"
    found = explain(FailureFacts(BuildState.SUPERSEDED, error=reason))
    assert found is not None and found.cls == FailureClass.SUPERSEDED
    assert found.title == "Superseded by build 42" and found.build_id == 42


def test_an_unknown_failure_falls_back_to_the_error_and_the_last_error_line() -> None:
    found = failed("something odd happened\nmore detail", "step output", "ERROR something odd happened", step=None)
    assert found.cls == FailureClass.UNKNOWN
    assert found.title == "The build failed: something odd happened"
    assert found.line_no == 1


def test_the_most_specific_cause_wins_over_the_generic_run_failure() -> None:
    found = failed(
        run_error("npm ci", 1), "npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padx - Not found"
    )
    assert found.cls == FailureClass.DEPENDENCY


def test_only_the_failing_step_s_lines_are_looked_at() -> None:
    lines = [
        LogLine(build_id=1, seq=0, stream="stderr", text="Killed", vertex="[2/3] RUN ./flaky-but-retried"),
        LogLine(build_id=1, seq=1, stream="stderr", text="make: *** Error 2", vertex="[3/3] RUN make"),
    ]
    found = explain(FailureFacts(BuildState.FAILED, error=run_error("make", 2), error_step="[3/3] RUN make", log=lines))
    assert found is not None and found.cls == FailureClass.RUN_FAILED


@pytest.mark.parametrize("state", [BuildState.SUCCEEDED, BuildState.BUILDING, BuildState.QUEUED])
def test_a_build_that_succeeded_or_runs_has_no_explanation(state: BuildState) -> None:
    assert explain(FailureFacts(state, error=None)) is None
