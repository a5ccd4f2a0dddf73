"""HTTP for evidence holds."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.approvals.schemas import ApprovalOut, Decision
from cctv_gov.authz import Actor, Role, allow
from cctv_gov.db import get_session
from cctv_gov.holds.schemas import HoldCreate, HoldDecision, HoldEnd, HoldExtend, HoldOut
from cctv_gov.holds.service import HoldService, HoldView

router = APIRouter(prefix="/v1/sites/{site_id}/holds", tags=["evidence holds"])
SessionDep = Depends(get_session, scope="function")
PROPOSERS = (Role.OPERATOR, Role.GENERAL_MANAGER)
READERS = (Role.OPERATOR, Role.GENERAL_MANAGER, Role.AUDITOR)


def _service(request: Request) -> HoldService:
    service: HoldService = request.app.state.services.holds
    return service


def _out(view: HoldView) -> HoldOut:
    h = view.hold
    return HoldOut(
        id=h.id,
        site_id=h.site_id,
        state=h.state,
        camera_ids=view.camera_ids,
        start=h.window_start,
        end=h.window_end,
        reason=h.reason,
        incident_ref=h.incident_ref,
        proposed_by=h.proposed_by,
        proposed_at=h.proposed_at,
        ends_at=h.ends_at,
        approved_at=h.approved_at,
        review_at=h.review_at,
        review_due=view.review_due,
        ended_at=h.ended_at,
        end_reason=h.end_reason,
        approvals=[ApprovalOut.model_validate(a) for a in view.approvals],
    )


@router.post(
    "", status_code=201, response_model=HoldOut, summary="Propose an evidence hold (not in force yet)"
)
def propose_hold(
    site_id: uuid.UUID,
    body: HoldCreate,
    request: Request,
    actor: Actor = allow(*PROPOSERS),
    session: Session = SessionDep,
) -> HoldOut:
    return _out(_service(request).propose(session, actor, site_id, body))


@router.get("", response_model=list[HoldOut], summary="The site's evidence holds")
def list_holds(
    site_id: uuid.UUID, request: Request, actor: Actor = allow(*READERS), session: Session = SessionDep
) -> list[HoldOut]:
    return [_out(v) for v in _service(request).list(session, actor, site_id)]


@router.get("/{hold_id}", response_model=HoldOut, summary="One evidence hold, with its written approvals")
def get_hold(
    site_id: uuid.UUID,
    hold_id: uuid.UUID,
    request: Request,
    actor: Actor = allow(*READERS),
    session: Session = SessionDep,
) -> HoldOut:
    return _out(_service(request).get(session, site_id, hold_id))


@router.post(
    "/{hold_id}/decision", response_model=HoldOut, summary="Approve or refuse in writing (General Managers)"
)
def decide_hold(
    site_id: uuid.UUID,
    hold_id: uuid.UUID,
    body: HoldDecision,
    request: Request,
    actor: Actor = allow(Role.GENERAL_MANAGER),
    session: Session = SessionDep,
) -> HoldOut:
    approve = body.decision is Decision.APPROVE
    return _out(_service(request).decide(session, actor, site_id, hold_id, approve, body.statement))


@router.post("/{hold_id}/extend", response_model=HoldOut, summary="Extend by a new written approval (GMs)")
def extend_hold(
    site_id: uuid.UUID,
    hold_id: uuid.UUID,
    body: HoldExtend,
    request: Request,
    actor: Actor = allow(Role.GENERAL_MANAGER),
    session: Session = SessionDep,
) -> HoldOut:
    return _out(_service(request).extend(session, actor, site_id, hold_id, body.ends_at, body.statement))


@router.post("/{hold_id}/end", response_model=HoldOut, summary="End a hold whose purpose is discharged")
def end_hold(
    site_id: uuid.UUID,
    hold_id: uuid.UUID,
    body: HoldEnd,
    request: Request,
    actor: Actor = allow(*PROPOSERS),
    session: Session = SessionDep,
) -> HoldOut:
    return _out(_service(request).end(session, actor, site_id, hold_id, body.statement))
