from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cctv_gov.models.base import Base, UTCDateTime


class WrittenApproval(Base):
    """A General Manager's written decision on one exact scope (an evidence hold now; disclosures later).

    ``note`` is the record itself — canonical JSON of every field below, signed by the service as a C2SP
    signed note — so it can be checked offline with the service's published key.
    """

    __tablename__ = "written_approvals"
    __table_args__ = (
        CheckConstraint("decision IN ('approve', 'refuse')", name="decision"),
        Index("ix_written_approvals_subject", "subject_type", "subject_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    site_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    decision: Mapped[str] = mapped_column(String(16))
    statement: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    """Canonical JSON of exactly what was approved (cameras, window, end date ...)."""
    approver_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    approver_name: Mapped[str] = mapped_column(String(200))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)
