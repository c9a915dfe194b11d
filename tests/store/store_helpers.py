"""Small helpers of the build store tests."""

from __future__ import annotations


def sha(n: int) -> str:
    """A well-formed commit id, distinct per n."""
    return f"{n:040x}"
