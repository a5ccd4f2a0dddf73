"""The leaf entry: canonical JSON (RFC 8785) of identifiers and hashes, never personal data.

Free text (a stated purpose) enters the leaf only as its SHA-256, so the log can be published or handed to a
recipient without disclosing it, while the text kept beside it is still bound by the hash.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import rfc8785

ENTRY_VERSION = 1
MAX_SAFE_INTEGER = 2**53 - 1

Scalar = str | int | bool | None


def purpose_hash(purpose: str | None) -> str | None:
    return None if purpose is None else hashlib.sha256(purpose.encode()).hexdigest()


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def entry_fields(row: Any) -> dict[str, Any]:
    """The leaf entry of an audit event, read from its row (an ``AuditEvent`` or a result row with the same
    column names). Recording and verifying both use this one function, so they cannot drift apart."""
    return {
        "v": ENTRY_VERSION,
        "event_id": str(row.event_id),
        "time": format_time(row.occurred_at),
        "actor": {"id": _id(row.actor_id), "kind": row.actor_kind, "role": row.actor_role},
        "action": row.action,
        "target": {"type": row.target_type, "id": row.target_id},
        "site_id": _id(row.site_id),
        "purpose_sha256": purpose_hash(row.purpose),
        "request_id": row.request_id,
        "outcome": row.outcome,
        "details": row.details,
    }


def canonical(fields: dict[str, Any]) -> bytes:
    encoded: bytes = rfc8785.dumps(fields)
    return encoded


def check_details(details: dict[str, Any]) -> dict[str, Scalar]:
    """Details are flat identifiers, counts and hashes: no nested objects, no floats (JCS number traps)."""
    for key, value in details.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, str | int | bool)):
            raise ValueError(f"audit detail {key!r} must be a str, int, bool or None")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"audit detail {key!r} is outside the I-JSON integer range (RFC 8785)")
    return details
