"""Rules for sites."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor, Role
from cctv_gov.errors import Conflict, InvalidInput, NotFound
from cctv_gov.identity.repository import IdentityRepository
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.models import Principal, Site
from cctv_gov.sites.repository import SiteRepository
from cctv_gov.sites.schemas import SiteCreate, SiteUpdate


class SiteService:
    def __init__(self, clock: Clock, audit: AuditLog, *, max_retention_days: int) -> None:
        self.clock = clock
        self.audit = audit
        self.max_retention_days = max_retention_days
        self.repo = SiteRepository()
        self.people = IdentityRepository()

    def create(self, session: Session, actor: Actor, data: SiteCreate) -> Site:
        if data.retention_days > self.max_retention_days:
            raise InvalidInput(
                f"retention_days may not exceed the install-wide maximum of {self.max_retention_days}",
                code="retention_too_long",
            )
        if self.repo.by_slug(session, data.slug) is not None:
            raise Conflict(f"a site with slug {data.slug!r} exists", code="site_exists")
        site = Site(
            id=new_id(),
            slug=data.slug,
            name=data.name,
            timezone=data.timezone,
            retention_days=data.retention_days,
            created_at=self.clock.now(),
        )
        self.repo.add(session, site)
        self.audit.record(
            session,
            actor,
            AuditAction.SITE_CREATE,
            target_type="site",
            target_id=site.id,
            site_id=site.id,
            details={"retention_days": site.retention_days},
        )
        return site

    def update(self, session: Session, actor: Actor, site_id: uuid.UUID, data: SiteUpdate) -> Site:
        site = self.get(session, site_id)
        changed = data.model_dump(exclude_unset=True, exclude_none=True)
        if changed.get("retention_days", 0) > self.max_retention_days:
            raise InvalidInput(
                f"retention_days may not exceed the install-wide maximum of {self.max_retention_days}",
                code="retention_too_long",
            )
        for field, value in changed.items():
            setattr(site, field, value)
        if changed:
            session.flush()
            self.audit.record(
                session,
                actor,
                AuditAction.SITE_UPDATE,
                target_type="site",
                target_id=site.id,
                site_id=site.id,
                details={"fields": ",".join(sorted(changed)), "retention_days": site.retention_days},
            )
        return site

    def general_managers(self, session: Session, site_id: uuid.UUID) -> Sequence[Principal]:
        return self.people.holders(session, site_id, Role.GENERAL_MANAGER.value)

    def get(self, session: Session, site_id: uuid.UUID) -> Site:
        site = self.repo.get(session, site_id)
        if site is None:
            raise NotFound("no such site", code="site_not_found")
        return site

    def by_slug(self, session: Session, slug: str) -> Site:
        site = self.repo.by_slug(session, slug)
        if site is None:
            raise NotFound(f"no site with slug {slug!r}", code="site_not_found")
        return site

    def visible(self, session: Session, actor: Actor) -> Sequence[Site]:
        return self.repo.list(session, actor.sites_with(Role))
