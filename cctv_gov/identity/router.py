"""HTTP for principals, grants and tokens."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.authz import ALL_ROLES, Actor, Role, Scope, allow
from cctv_gov.db import get_session
from cctv_gov.identity.schemas import (
    AgentCreate,
    AgentCreated,
    GrantIn,
    GrantOut,
    IssuedToken,
    MeGrant,
    MeOut,
    MePrincipal,
    PersonCreate,
    PrincipalOut,
    TokenCreate,
    TokenOut,
)
from cctv_gov.identity.service import IdentityService, PrincipalView
from cctv_gov.sites.repository import SiteRepository

router = APIRouter(prefix="/v1", tags=["identity"])
SessionDep = Depends(get_session, scope="function")
ADMIN_ANY = allow(Role.ADMIN, scope=Scope.ANY)


def _service(request: Request) -> IdentityService:
    service: IdentityService = request.app.state.services.identity
    return service


def _out(view: PrincipalView) -> PrincipalOut:
    return PrincipalOut(
        id=view.principal.id,
        kind=view.principal.kind,
        name=view.principal.name,
        email=view.principal.email,
        created_at=view.principal.created_at,
        disabled_at=view.principal.disabled_at,
        grants=[GrantOut.model_validate(g) for g in view.grants],
    )


@router.get("/me", response_model=MeOut, summary="Who the token belongs to and its grants")
def me(actor: Actor = allow(*ALL_ROLES, scope=Scope.ANY), session: Session = SessionDep) -> MeOut:
    slugs = SiteRepository().slugs(session, {g.site_id for g in actor.grants if g.site_id is not None})
    return MeOut(
        principal=MePrincipal(id=actor.principal_id, kind=actor.kind, name=actor.name),
        grants=[
            MeGrant(
                role=g.role, site_id=g.site_id, site_slug=None if g.site_id is None else slugs.get(g.site_id)
            )
            for g in actor.grants
        ],
    )


@router.post("/principals", status_code=201, response_model=PrincipalOut, summary="Create a person")
def create_person(
    body: PersonCreate, request: Request, actor: Actor = ADMIN_ANY, session: Session = SessionDep
) -> PrincipalOut:
    view = _service(request).create_person(
        session, actor, name=body.name, email=body.email, grants=[(g.role, g.site_id) for g in body.grants]
    )
    return _out(view)


@router.get("/principals", response_model=list[PrincipalOut], summary="People and agents you administer")
def list_principals(
    request: Request, actor: Actor = ADMIN_ANY, session: Session = SessionDep
) -> list[PrincipalOut]:
    return [_out(v) for v in _service(request).list_principals(session, actor)]


@router.get("/principals/{principal_id}", response_model=PrincipalOut, summary="One principal")
def get_principal(
    principal_id: uuid.UUID, request: Request, actor: Actor = ADMIN_ANY, session: Session = SessionDep
) -> PrincipalOut:
    return _out(_service(request).get_principal(session, actor, principal_id))


@router.post("/principals/{principal_id}/disable", response_model=PrincipalOut, summary="Disable a principal")
def disable_principal(
    principal_id: uuid.UUID, request: Request, actor: Actor = ADMIN_ANY, session: Session = SessionDep
) -> PrincipalOut:
    return _out(_service(request).disable(session, actor, principal_id))


@router.post(
    "/principals/{principal_id}/grants", status_code=201, response_model=GrantOut, summary="Grant a role"
)
def add_grant(
    principal_id: uuid.UUID,
    body: GrantIn,
    request: Request,
    actor: Actor = ADMIN_ANY,
    session: Session = SessionDep,
) -> GrantOut:
    grant = _service(request).add_grant(session, actor, principal_id, body.role, body.site_id)
    return GrantOut.model_validate(grant)


@router.delete("/principals/{principal_id}/grants/{grant_id}", status_code=204, summary="Revoke a role")
def revoke_grant(
    principal_id: uuid.UUID,
    grant_id: uuid.UUID,
    request: Request,
    actor: Actor = ADMIN_ANY,
    session: Session = SessionDep,
) -> None:
    _service(request).revoke_grant(session, actor, principal_id, grant_id)


@router.post(
    "/principals/{principal_id}/tokens",
    status_code=201,
    response_model=IssuedToken,
    summary="Issue an API token (the secret is shown once)",
)
def issue_token(
    principal_id: uuid.UUID,
    body: TokenCreate,
    request: Request,
    actor: Actor = ADMIN_ANY,
    session: Session = SessionDep,
) -> IssuedToken:
    token, secret = _service(request).issue_token(
        session, actor, principal_id, label=body.label, expires_in_days=body.expires_in_days
    )
    return IssuedToken(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.get(
    "/principals/{principal_id}/tokens", response_model=list[TokenOut], summary="A principal's tokens"
)
def list_tokens(
    principal_id: uuid.UUID, request: Request, actor: Actor = ADMIN_ANY, session: Session = SessionDep
) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in _service(request).list_tokens(session, actor, principal_id)]


@router.delete(
    "/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token (your own, or one you administer)"
)
def revoke_token(
    token_id: uuid.UUID,
    request: Request,
    actor: Actor = allow(*ALL_ROLES, scope=Scope.ANY),
    session: Session = SessionDep,
) -> TokenOut:
    return TokenOut.model_validate(_service(request).revoke_token(session, actor, token_id))


@router.post("/agents", status_code=201, response_model=AgentCreated, summary="Register a site's NVR agent")
def create_agent(
    body: AgentCreate, request: Request, actor: Actor = ADMIN_ANY, session: Session = SessionDep
) -> AgentCreated:
    service = _service(request)
    view = service.create_agent(session, actor, site_id=body.site_id, name=body.name)
    token, secret = service.issue_token(
        session, actor, view.principal.id, label=body.token_label, expires_in_days=None
    )
    return AgentCreated(
        principal=_out(view), token=IssuedToken(**TokenOut.model_validate(token).model_dump(), token=secret)
    )
