"""ANSI SGR colours become class names and every character of the line is escaped: log lines are hostile input."""

from __future__ import annotations

import pytest

from starforge_dag.pages.ansi import COLOURS, plain, spans, to_html


def test_colours_and_styles_become_classes() -> None:
    line = "\x1b[1;31mERROR\x1b[0m build \x1b[32mok\x1b[39m \x1b[4munder\x1b[24mline"
    assert spans(line) == [
        ("fg-red bold", "ERROR"),
        ("", " build "),
        ("fg-green", "ok"),
        ("", " "),
        ("underline", "under"),
        ("", "line"),
    ]


def test_bright_background_256_and_truecolour_fold_onto_the_16_classes() -> None:
    assert spans("\x1b[93;44mx")[0][0] == "fg-bright-yellow bg-blue"
    assert spans("\x1b[38;5;196mred")[0][0] == "fg-red"
    assert spans("\x1b[38;5;231mwhite")[0][0] == "fg-bright-white"
    assert spans("\x1b[38;5;2mgreen")[0][0] == "fg-green"
    assert spans("\x1b[38;2;0;0;0;48;2;255;255;255mx")[0][0] == "fg-black bg-bright-white"


def test_other_escapes_and_control_characters_are_dropped() -> None:
    line = "\x1b]0;title\x07\x1b[2K\x1b[1Ghello\x00\x08 world\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\"
    assert plain(line) == "hello world" + "link"


def test_a_carriage_return_keeps_what_was_drawn_last() -> None:
    assert plain("10%\r50%\r100%\r") == "100%"


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "\x1b[31m</span><script>alert(1)</script>\x1b[0m",
        "&lt;already escaped&gt; & <b>",
    ],
)
def test_html_in_a_line_is_escaped_never_markup(hostile: str) -> None:
    html = str(to_html(hostile))
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert html.count("<span") == html.count("</span>")
    assert "&lt;" in html


def test_escaped_text_reads_as_the_original() -> None:
    html = str(to_html('a < b && c > "d"'))
    assert html == "a &lt; b &amp;&amp; c &gt; &#34;d&#34;"


def test_a_class_name_can_never_come_from_the_line() -> None:
    known = {f"{kind}-{bright}{colour}" for kind in ("fg", "bg") for bright in ("", "bright-") for colour in COLOURS}
    known |= {"bold", "dim", "italic", "underline", "inverse", "strike"}
    html = str(to_html('\x1b[38;5;999;1mx\x1b[48;5;m y\x1b[38;2;1;2mz\x1b[";onload=x;m w'))
    used = {name for part in html.split('class="')[1:] for name in part.split('"')[0].split()}
    assert used and used <= known
