"""The module-size check of `./dev check` finds an oversized module and passes the package as it is."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_module_size", REPO / "scripts" / "check_module_size.py")
assert _spec and _spec.loader
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)


def test_the_package_has_no_module_over_the_limit() -> None:
    assert check.oversized(REPO) == []


def test_an_oversized_module_is_found_and_generated_code_is_not(tmp_path: Path) -> None:
    (tmp_path / "starforge_dag" / "buildkit" / "pb").mkdir(parents=True)
    (tmp_path / "starforge_dag" / "big.py").write_text("x = 1\n" * (check.LIMIT + 1))
    (tmp_path / "starforge_dag" / "small.py").write_text("x = 1\n" * check.LIMIT)
    (tmp_path / "starforge_dag" / "buildkit" / "pb" / "huge_pb2.py").write_text("x = 1\n" * 5000)
    assert check.oversized(tmp_path) == [("starforge_dag/big.py", check.LIMIT + 1)]
