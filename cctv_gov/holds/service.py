"""Rules for evidence holds.

* Operators and General Managers propose a hold (cameras, a time window, a written reason, an incident
  reference, an end date: 90 days by default).
* It takes effect only when a General Manager approves it in writing (a signed written-approval record of the
  exact scope). A refusal is recorded the same way.
* Its end date is extended only by a new written approval; it can be ended early when its purpose is
  discharged; it ends by itself on its end date, and its footage returns to the normal purge (erased at the next
  pass if already past retention).
* Review reminders: a hold is due for review 30 days after approval (or a week before it ends, if sooner).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from cctv_gov.approvals.service import ApprovalService
from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import SYSTEM_ACTOR, Actor
from cctv_gov.cameras.service import CameraService
from cctv_gov.errors import Conflict, InvalidInput, NotFound
from cctv_gov.holds.repository import HoldRepository
from cctv_gov.holds.schemas import HoldCreate
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.models import EvidenceHold, HoldState, WrittenApproval

DEFAULT_LENGTH = timedelta(days=90)
MAX_LENGTH = timedelta(days=3 * 365)
REVIEW_AFTER = timedelta(days=30)
REVIEW_BEFORE_END = timedelta(days=7)
SUBJECT = "evidence_hold"


@dataclass(frozen=True)
class HoldView:
    hold: EvidenceHold
    camera_ids: list[uuid.UUID]
    approvals: list[WrittenApproval]
    review_due: bool


class HoldService:
    def __init__(
        self, clock: Clock, audit: AuditLog, approvals: ApprovalService, cameras: CameraService
    ) -> None:
        self.clock = clock
        self.audit = audit
        self.approvals = approvals
        self.cameras = cameras
        self.repo = HoldRepository()

    def propose(self, session: Session, actor: Actor, site_id: uuid.UUID, data: HoldCreate) -> HoldView:
        now = self.clock.now()
        if data.end <= data.start:
            raise InvalidInput("end must be after start", code="invalid_time_range")
        ends_at = data.ends_at or now + DEFAULT_LENGTH
        if ends_at <= now:
            raise InvalidInput("ends_at must be in the future", code="invalid_end")
        if ends_at - now > MAX_LENGTH:
            raise InvalidInput("a hold may last at most three years at a time", code="hold_too_long")
        camera_ids = list(dict.fromkeys(data.camera_ids))
        for camera_id in camera_ids:
            self.cameras.get(session, site_id, camera_id)  # refuses another site's camera as not found
        hold = EvidenceHold(
            id=new_id(),
            site_id=site_id,
            state=HoldState.PROPOSED.value,
            window_start=data.start,
            window_end=data.end,
            reason=data.reason,
            incident_ref=data.incident_ref,
            proposed_by=actor.principal_id,
            proposed_at=now,
            ends_at=ends_at,
        )
        self.repo.add(session, hold, camera_ids)
        self.audit.record(
            session,
            actor,
            AuditAction.HOLD_PROPOSE,
            target_type="evidence_hold",
            target_id=hold.id,
            site_id=site_id,
            purpose=data.reason,
            details={
                "cameras": len(camera_ids),
                "start": data.start.isoformat(),
                "end": data.end.isoformat(),
                "ends_at": ends_at.isoformat(),
            },
        )
        return self._view(session, hold)

    def decide(
        self,
        session: Session,
        actor: Actor,
        site_id: uuid.UUID,
        hold_id: uuid.UUID,
        approve: bool,
        statement: str,
    ) -> HoldView:
        hold = self._get(session, site_id, hold_id, for_update=True)
        if hold.state != HoldState.PROPOSED.value:
            raise Conflict(
                f"the hold is {hold.state}; only a proposed hold is decided", code="hold_not_proposed"
            )
        now = self.clock.now()
        if hold.ends_at <= now:
            raise Conflict(
                "the requested end date has passed; propose the hold again", code="hold_end_passed"
            )
        approval = self.approvals.record(
            session,
            actor,
            site_id,
            subject_type=SUBJECT,
            subject_id=hold.id,
            approve=approve,
            statement=statement,
            scope=self._scope(session, hold, hold.ends_at),
        )
        hold.approval_id = approval.id
        if approve:
            hold.state = HoldState.ACTIVE.value
            hold.approved_at = now
            hold.review_at = min(now + REVIEW_AFTER, hold.ends_at - REVIEW_BEFORE_END)
        else:
            hold.state = HoldState.REFUSED.value
            hold.ended_at = now
            hold.end_reason = "refused"
        session.flush()
        return self._view(session, hold)

    def extend(
        self,
        session: Session,
        actor: Actor,
        site_id: uuid.UUID,
        hold_id: uuid.UUID,
        ends_at: datetime,
        statement: str,
    ) -> HoldView:
        hold = self._get(session, site_id, hold_id, for_update=True)
        now = self.clock.now()
        if hold.state != HoldState.ACTIVE.value or hold.ends_at <= now:
            raise Conflict("only a hold in force can be extended", code="hold_not_active")
        if ends_at <= hold.ends_at:
            raise InvalidInput("the new end must be later than the current one", code="invalid_end")
        if ends_at - now > MAX_LENGTH:
            raise InvalidInput("a hold may last at most three years at a time", code="hold_too_long")
        approval = self.approvals.record(
            session,
            actor,
            site_id,
            subject_type=SUBJECT,
            subject_id=hold.id,
            approve=True,
            statement=statement,
            scope=self._scope(session, hold, ends_at),
        )
        hold.approval_id = approval.id
        hold.ends_at = ends_at
        hold.review_at = min(now + REVIEW_AFTER, ends_at - REVIEW_BEFORE_END)
        session.flush()
        return self._view(session, hold)

    def end(
        self, session: Session, actor: Actor, site_id: uuid.UUID, hold_id: uuid.UUID, statement: str
    ) -> HoldView:
        hold = self._get(session, site_id, hold_id, for_update=True)
        if hold.state not in (HoldState.ACTIVE.value, HoldState.PROPOSED.value):
            raise Conflict(f"the hold is already {hold.state}", code="hold_not_active")
        self._close(session, actor, hold, statement, AuditAction.HOLD_END)
        return self._view(session, hold)

    def end_due(self, session: Session) -> int:
        """End every hold whose end date has passed (run by the purge before it selects anything)."""
        due = self.repo.due_to_end(session, self.clock.now())
        for hold in due:
            self._close(session, SYSTEM_ACTOR, hold, "its end date was reached", AuditAction.HOLD_EXPIRE)
        return len(due)

    def list(self, session: Session, actor: Actor, site_id: uuid.UUID) -> list[HoldView]:
        return [self._view(session, h) for h in self.repo.for_site(session, site_id)]

    def get(self, session: Session, site_id: uuid.UUID, hold_id: uuid.UUID) -> HoldView:
        return self._view(session, self._get(session, site_id, hold_id))

    def in_force(self, session: Session, site_id: uuid.UUID) -> Sequence[EvidenceHold]:
        now = self.clock.now()
        return [
            h
            for h in self.repo.for_site(session, site_id)
            if h.state == HoldState.ACTIVE.value and h.ends_at > now
        ]

    # -------------------------------------------------------------------------------------------------------

    def _close(
        self, session: Session, actor: Actor, hold: EvidenceHold, reason: str, action: AuditAction
    ) -> None:
        hold.state = HoldState.ENDED.value
        hold.ended_at = self.clock.now()
        hold.end_reason = reason
        session.flush()
        self.audit.record(
            session,
            actor,
            action,
            target_type="evidence_hold",
            target_id=hold.id,
            site_id=hold.site_id,
            purpose=reason,
            details={"incident_ref_sha256": _sha256(hold.incident_ref)},
        )

    def _scope(self, session: Session, hold: EvidenceHold, ends_at: datetime) -> dict[str, object]:
        cameras = sorted(str(c) for c in self.repo.cameras(session, [hold.id])[hold.id])
        return {
            "hold_id": str(hold.id),
            "site_id": str(hold.site_id),
            "camera_ids": cameras,
            "start": hold.window_start.isoformat(),
            "end": hold.window_end.isoformat(),
            "ends_at": ends_at.isoformat(),
            "incident_ref": hold.incident_ref,
            "reason": hold.reason,
        }

    def _get(
        self, session: Session, site_id: uuid.UUID, hold_id: uuid.UUID, *, for_update: bool = False
    ) -> EvidenceHold:
        hold = self.repo.get(session, hold_id, for_update=for_update)
        if hold is None or hold.site_id != site_id:
            raise NotFound("no such evidence hold at this site", code="hold_not_found")
        return hold

    def _view(self, session: Session, hold: EvidenceHold) -> HoldView:
        now = self.clock.now()
        review_due = (
            hold.state == HoldState.ACTIVE.value and hold.review_at is not None and hold.review_at <= now
        )
        return HoldView(
            hold,
            self.repo.cameras(session, [hold.id])[hold.id],
            self.approvals.for_subject(session, SUBJECT, hold.id),
            review_due,
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
