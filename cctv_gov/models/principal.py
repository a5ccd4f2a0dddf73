from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from cctv_gov.models.base import Base, UTCDateTime


class Principal(Base):
    """Someone or something that holds API tokens: a person, or the ingest agent of one NVR."""

    __tablename__ = "principals"
    __table_args__ = (CheckConstraint("kind IN ('person', 'agent')", name="kind"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RoleGrant(Base):
    """A role held at one site, or install-wide when ``site_id`` is NULL (admins and auditors of a chain)."""

    __tablename__ = "role_grants"
    __table_args__ = (
        CheckConstraint(
            "role IN ('general_manager', 'operator', 'auditor', 'requester', 'agent', 'admin')", name="role"
        ),
        Index("ix_role_grants_principal_id", "principal_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    principal_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(String(32))
    site_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
