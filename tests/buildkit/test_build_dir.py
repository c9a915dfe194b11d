"""`starforge build-dir` as people type it: docker build's flags, progress on stderr, one JSON object, no Dagster."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.files import write_files
from support.images import image_config, image_files, registry_manifest

REPO = Path(__file__).resolve().parents[2]
STARFORGE = REPO / ".venv" / "bin" / "starforge"


def build_dir(buildkit_addr: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """Run the installed command; exactly one JSON line on stdout is part of what is checked."""
    done = subprocess.run(
        [str(STARFORGE), "build-dir", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            "STARFORGE_BUILD_BACKEND": "buildkit",
            "STARFORGE_BUILDKIT_ADDR": buildkit_addr,
            **(env or {}),
        },
    )
    (line,) = done.stdout.splitlines()
    return done.returncode, json.loads(line), done.stderr


@pytest.mark.integration
def test_build_args_target_and_a_dockerfile_elsewhere(
    buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    context = write_files(tmp_path / "ctx", {"greeting.txt": "from the context\n"})
    dockerfile = (
        write_files(
            tmp_path / "docker",
            {
                "App.Dockerfile": f"FROM {base_image} AS build\nARG GREETING\nARG NONCE\n"
                'COPY greeting.txt /greeting.txt\nRUN echo "$GREETING $NONCE" > /args\n'
                f"FROM {base_image} AS final\nRUN exit 9\n"
            },
        )
        / "App.Dockerfile"
    )
    nonce = uuid.uuid4().hex

    code, report, _ = build_dir(
        buildkit_addr,
        str(context),
        "-t",
        image_name,
        "-f",
        str(dockerfile),
        "--build-arg",
        "GREETING=hi there",
        "--build-arg",
        f"NONCE={nonce}",
        "--target",
        "build",
    )

    assert code == 0 and report["status"] == "succeeded", report
    files = image_files(image_name)
    assert files["/args"] == f"hi there {nonce}\n".encode()
    assert files["/greeting.txt"] == b"from the context\n"
    missing = build_dir(buildkit_addr, str(context), "-t", image_name, "-f", str(tmp_path / "nope"))
    assert missing[0] == 1 and missing[1]["status"] == "failed" and "no Dockerfile" in missing[1]["error"]
    bad_arg = build_dir(buildkit_addr, str(context), "-t", image_name, "--build-arg", "NO_EQUALS")
    assert bad_arg[0] == 1 and bad_arg[1]["error_kind"] == "user" and "KEY=VALUE" in bad_arg[1]["error"]


@pytest.mark.integration
def test_platform_sets_the_image_platform(buildkit_addr: str, image_name: str, tmp_path: Path) -> None:
    context = write_files(tmp_path, {"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hi\n"})

    code, report, _ = build_dir(buildkit_addr, str(context), "-t", image_name, "--platform", "linux/arm64")

    assert code == 0, report
    config = image_config(image_name)
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    assert report["digest"] == registry_manifest(image_name)[2]


def _step(stderr: str, name_end: str) -> str:
    """The `#N` number docker-style progress gave the step whose name ends with `name_end`."""
    return next(line.split()[0] for line in stderr.splitlines() if line.startswith("#") and line.endswith(name_end))


@pytest.mark.integration
def test_no_cache_runs_the_steps_again(buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path) -> None:
    nonce = uuid.uuid4().hex
    context = write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN echo {nonce} && date +%s%N > /when\n"})
    first = build_dir(buildkit_addr, str(context), "-t", image_name)
    cached = build_dir(buildkit_addr, str(context), "-t", image_name)
    fresh = build_dir(buildkit_addr, str(context), "-t", image_name, "--no-cache")

    assert first[0] == cached[0] == fresh[0] == 0, (first, cached, fresh)
    run_cached, run_fresh = _step(cached[2], f"RUN echo {nonce} && date +%s%N > /when"), _step(fresh[2], "> /when")
    assert f"{run_cached} CACHED" in cached[2] and cached[1]["digest"] == first[1]["digest"]
    assert f"{run_fresh} CACHED" not in fresh[2]
    assert re.search(rf"^{run_fresh} \d+\.\d+ {nonce}$", fresh[2], re.M)  # the step ran: its output again
    assert fresh[1]["digest"] != first[1]["digest"]  # /when was written again


@pytest.mark.integration
def test_secrets_from_the_environment_and_from_a_file(
    buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    token, key = uuid.uuid4().hex, uuid.uuid4().hex
    (tmp_path / "key.txt").write_text(key)
    context = write_files(
        tmp_path / "ctx",
        {
            "Dockerfile": f"FROM {base_image}\n"
            f"RUN --mount=type=secret,id=token --mount=type=secret,id=key : {uuid.uuid4().hex}; "
            "cat /run/secrets/token /run/secrets/key | sha256sum | cut -d' ' -f1 > /hash\n"
        },
    )

    code, report, stderr = build_dir(
        buildkit_addr,
        str(context),
        "-t",
        image_name,
        "--secret",
        "id=token,env=BUILD_TOKEN_FOR_TEST",
        "--secret",
        f"id=key,src={tmp_path / 'key.txt'}",
        env={"BUILD_TOKEN_FOR_TEST": token},
    )

    assert code == 0, report
    assert image_files(image_name)["/hash"] == (hashlib.sha256((token + key).encode()).hexdigest() + "\n").encode()
    assert token not in stderr + json.dumps(report) and key not in stderr + json.dumps(report)
    unset = build_dir(buildkit_addr, str(context), "-t", image_name, "--secret", "id=token,env=UNSET_VAR_FOR_TEST")
    assert unset[0] == 1 and unset[1]["error_kind"] == "user" and "UNSET_VAR_FOR_TEST" in unset[1]["error"]


@pytest.mark.integration
def test_progress_reads_like_docker_build_and_a_failure_is_one_json_object(
    buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path
) -> None:
    nonce = uuid.uuid4().hex
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN echo out-{nonce} && echo err-{nonce} >&2\n"})
    code, report, stderr = build_dir(buildkit_addr, str(tmp_path), "-t", image_name)
    lines = [line for line in stderr.splitlines() if line]
    assert code == 0 and report["digest"] == registry_manifest(image_name)[2]
    assert all(line.startswith("#") for line in lines), lines
    run = next(line.split()[0] for line in lines if line.endswith(f"RUN echo out-{nonce} && echo err-{nonce} >&2"))
    output = [line for line in lines if line.startswith(run + " ") and f"-{nonce}" in line and "RUN" not in line]
    assert sorted(line.split(" ", 2)[2] for line in output) == [f"err-{nonce}", f"out-{nonce}"]
    assert any(line.startswith(run + " DONE ") and line.endswith("s") for line in lines)
    assert lines[-1].endswith(f"pushed {image_name} {report['digest']}")

    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN : {nonce}; exit 3\n"})
    code, report, stderr = build_dir(buildkit_addr, str(tmp_path), "-t", image_name, "-q")
    assert code == 1 and stderr == ""
    assert report["status"] == "failed" and report["digest"] is None and report["image"] == image_name
    assert report["error_kind"] == "user" and report["step"] == f"[2/2] RUN : {nonce}; exit 3"


PROBE = """
import json, sys
from starforge_dag.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "dagster": sorted(m for m in sys.modules if m.split(".")[0] == "dagster")}), file=sys.stderr)
"""


@pytest.mark.integration
def test_build_dir_never_imports_dagster(buildkit_addr: str, base_image: str, image_name: str, tmp_path: Path) -> None:
    write_files(tmp_path, {"Dockerfile": f"FROM {base_image}\nRUN echo {uuid.uuid4().hex}\n"})
    planned = write_files(tmp_path / "planned", {"start.sh": "#!/bin/sh\necho hi\n"})
    env = {**os.environ, "STARFORGE_BUILD_BACKEND": "buildkit", "STARFORGE_BUILDKIT_ADDR": buildkit_addr}
    for context in (tmp_path, planned):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, "build-dir", str(context), "-t", image_name],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        probe = json.loads(done.stderr.splitlines()[-1])
        assert probe == {"code": 0, "dagster": []}, done.stderr[-2000:]
        assert json.loads(done.stdout)["digest"] == registry_manifest(image_name)[2]
