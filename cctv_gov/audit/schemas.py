from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

from pydantic import Field

from cctv_gov.kit.schemas import Output
from cctv_gov.models import AuditEvent


class PublicKeys(Output):
    origin: str = Field(examples=["cctv-gov.example.org/audit"])
    current: str = Field(description="C2SP signed-note verifier key of the current signing key")
    previous: list[str] = Field(description="Verifier keys of earlier signing keys (rotation)")


class ProofOut(Output):
    tree_size: int
    root_hash: str = Field(description="base64")
    hashes: list[str] = Field(description="base64, in RFC 9162 order")


class InclusionProofOut(ProofOut):
    leaf_index: int


class ConsistencyProofOut(ProofOut):
    first: int


class AuditEventOut(Output):
    id: int
    event_id: uuid.UUID
    leaf_index: int | None = Field(description="null until the sequencer has integrated it")
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_kind: str
    actor_role: str | None
    action: str
    target_type: str
    target_id: str | None
    site_id: uuid.UUID | None
    purpose: str | None
    request_id: str | None
    outcome: str
    details: dict[str, Any]
    entry: str = Field(description="The canonical JSON leaf entry (RFC 8785)")
    leaf_hash: str = Field(description="base64 of SHA-256(0x00 || entry)")

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(
            id=event.id,
            event_id=event.event_id,
            leaf_index=event.leaf_index,
            occurred_at=event.occurred_at,
            actor_id=event.actor_id,
            actor_kind=event.actor_kind,
            actor_role=event.actor_role,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            site_id=event.site_id,
            purpose=event.purpose,
            request_id=event.request_id,
            outcome=event.outcome,
            details=event.details,
            entry=event.entry.decode(),
            leaf_hash=base64.b64encode(event.leaf_hash).decode(),
        )


class EventProofOut(InclusionProofOut):
    event: AuditEventOut
