from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cctv_gov.models.base import Base, UTCDateTime


class SegmentTombstone(Base):
    """What remains of an erased segment: which footage it was (by hash), never the footage or its key."""

    __tablename__ = "segment_tombstones"
    __table_args__ = (Index("ix_segment_tombstones_site_purged", "site_id", "purged_at"),)

    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    camera_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_day: Mapped[date] = mapped_column(Date)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purge_run_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class DayKeyDestruction(Base):
    """A site-day key destroyed by the purge: from then on every copy of that day's footage is unreadable."""

    __tablename__ = "day_key_destructions"

    site_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    destroyed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    purge_run_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class PurgeRun(Base):
    """One pass of the purge, with what it did; the compliance report shows the last successful one."""

    __tablename__ = "purge_runs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    forced: Mapped[bool] = mapped_column(Boolean)
    outcome: Mapped[str] = mapped_column(String(32))
    """running | ok | stopped (the safety threshold) | failed"""
    segments_erased: Mapped[int] = mapped_column(Integer)
    keys_destroyed: Mapped[int] = mapped_column(Integer)
