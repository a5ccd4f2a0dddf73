"""Rules for written approvals: only a General Manager of the site decides; the record is signed and audited."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from cctv_gov.approvals.repository import ApprovalRepository
from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.entry import canonical
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor, Role
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.kit.signed_note import Signer
from cctv_gov.models import WrittenApproval

RECORD_TYPE = "cctv-gov/written-approval/v1"


class ApprovalService:
    def __init__(self, clock: Clock, audit: AuditLog, signer: Signer) -> None:
        self.clock = clock
        self.audit = audit
        self.signer = signer
        self.repo = ApprovalRepository()

    def record(
        self,
        session: Session,
        actor: Actor,
        site_id: uuid.UUID,
        *,
        subject_type: str,
        subject_id: uuid.UUID,
        approve: bool,
        statement: str,
        scope: dict[str, Any],
    ) -> WrittenApproval:
        """A General Manager's decision, signed by the service over its canonical JSON, and audited."""
        actor.require([Role.GENERAL_MANAGER], site_id)
        approval_id = new_id()
        now = self.clock.now()
        decision = "approve" if approve else "refuse"
        scope_json = canonical(scope).decode()
        record = {
            "type": RECORD_TYPE,
            "id": str(approval_id),
            "site_id": str(site_id),
            "subject_type": subject_type,
            "subject_id": str(subject_id),
            "decision": decision,
            "statement": statement,
            "scope": json.loads(scope_json),
            "approver_id": str(actor.principal_id),
            "approver_name": actor.name,
            "decided_at": now.isoformat(),
        }
        note = self.signer.sign(canonical(record).decode() + "\n")
        approval = WrittenApproval(
            id=approval_id,
            site_id=site_id,
            subject_type=subject_type,
            subject_id=subject_id,
            decision=decision,
            statement=statement,
            scope=scope_json,
            approver_id=actor.principal_id,
            approver_name=actor.name,
            decided_at=now,
            note=note,
        )
        self.repo.add(session, approval)
        self.audit.record(
            session,
            actor,
            AuditAction.APPROVAL_APPROVE if approve else AuditAction.APPROVAL_REFUSE,
            target_type=subject_type,
            target_id=subject_id,
            site_id=site_id,
            purpose=statement,
            details={"approval_id": str(approval_id), "scope_sha256": _sha256(scope_json)},
        )
        return approval

    def for_subject(
        self, session: Session, subject_type: str, subject_id: uuid.UUID
    ) -> list[WrittenApproval]:
        return list(self.repo.for_subject(session, subject_type, subject_id))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
