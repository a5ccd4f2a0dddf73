"""Identifiers: random UUIDs for rows, short hex ids for requests."""

from __future__ import annotations

import re
import uuid

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """Keep a caller's request id only when it is short and plain, so it is safe to log and echo."""
    if value and _REQUEST_ID.match(value):
        return value
    return new_request_id()
