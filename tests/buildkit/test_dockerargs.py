"""Declared ARGs of a Dockerfile decide which plain variables become build args; secrets never do."""

from __future__ import annotations

import pytest

from starforge_dag.buildkit.dockerargs import declared_args, dockerfile_variables


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM busybox\nARG GREETING\nRUN echo $GREETING\n", {"GREETING"}),
        ("ARG BASE=busybox\nFROM $BASE\narg lower=1\n", {"BASE", "lower"}),
        ('FROM x\nARG A=1 B C="two words"\n', {"A", "B", "C"}),
        ("FROM x\nARG \\\n  CONTINUED=1\n", {"CONTINUED"}),
        ("# escape=`\nFROM x\nARG `\n  BACKTICK\n", {"BACKTICK"}),
        ("FROM x\n# ARG COMMENTED\nRUN echo ARG NOT_AN_ARG\n", set()),
        ("FROM x\nENV ARG=1\nLABEL ARG=2\n", set()),
        ("FROM x\nARG 1BAD ALSO-BAD GOOD\n", {"GOOD"}),
        ("FROM a AS one\nARG X\nFROM b AS two\nARG Y\n", {"X", "Y"}),
    ],
)
def test_declared_args(text: str, expected: set[str]) -> None:
    assert declared_args(text) == expected


def test_only_declared_plain_variables_become_build_args() -> None:
    out = dockerfile_variables(
        "FROM x\nARG GREETING\nARG NPM_TOKEN\n",
        {"GREETING": "hello", "UNUSED": "x"},
        ["NPM_TOKEN", "OTHER_SECRET"],
    )
    assert out.build_args == {"GREETING": "hello"}
    assert out.secrets == ["NPM_TOKEN", "OTHER_SECRET"]
    assert len(out.warnings) == 1
    assert "NPM_TOKEN" in out.warnings[0]
    assert "--mount=type=secret,id=NPM_TOKEN" in out.warnings[0]


def test_a_secret_is_never_a_build_arg_even_when_declared() -> None:
    out = dockerfile_variables("FROM x\nARG TOKEN\n", {}, ["TOKEN"])
    assert out.build_args == {}
