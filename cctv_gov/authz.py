"""Who may call what. Every route declares a ``Rule`` through ``allow(...)`` or ``public()``; a test walks the
routes and fails if one has none.

Scopes:
* ``SITE``: the route names a site in its path (``{site_id}``); the caller needs one of the roles *at that site*
  (or install-wide).
* ``GLOBAL``: install-wide grants only (creating a site, for example).
* ``ANY``: the caller needs one of the roles at some site; the service narrows results or checks the object's
  site itself (``Actor.require``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cctv_gov.db import get_database, get_session
from cctv_gov.errors import Forbidden, InvalidInput


class Role(StrEnum):
    GENERAL_MANAGER = "general_manager"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    REQUESTER = "requester"
    AGENT = "agent"
    ADMIN = "admin"


ALL_ROLES = frozenset(Role)
PEOPLE_ROLES = ALL_ROLES - {Role.AGENT}


class Scope(StrEnum):
    SITE = "site"
    GLOBAL = "global"
    ANY = "any"
    PUBLIC = "public"


@dataclass(frozen=True)
class Grant:
    id: uuid.UUID
    role: Role
    site_id: uuid.UUID | None  # None: install-wide


@dataclass(frozen=True)
class Actor:
    """The authenticated caller, with the role under which the current route admitted them."""

    principal_id: uuid.UUID | None  # None for the local CLI (the "system" actor)
    kind: str  # person | agent | system
    name: str
    grants: tuple[Grant, ...]
    token_id: uuid.UUID | None = None
    acting_role: Role | None = None

    def roles_at(self, site_id: uuid.UUID | None) -> set[Role]:
        return {
            g.role for g in self.grants if g.site_id is None or (site_id is not None and g.site_id == site_id)
        }

    def global_roles(self) -> set[Role]:
        return {g.role for g in self.grants if g.site_id is None}

    def sites_with(self, roles: Iterable[Role]) -> set[uuid.UUID] | None:
        """Sites where the actor holds one of ``roles``; ``None`` means every site (an install-wide grant)."""
        wanted = set(roles)
        sites: set[uuid.UUID] = set()
        for g in self.grants:
            if g.role in wanted:
                if g.site_id is None:
                    return None
                sites.add(g.site_id)
        return sites

    def has_role(self, roles: Iterable[Role], site_id: uuid.UUID | None) -> Role | None:
        held = self.roles_at(site_id)
        for role in roles:
            if role in held:
                return role
        return None

    def require(self, roles: Iterable[Role], site_id: uuid.UUID | None) -> Role:
        """For ``ANY``-scoped routes: check the object's site once it is loaded."""
        wanted = list(roles)
        role = self.has_role(wanted, site_id)
        if role is None:
            raise self.denied("your roles do not allow this at that site", wanted, site_id)
        return role

    def denied(self, message: str, needed: Iterable[Role], site_id: uuid.UUID | None) -> Forbidden:
        """A 403 that is recorded in the audit log once the request has rolled back."""
        error = Forbidden(message, code="forbidden_site")
        error.denial = Denial(self, site_id, tuple(sorted(r.value for r in needed)))
        return error


SYSTEM_ACTOR = Actor(
    principal_id=None,
    kind="system",
    name="cli",
    grants=(Grant(uuid.UUID(int=0), Role.ADMIN, None),),
    acting_role=Role.ADMIN,
)


@dataclass(frozen=True)
class Rule:
    scope: Scope
    roles: frozenset[Role] = field(default_factory=frozenset)

    def admits(self, actor: Actor, site_id: uuid.UUID | None) -> Role | None:
        ordered = [r for r in Role if r in self.roles]
        if self.scope is Scope.GLOBAL:
            held = actor.global_roles()
            return next((r for r in ordered if r in held), None)
        if self.scope is Scope.SITE:
            return actor.has_role(ordered, site_id)
        if self.scope is Scope.ANY:
            held_anywhere = {g.role for g in actor.grants}
            return next((r for r in ordered if r in held_anywhere), None)
        return None


RULE_ATTR = "__cctv_rule__"

# Filled at start-up by the identity domain: (session, request) -> Actor, raising Unauthenticated.
Authenticator = Callable[[Session, Request], Actor]


@dataclass(frozen=True)
class Denial:
    """An authenticated caller refused by a route's rule; recorded after the request rolls back."""

    actor: Actor
    site_id: uuid.UUID | None
    needed: tuple[str, ...]


def _site_from_path(request: Request) -> uuid.UUID | None:
    raw = request.path_params.get("site_id")
    if raw is None:
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise InvalidInput("site_id is not a UUID", code="invalid_site_id") from None


def _rule(roles: tuple[Role, ...], scope: Scope) -> Rule:
    if not roles:
        raise ValueError("allow() needs at least one role; use public() for open routes")
    return Rule(scope=scope, roles=frozenset(roles))


def _admit(request: Request, session: Session, rule: Rule) -> Actor:
    authenticate: Authenticator = request.app.state.authenticate
    actor = authenticate(session, request)
    site_id = _site_from_path(request) if rule.scope is Scope.SITE else None
    role = rule.admits(actor, site_id)
    if role is None:
        error = Forbidden(
            f"this needs one of the roles {sorted(r.value for r in rule.roles)} ({rule.scope.value} scope)",
            code="forbidden_role",
        )
        error.denial = Denial(actor, site_id, tuple(sorted(r.value for r in rule.roles)))
        raise error
    return Actor(
        principal_id=actor.principal_id,
        kind=actor.kind,
        name=actor.name,
        grants=actor.grants,
        token_id=actor.token_id,
        acting_role=role,
    )


def allow(*roles: Role, scope: Scope = Scope.SITE) -> Any:
    """Dependency that authenticates the caller and admits them only with one of ``roles`` in ``scope``."""
    rule = _rule(roles, scope)

    def dependency(request: Request, session: Session = Depends(get_session, scope="function")) -> Actor:
        return _admit(request, session, rule)

    setattr(dependency, RULE_ATTR, rule)
    return Depends(dependency)


def allow_streaming(*roles: Role, scope: Scope = Scope.SITE) -> Any:
    """Like ``allow``, for routes that stream a large body or response: the caller is admitted in a short
    transaction of its own, so no database transaction stays open while the bytes flow."""
    rule = _rule(roles, scope)

    def dependency(request: Request) -> Actor:
        try:
            with get_database(request).transaction() as session:
                return _admit(request, session, rule)
        except Exception as exc:
            hook = getattr(request.app.state, "after_rollback", None)
            if hook is not None:
                hook(request, exc)
            raise

    setattr(dependency, RULE_ATTR, rule)
    return Depends(dependency)


def public() -> Any:
    """Explicitly open to everyone (health, published keys and checkpoints)."""

    def dependency() -> None:
        return None

    setattr(dependency, RULE_ATTR, Rule(scope=Scope.PUBLIC))
    return Depends(dependency)


def hash_token(token: str) -> bytes:
    """Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force."""
    return hashlib.sha256(token.encode()).digest()
