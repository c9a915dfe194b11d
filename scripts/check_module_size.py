"""Fail when a module of the package is over the size one can hold in one's head (generated code aside)."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 600
GENERATED = ("starforge_dag/buildkit/pb/", "starforge_dag/depot/pb/")


def oversized(root: Path, limit: int = LIMIT) -> list[tuple[str, int]]:
    found = []
    for path in sorted((root / "starforge_dag").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(GENERATED):
            continue
        lines = len(path.read_text().splitlines())
        if lines > limit:
            found.append((rel, lines))
    return found


def main() -> int:
    found = oversized(Path(__file__).resolve().parents[1])
    for rel, lines in found:
        print(f"{rel}: {lines} lines (at most {LIMIT}): split it along its seams", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
