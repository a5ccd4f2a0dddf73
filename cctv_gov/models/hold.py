from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cctv_gov.models.base import Base, UTCDateTime


class HoldState(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    REFUSED = "refused"
    ENDED = "ended"


class EvidenceHold(Base):
    """Footage of some cameras over a time window kept past retention for an incident, once a General Manager
    approves it in writing, until ``ends_at``."""

    __tablename__ = "evidence_holds"
    __table_args__ = (
        CheckConstraint("window_end > window_start", name="window_order"),
        Index("ix_evidence_holds_site_state", "site_id", "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sites.id"))
    state: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    incident_ref: Mapped[str] = mapped_column(String(100))
    proposed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Requested end until approved; then the approved end (extended only by a new approval)."""
    approval_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(Text)
    key_destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the hold's own key was destroyed (after it ended and its footage was erased)."""


class HoldCamera(Base):
    __tablename__ = "hold_cameras"

    hold_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("evidence_holds.id"), primary_key=True)
    camera_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cameras.id"), primary_key=True)


class HeldKey(Base):
    """A held segment's data key wrapped under the hold's own key: it outlives the segment's day key."""

    __tablename__ = "held_keys"

    hold_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary(48))
