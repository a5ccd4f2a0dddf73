"""HTTP for sites."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.authz import ALL_ROLES, Actor, Role, Scope, allow
from cctv_gov.db import get_session
from cctv_gov.sites.schemas import SiteCreate, SiteOut
from cctv_gov.sites.service import SiteService

router = APIRouter(prefix="/v1/sites", tags=["sites"])
SessionDep = Depends(get_session, scope="function")


def _service(request: Request) -> SiteService:
    service: SiteService = request.app.state.services.sites
    return service


@router.post("", status_code=201, response_model=SiteOut, summary="Create a site (install-wide admins)")
def create_site(
    body: SiteCreate,
    request: Request,
    actor: Actor = allow(Role.ADMIN, scope=Scope.GLOBAL),
    session: Session = SessionDep,
) -> SiteOut:
    return SiteOut.model_validate(_service(request).create(session, actor, body))


@router.get("", response_model=list[SiteOut], summary="Sites where you hold a role")
def list_sites(
    request: Request, actor: Actor = allow(*ALL_ROLES, scope=Scope.ANY), session: Session = SessionDep
) -> list[SiteOut]:
    return [SiteOut.model_validate(s) for s in _service(request).visible(session, actor)]


@router.get("/{site_id}", response_model=SiteOut, summary="One site")
def get_site(
    site_id: uuid.UUID, request: Request, actor: Actor = allow(*ALL_ROLES), session: Session = SessionDep
) -> SiteOut:
    return SiteOut.model_validate(_service(request).get(session, site_id))
