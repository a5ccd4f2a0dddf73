from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cctv_gov.models.base import Base, UTCDateTime


class Site(Base):
    """A place with cameras (one gym, one shop). Every grant, camera and segment belongs to one."""

    __tablename__ = "sites"
    __table_args__ = (CheckConstraint("retention_days BETWEEN 1 AND 3650", name="retention_days_range"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    retention_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
