"""HTTP for the audit log: the signed checkpoint and keys (public), proofs and events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.keys import AuditKeys
from cctv_gov.audit.schemas import (
    AuditEventOut,
    ConsistencyProofOut,
    EventProofOut,
    InclusionProofOut,
    PublicKeys,
)
from cctv_gov.audit.service import AUDIT_READERS, AuditLog, b64
from cctv_gov.authz import ALL_ROLES, Actor, Scope, allow, public
from cctv_gov.db import get_session
from cctv_gov.errors import Conflict

router = APIRouter(prefix="/v1/audit", tags=["audit"])
SessionDep = Depends(get_session, scope="function")
READERS = allow(*AUDIT_READERS, scope=Scope.ANY)


def _log(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.services.audit
    return log


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    dependencies=[public()],
    summary="The latest signed checkpoint (C2SP tlog-checkpoint in a signed note)",
    responses={
        200: {"content": {"text/plain": {"example": "cctv-gov.local/audit\n42\nb64root=\n\n— ...\n"}}}
    },
)
def checkpoint(request: Request, session: Session = SessionDep) -> PlainTextResponse:
    head = _log(request).latest_checkpoint(session)
    return PlainTextResponse(head.note, media_type="text/plain; charset=utf-8")


@router.get(
    "/public-keys", response_model=PublicKeys, dependencies=[public()], summary="Checkpoint signing keys"
)
def public_keys(request: Request) -> PublicKeys:
    keys: AuditKeys = request.app.state.audit_keys
    return PublicKeys(
        origin=keys.signer.name, current=keys.signer.vkey, previous=[v.vkey for v in keys.previous]
    )


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProofOut,
    summary="RFC 9162 inclusion proof of a leaf in the tree of a given size (hashes only, no personal data)",
)
def inclusion_proof(
    request: Request,
    leaf_index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
    _actor: Actor = allow(*ALL_ROLES, scope=Scope.ANY),
    session: Session = SessionDep,
) -> InclusionProofOut:
    proof = _log(request).inclusion_proof(session, leaf_index, tree_size)
    return InclusionProofOut(
        leaf_index=leaf_index,
        tree_size=proof.tree_size,
        root_hash=b64(proof.root_hash),
        hashes=[b64(h) for h in proof.hashes],
    )


@router.get("/proofs/consistency", response_model=ConsistencyProofOut, summary="RFC 9162 consistency proof")
def consistency_proof(
    request: Request,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int | None, Query(ge=1)] = None,
    _actor: Actor = allow(*ALL_ROLES, scope=Scope.ANY),
    session: Session = SessionDep,
) -> ConsistencyProofOut:
    proof = _log(request).consistency_proof(session, first, second)
    return ConsistencyProofOut(
        first=first,
        tree_size=proof.tree_size,
        root_hash=b64(proof.root_hash),
        hashes=[b64(h) for h in proof.hashes],
    )


@router.get("/events", response_model=list[AuditEventOut], summary="Audit events of the sites you may review")
def list_events(
    request: Request,
    site_id: uuid.UUID | None = None,
    action: AuditAction | None = None,
    after_id: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Actor = READERS,
    session: Session = SessionDep,
) -> list[AuditEventOut]:
    events = _log(request).list_events(
        session, actor, site_id=site_id, action=action, after_id=after_id, limit=limit
    )
    return [AuditEventOut.of(e) for e in events]


@router.get(
    "/events/{event_id}", response_model=AuditEventOut, summary="One audit event, with its leaf entry"
)
def get_event(
    event_id: uuid.UUID, request: Request, actor: Actor = READERS, session: Session = SessionDep
) -> AuditEventOut:
    return AuditEventOut.of(_log(request).get_event(session, actor, event_id))


@router.get(
    "/events/{event_id}/proof",
    response_model=EventProofOut,
    summary="An event's leaf entry with its inclusion proof against a signed tree size (latest by default)",
)
def event_proof(
    event_id: uuid.UUID,
    request: Request,
    tree_size: Annotated[int | None, Query(ge=1)] = None,
    actor: Actor = READERS,
    session: Session = SessionDep,
) -> EventProofOut:
    log = _log(request)
    event = log.get_event(session, actor, event_id)
    if event.leaf_index is None:
        raise Conflict("the event is not in the log yet; retry in a moment", code="event_not_sequenced")
    proof = log.inclusion_proof(session, event.leaf_index, tree_size)
    return EventProofOut(
        event=AuditEventOut.of(event),
        leaf_index=event.leaf_index,
        tree_size=proof.tree_size,
        root_hash=b64(proof.root_hash),
        hashes=[b64(h) for h in proof.hashes],
    )
