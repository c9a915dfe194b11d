from starforge_dag.github.signature import sign, verify_signature

SECRET = b"It's a Secret to Everybody"
BODY = b"Hello, World!"


def test_matches_githubs_documented_example() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, BODY) == expected
    assert verify_signature(SECRET, BODY, expected)


def test_rejects_tampered_body_wrong_secret_and_malformed_headers() -> None:
    good = sign(SECRET, BODY)
    assert not verify_signature(SECRET, BODY + b" ", good)
    assert not verify_signature(b"other", BODY, good)
    assert not verify_signature(SECRET, BODY, None)
    assert not verify_signature(SECRET, BODY, "")
    assert not verify_signature(SECRET, BODY, good.removeprefix("sha256="))
    assert not verify_signature(SECRET, BODY, "sha1=" + good.removeprefix("sha256="))
    assert not verify_signature(SECRET, BODY, "sha256=zz")


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature(b"", BODY, sign(b"", BODY))
