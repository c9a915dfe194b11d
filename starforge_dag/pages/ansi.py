"""ANSI colours of build output as styled text runs: SGR codes become CSS class names, everything else is text.

Only classes come out (the page's Content-Security-Policy forbids inline styles): the 16 colours by name, 256-colour
and 24-bit colours folded onto the nearest of them. Other escape sequences and control characters are dropped; a
carriage return keeps what was drawn last, as a terminal shows a progress bar. HTML escaping is the renderer's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

_ESCAPES = re.compile(
    r"\x1b\[(?P<params>[0-9;:]*)(?P<final>[@-~])"  # CSI, SGR when it ends in m
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, hyperlinks), terminated or not
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
    r"|\x1b"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
_BASIC_RGB = (
    (0, 0, 0),
    (205, 49, 49),
    (13, 188, 121),
    (229, 229, 16),
    (36, 114, 200),
    (188, 63, 188),
    (17, 168, 205),
    (229, 229, 229),
    (102, 102, 102),
    (241, 76, 76),
    (35, 209, 139),
    (245, 245, 67),
    (59, 142, 234),
    (214, 112, 214),
    (41, 184, 219),
    (255, 255, 255),
)


@dataclass
class _Style:
    fg: int | None = None  # 0-15
    bg: int | None = None
    flags: set[str] = field(default_factory=set)

    def classes(self) -> str:
        names = [f"fg-{_name(self.fg)}"] if self.fg is not None else []
        names += [f"bg-{_name(self.bg)}"] if self.bg is not None else []
        return " ".join(names + sorted(self.flags))


def _name(index: int) -> str:
    return ("bright-" if index >= 8 else "") + COLOURS[index % 8]


def _nearest(rgb: tuple[int, int, int]) -> int:
    return min(range(16), key=lambda i: sum((a - b) ** 2 for a, b in zip(rgb, _BASIC_RGB[i])))


def _xterm(n: int) -> int:
    """One of the 16 colours for an xterm 256-colour index."""
    if n < 16:
        return n
    if n >= 232:
        level = 8 + (n - 232) * 10
        return _nearest((level, level, level))
    n -= 16
    steps = (0, 95, 135, 175, 215, 255)
    return _nearest((steps[n // 36], steps[(n // 6) % 6], steps[n % 6]))


_FLAGS = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 7: "inverse", 9: "strike"}
_UNSET = {22: ("bold", "dim"), 23: ("italic",), 24: ("underline",), 27: ("inverse",), 29: ("strike",)}


def _apply(style: _Style, params: str) -> None:
    codes = [int(p) if p.isdigit() else 0 for p in re.split("[;:]", params)] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0:
            style.fg, style.bg, style.flags = None, None, set()
        elif code in _FLAGS:
            style.flags.add(_FLAGS[code])
        elif code in _UNSET:
            style.flags.difference_update(_UNSET[code])
        elif 30 <= code <= 37:
            style.fg = code - 30
        elif 90 <= code <= 97:
            style.fg = code - 90 + 8
        elif 40 <= code <= 47:
            style.bg = code - 40
        elif 100 <= code <= 107:
            style.bg = code - 100 + 8
        elif code == 39:
            style.fg = None
        elif code == 49:
            style.bg = None
        elif code in (38, 48) and i + 1 < len(codes):
            colour: int | None = None
            if codes[i + 1] == 5 and i + 2 < len(codes):
                colour, i = _xterm(min(codes[i + 2], 255)), i + 2
            elif codes[i + 1] == 2 and i + 4 < len(codes):
                rgb = (min(codes[i + 2], 255), min(codes[i + 3], 255), min(codes[i + 4], 255))
                colour, i = _nearest(rgb), i + 4
            if code == 38:
                style.fg = colour
            else:
                style.bg = colour
        i += 1


def spans(text: str) -> list[tuple[str, str]]:
    """(classes, text) runs of one log line, plain text only: never markup."""
    text = text.rstrip("\r").rsplit("\r", 1)[-1]
    out: list[tuple[str, str]] = []
    style = _Style()
    position = 0

    def emit(chunk: str) -> None:
        chunk = _CONTROL.sub("", chunk)
        if not chunk:
            return
        classes = style.classes()
        if out and out[-1][0] == classes:
            out[-1] = (classes, out[-1][1] + chunk)
        else:
            out.append((classes, chunk))

    for found in _ESCAPES.finditer(text):
        emit(text[position : found.start()])
        if found.group("final") == "m":
            _apply(style, found.group("params") or "")
        position = found.end()
    emit(text[position:])
    return out


def to_html(text: str) -> Markup:
    """One log line as escaped HTML, coloured runs in `<span class>`."""
    parts = [
        Markup('<span class="{}">{}</span>').format(classes, chunk) if classes else escape(chunk)
        for classes, chunk in spans(text)
    ]
    return Markup("").join(parts)


def plain(text: str) -> str:
    """The line as a terminal would print it, colours dropped."""
    return "".join(chunk for _, chunk in spans(text))
