"""Object keys: one conservative shape accepted by every backend, checked before any I/O.

A key is segments of ``[A-Za-z0-9._-]`` joined by single ``/``. No segment is empty or starts with ``.``
(so no ``.``/``..`` traversal, no hidden files, and the local backend's temporary files, which start with
``.``, can never collide with a key). The shape is the same on every backend, so a key that works locally
works on S3 and the other way round.
"""

from __future__ import annotations

import re

from cctv_gov.kit.storage.base import InvalidObjectKey

MAX_KEY_LENGTH = 512
MAX_SEGMENT_LENGTH = 255
"""File systems refuse longer names; refusing them everywhere keeps the backends interchangeable."""

_SEGMENT_CHARS = re.compile(r"[A-Za-z0-9._-]*")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is an acceptable object key, else raise InvalidObjectKey."""
    if not key:
        raise InvalidObjectKey("an object key must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(f"an object key must be at most {MAX_KEY_LENGTH} characters, got {len(key)}")
    if "\\" in key:
        raise InvalidObjectKey(f"an object key must not contain a backslash: {key!r}")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidObjectKey(f"an object key must not contain NUL or control characters: {key!r}")
    if key.startswith("/") or key.endswith("/"):
        raise InvalidObjectKey(f"an object key must not start or end with '/': {key!r}")
    for segment in key.split("/"):
        if not segment:
            raise InvalidObjectKey(f"an object key must not contain an empty segment ('//'): {key!r}")
        if segment in (".", ".."):
            raise InvalidObjectKey(f"an object key must not contain a '.' or '..' segment: {key!r}")
        if segment.startswith("."):
            raise InvalidObjectKey(f"an object key segment must not start with '.': {key!r}")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidObjectKey(
                f"an object key segment must be at most {MAX_SEGMENT_LENGTH} characters: {key!r}"
            )
        if not _SEGMENT_CHARS.fullmatch(segment):
            raise InvalidObjectKey(f"an object key may only use A-Z a-z 0-9 . _ - and '/': {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or the start of a key (it may end inside a segment or with ``/``)."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") and len(prefix) > 1 else prefix)
    return prefix
