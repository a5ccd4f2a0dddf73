"""SQL for written approvals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_gov.models import WrittenApproval


class ApprovalRepository:
    def add(self, session: Session, approval: WrittenApproval) -> None:
        session.add(approval)
        session.flush()

    def get(self, session: Session, approval_id: uuid.UUID) -> WrittenApproval | None:
        return session.get(WrittenApproval, approval_id)

    def for_subject(
        self, session: Session, subject_type: str, subject_id: uuid.UUID
    ) -> Sequence[WrittenApproval]:
        stmt = (
            select(WrittenApproval)
            .where(WrittenApproval.subject_type == subject_type, WrittenApproval.subject_id == subject_id)
            .order_by(WrittenApproval.decided_at, WrittenApproval.id)
        )
        return session.scalars(stmt).all()
