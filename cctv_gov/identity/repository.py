"""SQL for principals, grants and tokens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cctv_gov.models import ApiToken, Principal, RoleGrant


class IdentityRepository:
    def add(self, session: Session, obj: Principal | RoleGrant | ApiToken) -> None:
        session.add(obj)
        session.flush()

    def token_by_hash(self, session: Session, token_hash: bytes) -> ApiToken | None:
        return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()

    def get_token(self, session: Session, token_id: uuid.UUID) -> ApiToken | None:
        return session.get(ApiToken, token_id)

    def tokens_of(self, session: Session, principal_id: uuid.UUID) -> Sequence[ApiToken]:
        stmt = select(ApiToken).where(ApiToken.principal_id == principal_id).order_by(ApiToken.created_at)
        return session.scalars(stmt).all()

    def touch_token(self, session: Session, token_id: uuid.UUID, when: datetime) -> None:
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))

    def get_principal(self, session: Session, principal_id: uuid.UUID) -> Principal | None:
        return session.get(Principal, principal_id)

    def active_grants(self, session: Session, principal_id: uuid.UUID) -> Sequence[RoleGrant]:
        stmt = (
            select(RoleGrant)
            .where(RoleGrant.principal_id == principal_id, RoleGrant.revoked_at.is_(None))
            .order_by(RoleGrant.created_at, RoleGrant.id)
        )
        return session.scalars(stmt).all()

    def get_grant(self, session: Session, grant_id: uuid.UUID) -> RoleGrant | None:
        return session.get(RoleGrant, grant_id)

    def list_principals(self, session: Session, site_ids: set[uuid.UUID] | None) -> Sequence[Principal]:
        stmt = select(Principal).order_by(Principal.created_at, Principal.id)
        if site_ids is not None:
            granted_here = select(RoleGrant.principal_id).where(
                RoleGrant.site_id.in_(site_ids), RoleGrant.revoked_at.is_(None)
            )
            stmt = stmt.where(Principal.id.in_(granted_here))
        return session.scalars(stmt).all()

    def grants_for(self, session: Session, principal_ids: Sequence[uuid.UUID]) -> Sequence[RoleGrant]:
        if not principal_ids:
            return []
        stmt = select(RoleGrant).where(
            RoleGrant.principal_id.in_(principal_ids), RoleGrant.revoked_at.is_(None)
        )
        return session.scalars(stmt).all()

    def holders(self, session: Session, site_id: uuid.UUID, role: str) -> Sequence[Principal]:
        """Enabled principals holding ``role`` at the site (not install-wide grants)."""
        granted = select(RoleGrant.principal_id).where(
            RoleGrant.site_id == site_id, RoleGrant.role == role, RoleGrant.revoked_at.is_(None)
        )
        stmt = (
            select(Principal)
            .where(Principal.id.in_(granted), Principal.disabled_at.is_(None))
            .order_by(Principal.name, Principal.id)
        )
        return session.scalars(stmt).all()
