"""Masking secret values in build output: whole values, each line of multi-line ones, across chunk boundaries."""

from __future__ import annotations

import pytest

from starforge_dag.logs.masking import MASK, MIN_SECRET_CHARS, Masker

TOKEN = "npm_9f8e7d6c5b4a"


def streamed(masker: Masker, chunks: list[str]) -> str:
    stream = masker.stream()
    return "".join(stream.feed(c) for c in chunks) + stream.flush()


def test_every_occurrence_is_masked_and_other_text_kept() -> None:
    masker = Masker([TOKEN])
    assert masker.mask(f"token={TOKEN} and again {TOKEN}.") == f"token={MASK} and again {MASK}."
    assert masker.mask("nothing here") == "nothing here"


def test_each_line_of_a_multi_line_value_is_masked_alone() -> None:
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----"
    masker = Masker([key])
    assert masker.mask(f"a {key} b") == f"a {MASK} b"
    assert masker.mask("line: MIIEvQIBADANBgkq") == f"line: {MASK}"
    assert masker.mask('json: "-----BEGIN KEY-----\\nMIIEvQIBADANBgkq\\n-----END KEY-----"') == f'json: "{MASK}"'


def test_overlapping_secrets_are_masked_together_so_no_part_shows() -> None:
    masker = Masker(["abcd1234", "1234wxyz", "cd12"])
    assert masker.mask("xx abcd1234wxyz yy") == f"xx {MASK} yy"


def test_values_too_short_to_mask_are_left_alone() -> None:
    masker = Masker(["a" * (MIN_SECRET_CHARS - 1), ""])
    assert not masker
    assert masker.mask("aaa bbb") == "aaa bbb"
    assert Masker(["a" * MIN_SECRET_CHARS]).mask("aaaa") == MASK


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_a_secret_split_across_chunks_is_masked_wherever_the_cut_falls(size: int) -> None:
    masker = Masker([TOKEN, "secondsecret"])
    text = f"#1 RUN echo {TOKEN}\n#2 {TOKEN[:5]} partial then secondsecret{TOKEN}!"
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    assert streamed(masker, chunks) == masker.mask(text)
    for cut in range(len(text) + 1):
        assert streamed(masker, [text[:cut], text[cut:]]) == masker.mask(text)


def test_the_stream_holds_back_less_than_the_longest_secret() -> None:
    masker = Masker([TOKEN])
    stream = masker.stream()
    out = stream.feed("x" * 100)
    assert len(out) == 100 - (len(TOKEN) - 1)
    assert stream.feed(TOKEN[:4]) == "xxxx"
    assert stream.flush() == "x" * (len(TOKEN) - 5) + TOKEN[:4]
    assert Masker([]).stream().feed("all of it") == "all of it"


def test_masking_many_lines_at_once_is_masking_each() -> None:
    masker = Masker([TOKEN, "other-secret", "line one\nline two"])
    lines = [f"{i}: {TOKEN if i % 7 == 0 else 'plain'} {'line two' if i % 5 == 0 else ''}" for i in range(200)]
    assert masker.mask_lines(lines) == [masker.mask(line) for line in lines]
    assert masker.mask_lines(["clean"]) == ["clean"]
    assert all(TOKEN not in line for line in masker.mask_lines(lines))


def test_an_overlapping_secret_completed_by_the_next_chunk_is_masked_whole() -> None:
    masker = Masker(["abcd1234", "1234wxyz"])
    assert streamed(masker, ["... abcd1234wx", "yz end"]) == f"... {MASK} end"
