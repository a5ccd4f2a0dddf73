from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from cctv_gov.models.base import Base, UTCDateTime


class SegmentState(StrEnum):
    PENDING = "pending"
    """Prepared: the time slot is reserved and a data key issued; the bytes are not verified yet."""
    REGISTERED = "registered"
    """The stored object was verified; the segment is evidence and can be listed and played."""
    QUARANTINED = "quarantined"
    """The stored object did not match; never served, its object removed."""
    EXPIRED = "expired"
    """Prepared but not completed in time; its slot is free and its object (if any) removed."""
    PURGING = "purging"
    """Past retention and being erased: never served again; a crashed pass finishes it next time."""


class Segment(Base):
    """A recorded file of one camera: an upload until its object is verified, then registered footage.

    Holds the evidence hash (SHA-256 of the plaintext as the NVR wrote it) and the data key wrapped by the
    site-day key (RFC 5649); never the data key itself.
    """

    __tablename__ = "segments"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="time_order"),
        CheckConstraint("size >= 0", name="size_positive"),
        Index("ix_segments_camera_time", "camera_id", "start_at"),
        Index("ix_segments_site_time", "site_id", "start_at"),
        Index("ix_segments_state_expiry", "state", "expires_at"),
        Index("ix_segments_site_state_end", "site_id", "state", "end_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    upload_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    site_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("sites.id"))
    camera_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cameras.id"))
    state: Mapped[str] = mapped_column(String(16))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    container: Mapped[str] = mapped_column(String(8))
    codec: Mapped[str | None] = mapped_column(String(32))
    chunk_size: Mapped[int] = mapped_column(Integer)
    ciphertext_size: Mapped[int] = mapped_column(BigInteger)
    ciphertext_md5: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    object_key: Mapped[str] = mapped_column(String(300))
    key_day: Mapped[date] = mapped_column(Date)
    """UTC day of ``start_at``: whose site-day key wraps ``wrapped_key``."""
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary(48))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    """Until when a pending upload may be completed."""
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set when the service itself received and checked the bytes (local backend)."""
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    legal_hold: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    """Whether the store holds the object under an S3 legal hold (set while an evidence hold covers it)."""
    object_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set by the cleanup job once the object of a quarantined or expired upload is gone."""
