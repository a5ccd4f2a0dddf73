"""HTTP for retention: the compliance report and the daily erasure certificates."""

from __future__ import annotations

import uuid
from datetime import date

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.authz import Actor, Role, allow
from cctv_gov.db import get_session
from cctv_gov.retention.certificates import CertificateService
from cctv_gov.retention.compliance import ComplianceService
from cctv_gov.retention.schemas import CameraAgeOut, CertificateOut, ComplianceOut, HoldInForce, PurgeRunOut

router = APIRouter(prefix="/v1/sites/{site_id}/retention", tags=["retention"])
SessionDep = Depends(get_session, scope="function")
REVIEWERS = (Role.GENERAL_MANAGER, Role.AUDITOR, Role.ADMIN)


@router.get("/report", response_model=ComplianceOut, summary="The site's compliance report (an audited read)")
def compliance_report(
    site_id: uuid.UUID, request: Request, actor: Actor = allow(*REVIEWERS), session: Session = SessionDep
) -> ComplianceOut:
    service: ComplianceService = request.app.state.services.compliance
    r = service.report(session, actor, site_id)
    return ComplianceOut(
        site_id=r.site_id,
        generated_at=r.generated_at,
        retention_days=r.retention_days,
        limit_seconds=r.limit_seconds,
        cameras=[CameraAgeOut.model_validate(c, from_attributes=True) for c in r.cameras],
        purged_per_day=r.purged_per_day,
        holds_in_force=[
            HoldInForce(id=h.id, incident_ref=h.incident_ref, ends_at=h.ends_at, review_at=h.review_at)
            for h in r.holds_in_force
        ],
        holds_due_for_review=r.holds_due_for_review,
        last_successful_pass=None
        if r.last_successful_pass is None
        else PurgeRunOut.model_validate(r.last_successful_pass),
        last_pass=None if r.last_pass is None else PurgeRunOut.model_validate(r.last_pass),
        overdue=r.overdue,
    )


@router.get(
    "/certificates/{day}",
    response_model=CertificateOut,
    summary="The signed erasure certificate of one UTC day (an audited read)",
)
def erasure_certificate(
    site_id: uuid.UUID,
    day: date,
    request: Request,
    actor: Actor = allow(*REVIEWERS),
    session: Session = SessionDep,
) -> CertificateOut:
    certificates: CertificateService = request.app.state.services.certificates
    cert = certificates.issue(session, actor, site_id, day)
    return CertificateOut(certificate=cert.body, note=cert.note)
