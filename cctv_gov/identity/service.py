"""Rules for principals, roles and tokens.

Separation of duties: an administrator manages people and sites but never holds a role that sees footage or
approves disclosure (general_manager, operator) on the same principal; an agent principal holds exactly one
agent grant at one site and nothing else; outside requesters are always tied to a site.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor, Grant, Role, hash_token
from cctv_gov.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from cctv_gov.identity.repository import IdentityRepository
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.models import ApiToken, Principal, RoleGrant
from cctv_gov.sites.repository import SiteRepository

TOKEN_PREFIX = "cgv_"  # noqa: S105 - a public marker that makes leaked tokens easy to scan for
EXCLUSIVE_WITH_ADMIN = {Role.GENERAL_MANAGER, Role.OPERATOR}
INSTALL_WIDE_ROLES = {Role.ADMIN, Role.AUDITOR}


@dataclass(frozen=True)
class PrincipalView:
    principal: Principal
    grants: Sequence[RoleGrant]


class IdentityService:
    def __init__(self, clock: Clock, audit: AuditLog, *, touch_seconds: int) -> None:
        self.clock = clock
        self.audit = audit
        self.touch = timedelta(seconds=touch_seconds)
        self.repo = IdentityRepository()
        self.sites = SiteRepository()

    # Authentication --------------------------------------------------------------------------------------

    def authenticate(self, session: Session, token: str) -> Actor:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            raise Unauthenticated("the token is malformed", code="invalid_token")
        digest = hash_token(token)
        row = self.repo.token_by_hash(session, digest)
        # The lookup is by hash, so timing reveals nothing about the token; compare again to be explicit.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            raise Unauthenticated("the token is not valid", code="invalid_token")
        now = self.clock.now()
        if row.revoked_at is not None:
            raise Unauthenticated("the token has been revoked", code="token_revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("the token has expired", code="token_expired")
        principal = self.repo.get_principal(session, row.principal_id)
        if principal is None or principal.disabled_at is not None:
            raise Unauthenticated("the principal is disabled", code="principal_disabled")
        if row.last_used_at is None or now - row.last_used_at >= self.touch:
            self.repo.touch_token(session, row.id, now)
        grants = tuple(
            Grant(g.id, Role(g.role), g.site_id) for g in self.repo.active_grants(session, principal.id)
        )
        return Actor(
            principal_id=principal.id,
            kind=principal.kind,
            name=principal.name,
            grants=grants,
            token_id=row.id,
        )

    # Principals ------------------------------------------------------------------------------------------

    def create_person(
        self,
        session: Session,
        actor: Actor,
        *,
        name: str,
        email: str | None,
        grants: Sequence[tuple[Role, uuid.UUID | None]],
    ) -> PrincipalView:
        self._check_grant_set("person", grants)
        for role, site_id in grants:
            self._check_can_grant(session, actor, role, site_id)
        principal = self._new_principal(
            session, actor, "person", name, email, _one_site([site for _, site in grants])
        )
        rows = [self._grant(session, actor, principal, role, site_id) for role, site_id in grants]
        return PrincipalView(principal, rows)

    def create_agent(self, session: Session, actor: Actor, *, site_id: uuid.UUID, name: str) -> PrincipalView:
        self._check_can_grant(session, actor, Role.AGENT, site_id)
        principal = self._new_principal(session, actor, "agent", name, None, site_id)
        grant = self._grant(session, actor, principal, Role.AGENT, site_id)
        return PrincipalView(principal, [grant])

    def add_grant(
        self, session: Session, actor: Actor, principal_id: uuid.UUID, role: Role, site_id: uuid.UUID | None
    ) -> RoleGrant:
        view = self.get_principal(session, actor, principal_id, audit=False)
        existing = [(Role(g.role), g.site_id) for g in view.grants]
        if (role, site_id) in existing:
            raise Conflict("the principal already holds that grant", code="grant_exists")
        self._check_grant_set(view.principal.kind, [*existing, (role, site_id)])
        self._check_can_grant(session, actor, role, site_id)
        return self._grant(session, actor, view.principal, role, site_id)

    def revoke_grant(
        self, session: Session, actor: Actor, principal_id: uuid.UUID, grant_id: uuid.UUID
    ) -> None:
        view = self.get_principal(session, actor, principal_id, audit=False)
        grant = next((g for g in view.grants if g.id == grant_id), None)
        if grant is None:
            raise NotFound("no such active grant on that principal", code="grant_not_found")
        self._check_can_grant(session, actor, Role(grant.role), grant.site_id)
        grant.revoked_at = self.clock.now()
        self.audit.record(
            session,
            actor,
            AuditAction.GRANT_REVOKE,
            target_type="grant",
            target_id=grant.id,
            site_id=grant.site_id,
            details={"principal_id": str(principal_id), "role": grant.role},
        )

    def disable(self, session: Session, actor: Actor, principal_id: uuid.UUID) -> PrincipalView:
        view = self.get_principal(session, actor, principal_id, audit=False)
        if view.principal.id == actor.principal_id:
            raise Conflict("you cannot disable yourself", code="cannot_disable_self")
        if view.principal.disabled_at is None:
            view.principal.disabled_at = self.clock.now()
            self.audit.record(
                session, actor, AuditAction.PRINCIPAL_DISABLE, target_type="principal", target_id=principal_id
            )
        return view

    def get_principal(
        self, session: Session, actor: Actor, principal_id: uuid.UUID, *, audit: bool = True
    ) -> PrincipalView:
        principal = self.repo.get_principal(session, principal_id)
        if principal is None:
            raise NotFound("no such principal", code="principal_not_found")
        grants = self.repo.active_grants(session, principal_id)
        self._check_can_manage(actor, grants)
        if audit:
            self.audit.record(
                session, actor, AuditAction.PRINCIPAL_READ, target_type="principal", target_id=principal_id
            )
        return PrincipalView(principal, grants)

    def list_principals(self, session: Session, actor: Actor) -> list[PrincipalView]:
        sites = actor.sites_with([Role.ADMIN])
        principals = self.repo.list_principals(session, sites)
        by_principal: dict[uuid.UUID, list[RoleGrant]] = {p.id: [] for p in principals}
        for grant in self.repo.grants_for(session, list(by_principal)):
            by_principal[grant.principal_id].append(grant)
        self.audit.record(
            session,
            actor,
            AuditAction.PRINCIPAL_READ,
            target_type="principal",
            details={"listed": len(principals)},
        )
        return [PrincipalView(p, by_principal[p.id]) for p in principals]

    # Tokens ----------------------------------------------------------------------------------------------

    def issue_token(
        self,
        session: Session,
        actor: Actor,
        principal_id: uuid.UUID,
        *,
        label: str,
        expires_in_days: int | None,
    ) -> tuple[ApiToken, str]:
        view = self.get_principal(session, actor, principal_id, audit=False)
        if view.principal.disabled_at is not None:
            raise Conflict("the principal is disabled", code="principal_disabled")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        token = ApiToken(
            id=new_id(),
            principal_id=principal_id,
            token_hash=hash_token(secret),
            label=label,
            created_at=now,
            expires_at=None if expires_in_days is None else now + timedelta(days=expires_in_days),
        )
        self.repo.add(session, token)
        self.audit.record(
            session,
            actor,
            AuditAction.TOKEN_ISSUE,
            target_type="token",
            target_id=token.id,
            site_id=_one_site([g.site_id for g in view.grants]),
            details={"principal_id": str(principal_id)},
        )
        return token, secret

    def list_tokens(self, session: Session, actor: Actor, principal_id: uuid.UUID) -> Sequence[ApiToken]:
        self.get_principal(session, actor, principal_id, audit=False)
        return self.repo.tokens_of(session, principal_id)

    def revoke_token(self, session: Session, actor: Actor, token_id: uuid.UUID) -> ApiToken:
        token = self.repo.get_token(session, token_id)
        if token is None:
            raise NotFound("no such token", code="token_not_found")
        if token.principal_id != actor.principal_id:
            self.get_principal(session, actor, token.principal_id, audit=False)
        if token.revoked_at is None:
            token.revoked_at = self.clock.now()
            grants = self.repo.active_grants(session, token.principal_id)
            self.audit.record(
                session,
                actor,
                AuditAction.TOKEN_REVOKE,
                target_type="token",
                target_id=token.id,
                site_id=_one_site([g.site_id for g in grants]),
                details={"principal_id": str(token.principal_id)},
            )
        return token

    def _new_principal(
        self,
        session: Session,
        actor: Actor,
        kind: str,
        name: str,
        email: str | None,
        site_id: uuid.UUID | None,
    ) -> Principal:
        principal = Principal(id=new_id(), kind=kind, name=name, email=email, created_at=self.clock.now())
        self.repo.add(session, principal)
        self.audit.record(
            session,
            actor,
            AuditAction.PRINCIPAL_CREATE,
            target_type="principal",
            target_id=principal.id,
            site_id=site_id,
            details={"kind": kind},
        )
        return principal

    # Rules -----------------------------------------------------------------------------------------------

    def _grant(
        self, session: Session, actor: Actor, principal: Principal, role: Role, site_id: uuid.UUID | None
    ) -> RoleGrant:
        grant = RoleGrant(
            id=new_id(),
            principal_id=principal.id,
            role=role.value,
            site_id=site_id,
            created_at=self.clock.now(),
        )
        self.repo.add(session, grant)
        self.audit.record(
            session,
            actor,
            AuditAction.GRANT_CREATE,
            target_type="grant",
            target_id=grant.id,
            site_id=site_id,
            details={"principal_id": str(principal.id), "role": role.value},
        )
        return grant

    @staticmethod
    def _check_grant_set(kind: str, grants: Sequence[tuple[Role, uuid.UUID | None]]) -> None:
        roles = {role for role, _ in grants}
        if len(set(grants)) != len(grants):
            raise InvalidInput("the same grant is listed twice", code="duplicate_grant")
        if kind == "agent" or Role.AGENT in roles:
            raise InvalidInput(
                "agents are created with POST /v1/agents and hold one agent grant", code="agent_grant"
            )
        for role, site_id in grants:
            if site_id is None and role not in INSTALL_WIDE_ROLES:
                raise InvalidInput(f"the {role.value} role must be granted at a site", code="site_required")
        if Role.ADMIN in roles and roles & EXCLUSIVE_WITH_ADMIN:
            raise InvalidInput(
                "an administrator cannot also be a general manager or operator (separation of duties)",
                code="separation_of_duties",
            )

    def _check_can_grant(self, session: Session, actor: Actor, role: Role, site_id: uuid.UUID | None) -> None:
        if site_id is None:
            if Role.ADMIN not in actor.global_roles():
                raise actor.denied("only an install-wide admin grants install-wide roles", [Role.ADMIN], None)
            return
        if self.sites.get(session, site_id) is None:
            raise NotFound("no such site", code="site_not_found")
        actor.require([Role.ADMIN], site_id)

    @staticmethod
    def _check_can_manage(actor: Actor, grants: Sequence[RoleGrant]) -> None:
        """Install-wide admins manage everyone; a site admin manages principals all of whose grants are at
        sites they administer."""
        if Role.ADMIN in actor.global_roles():
            return
        sites = actor.sites_with([Role.ADMIN]) or set()
        if not grants or any(g.site_id is None or g.site_id not in sites for g in grants):
            raise actor.denied(
                "that principal has grants outside the sites you administer",
                [Role.ADMIN],
                _one_site([g.site_id for g in grants]),
            )


def _one_site(site_ids: Sequence[uuid.UUID | None]) -> uuid.UUID | None:
    """The site an identity event belongs to, for per-site review: the principal's only site, if it has one."""
    distinct = set(site_ids)
    return next(iter(distinct)) if len(distinct) == 1 else None
