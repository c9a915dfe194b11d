"""Masking of secret values in build output: every occurrence of a value, of each line of a multi-line value and
of its JSON-escaped form becomes `*****`, also when it is split across chunks of a stream.

Values (and lines) shorter than MIN_SECRET_CHARS are not masked: masking `a` or `on` would blank every log
while hiding nothing a reader could not guess. Where occurrences of two secrets overlap, the union of the two
is masked, so no part of either shows. Matching is plain substring search in C (`str.find`), only for the
values present in the text, which keeps masking a small fraction of the cost of storing a line.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable

MASK = "*****"
MIN_SECRET_CHARS = 4


def _forms(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1]}
    for line in value.splitlines():
        forms.update((line, line.strip()))
    return {f for f in forms if len(f) >= MIN_SECRET_CHARS}


class Masker:
    """Masks the secret values it was built from; an empty masker returns text unchanged."""

    def __init__(self, values: Iterable[str]):
        forms: set[str] = set()
        for value in values:
            forms |= _forms(value)
        self._needles = tuple(sorted(forms, key=len, reverse=True))
        self.longest = len(self._needles[0]) if self._needles else 0

    def __bool__(self) -> bool:
        return bool(self._needles)

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Merged (start, end) spans of every occurrence of every needle in text."""
        spans: list[tuple[int, int]] = []
        for needle in self._needles:
            at = text.find(needle)
            while at != -1:
                spans.append((at, at + len(needle)))
                at = text.find(needle, at + 1)
        if len(spans) < 2:
            return spans
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            last_start, last_end = merged[-1]
            if start < last_end:
                merged[-1] = (last_start, max(last_end, end))
            else:
                merged.append((start, end))
        return merged

    @staticmethod
    def _apply(text: str, spans: list[tuple[int, int]]) -> str:
        out: list[str] = []
        last = 0
        for start, end in spans:
            out += (text[last:start], MASK)
            last = end
        out.append(text[last:])
        return "".join(out)

    def mask(self, text: str) -> str:
        if not self._needles:
            return text
        spans = self._spans(text)
        return self._apply(text, spans) if spans else text

    def mask_lines(self, lines: list[str]) -> list[str]:
        """Many lines at once: occurrences are searched for in the joined text, and only the lines they touch
        are masked one by one (a value never spans lines once each of its lines is a needle)."""
        if not self._needles or not lines:
            return lines
        joined = "\n".join(lines)
        spans = self._spans(joined)
        if not spans:
            return lines
        starts, at = [], 0
        for line in lines:
            starts.append(at)
            at += len(line) + 1
        touched: set[int] = set()
        for start, end in spans:
            touched.update(range(bisect_right(starts, start) - 1, bisect_right(starts, end - 1)))
        out = list(lines)
        for index in touched:
            out[index] = self.mask(lines[index])
        return out

    def stream(self) -> StreamMasker:
        return StreamMasker(self)


class StreamMasker:
    """Masks a stream chunk by chunk, holding back the last `longest - 1` characters (and a masked span that
    reaches into them) until the next chunk, or `flush` at the end, shows whether a secret begins there."""

    def __init__(self, masker: Masker):
        self._masker = masker
        self._pending = ""

    def feed(self, chunk: str) -> str:
        masker = self._masker
        if not masker:
            return chunk
        text = self._pending + chunk
        spans = masker._spans(text)
        boundary = max(len(text) - (masker.longest - 1), 0)
        for start, end in spans:
            if start < boundary < end:
                boundary = start  # an overlapping secret may still grow it: keep the whole span for next time
        emitted = [(s, e) for s, e in spans if e <= boundary]
        self._pending = text[boundary:]
        return masker._apply(text[:boundary], emitted)

    def flush(self) -> str:
        """The rest of the stream, masked: call once, at its end."""
        text, self._pending = self._pending, ""
        return self._masker.mask(text)
