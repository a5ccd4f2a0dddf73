"""SQL for sites."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_gov.models import Site


class SiteRepository:
    def add(self, session: Session, site: Site) -> None:
        session.add(site)
        session.flush()

    def get(self, session: Session, site_id: uuid.UUID) -> Site | None:
        return session.get(Site, site_id)

    def by_slug(self, session: Session, slug: str) -> Site | None:
        return session.scalars(select(Site).where(Site.slug == slug)).first()

    def list(self, session: Session, site_ids: set[uuid.UUID] | None) -> Sequence[Site]:
        stmt = select(Site).order_by(Site.slug)
        if site_ids is not None:
            stmt = stmt.where(Site.id.in_(site_ids))
        return session.scalars(stmt).all()

    def slugs(self, session: Session, site_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not site_ids:
            return {}
        return {s.id: s.slug for s in session.scalars(select(Site).where(Site.id.in_(site_ids)))}
