"""Object keys: one shape for every backend, refused before any I/O."""

from __future__ import annotations

import pytest

from cctv_gov.kit.storage import InvalidObjectKey, StorageError, validate_key
from cctv_gov.kit.storage.keys import MAX_KEY_LENGTH, validate_prefix

REFUSED = {
    "traversal": "../../etc/passwd",
    "traversal-inside": "a/../b",
    "absolute": "/abs",
    "trailing-slash": "a/b/",
    "double-slash": "a//b",
    "dot-segment": "a/./b",
    "lone-dot": ".",
    "lone-dotdot": "..",
    "hidden": ".hidden",
    "hidden-segment": "a/.hidden/b",
    "backslash": "a\\b",
    "backslash-traversal": "..\\..\\x",
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "del": "a\x7fb",
    "too-long": "a" * (MAX_KEY_LENGTH + 1),
    "segment-too-long": "a/" + "b" * 256,
    "unicode": "caméra/1.mp4",
    "unicode-slash-lookalike": "a\u2215b",
    "fullwidth-dot": "\uff0e\uff0e/x",
    "space": "a b",
    "percent": "a%2Fb",
    "colon": "c:/x",
    "empty": "",
    "question": "a?b",
}

ACCEPTED = [
    "a",
    "A-Z_0.9",
    "site-a/cam-01/2026/11/23/09-00-00.mp4",
    "segment.with.dots..",
    "-leading-dash",
    "_underscore/x",
    "a" * 255 + "/" + "b" * 254 + "/c",  # exactly MAX_KEY_LENGTH
    "/".join(["b" * 255, "c"]),
]


@pytest.mark.parametrize("key", REFUSED.values(), ids=REFUSED.keys())
def test_refused_keys(key: str) -> None:
    with pytest.raises(InvalidObjectKey) as excinfo:
        validate_key(key)
    assert isinstance(excinfo.value, StorageError)
    assert str(excinfo.value), "the refusal says why"


@pytest.mark.parametrize("key", ACCEPTED)
def test_accepted_keys(key: str) -> None:
    assert validate_key(key) == key


def test_length_limits_are_exact() -> None:
    longest = "x" * 255 + "/" + "y" * 254 + "/" + "z"
    assert len(longest) == MAX_KEY_LENGTH
    assert validate_key(longest) == longest
    with pytest.raises(InvalidObjectKey, match="at most 512"):
        validate_key(longest + "z")
    assert validate_key("s" * 255) == "s" * 255
    with pytest.raises(InvalidObjectKey, match="segment must be at most 255"):
        validate_key("s" * 256)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("a//b", "empty segment"),
        ("a/./b", r"'\.' or '\.\.'"),
        (".hidden", "must not start with '.'"),
        ("a\\b", "backslash"),
        ("a\x00b", "control"),
        ("/abs", "start or end"),
        ("é", "A-Z a-z 0-9"),
    ],
)
def test_messages_name_the_rule(key: str, reason: str) -> None:
    with pytest.raises(InvalidObjectKey, match=reason):
        validate_key(key)


@pytest.mark.parametrize("prefix", ["", "site-a", "site-a/", "site-a/cam-0", "site-a/cam-01/2026/"])
def test_listing_prefixes_accepted(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "../", "a//", "/a", ".h", "a/../"])
def test_listing_prefixes_refused(prefix: str) -> None:
    with pytest.raises(InvalidObjectKey):
        validate_prefix(prefix)
