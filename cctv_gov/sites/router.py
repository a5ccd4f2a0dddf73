"""HTTP for sites."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.authz import ALL_ROLES, Actor, Role, Scope, allow
from cctv_gov.db import get_session
from cctv_gov.sites.schemas import Person, SiteCreate, SiteDetail, SiteOut, SiteUpdate
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


@router.get("/{site_id}", response_model=SiteDetail, summary="One site, with its general managers")
def get_site(
    site_id: uuid.UUID, request: Request, actor: Actor = allow(*ALL_ROLES), session: Session = SessionDep
) -> SiteDetail:
    return _detail(request, session, site_id)


@router.patch(
    "/{site_id}", response_model=SiteDetail, summary="Rename, change time zone or retention (admins)"
)
def update_site(
    site_id: uuid.UUID,
    body: SiteUpdate,
    request: Request,
    actor: Actor = allow(Role.ADMIN),
    session: Session = SessionDep,
) -> SiteDetail:
    _service(request).update(session, actor, site_id, body)
    return _detail(request, session, site_id)


def _detail(request: Request, session: Session, site_id: uuid.UUID) -> SiteDetail:
    service = _service(request)
    site = SiteOut.model_validate(service.get(session, site_id))
    managers = [Person(id=p.id, name=p.name) for p in service.general_managers(session, site_id)]
    return SiteDetail(**site.model_dump(), general_managers=managers)
