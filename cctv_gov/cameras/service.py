"""Rules for cameras."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor
from cctv_gov.cameras.repository import CameraRepository
from cctv_gov.cameras.schemas import CameraCreate, CameraUpdate
from cctv_gov.errors import Conflict, Forbidden, NotFound
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.models import Camera
from cctv_gov.sites.repository import SiteRepository


class CameraService:
    def __init__(self, clock: Clock, audit: AuditLog) -> None:
        self.clock = clock
        self.audit = audit
        self.repo = CameraRepository()
        self.sites = SiteRepository()

    def create(self, session: Session, actor: Actor, site_id: uuid.UUID, data: CameraCreate) -> Camera:
        if self.sites.get(session, site_id) is None:
            raise NotFound("no such site", code="site_not_found")
        if self.repo.by_key(session, site_id, data.key) is not None:
            raise Conflict(f"the site has a camera with key {data.key!r}", code="camera_exists")
        now = self.clock.now()
        camera = Camera(
            id=new_id(),
            site_id=site_id,
            key=data.key,
            name=data.name,
            location=data.location,
            purpose=data.purpose,
            enabled=data.enabled,
            created_at=now,
            updated_at=now,
        )
        self.repo.add(session, camera)
        self.audit.record(
            session,
            actor,
            AuditAction.CAMERA_CREATE,
            target_type="camera",
            target_id=camera.id,
            site_id=site_id,
            purpose=camera.purpose,
            details={"enabled": camera.enabled},
        )
        return camera

    def update(
        self, session: Session, actor: Actor, site_id: uuid.UUID, camera_id: uuid.UUID, data: CameraUpdate
    ) -> Camera:
        camera = self.get(session, site_id, camera_id)
        changed = data.model_dump(exclude_unset=True, exclude_none=True)
        for field, value in changed.items():
            setattr(camera, field, value)
        if changed:
            camera.updated_at = self.clock.now()
            session.flush()
            self.audit.record(
                session,
                actor,
                AuditAction.CAMERA_UPDATE,
                target_type="camera",
                target_id=camera.id,
                site_id=site_id,
                purpose=camera.purpose if "purpose" in changed else None,
                details={"fields": ",".join(sorted(changed)), "enabled": camera.enabled},
            )
        return camera

    def get(self, session: Session, site_id: uuid.UUID, camera_id: uuid.UUID) -> Camera:
        camera = self.repo.get(session, camera_id)
        if camera is None or camera.site_id != site_id:
            raise NotFound("no such camera at this site", code="camera_not_found")
        return camera

    def list(self, session: Session, site_id: uuid.UUID) -> Sequence[Camera]:
        return self.repo.list(session, site_id)

    def resolve_for_ingest(self, session: Session, site_id: uuid.UUID, ref: str) -> Camera:
        """The enabled camera an agent names by key or id, locked for the rest of the transaction so two
        prepares for one camera cannot both pass the overlap check."""
        camera: Camera | None
        try:
            camera_id = uuid.UUID(ref)
        except ValueError:
            camera = self.repo.by_key(session, site_id, ref, for_update=True)
        else:
            camera = self.repo.get(session, camera_id, for_update=True)
            if camera is not None and camera.site_id != site_id:
                raise Forbidden("that camera belongs to another site", code="camera_other_site")
        if camera is None:
            raise NotFound(f"no camera {ref!r} at this site", code="camera_not_found")
        if not camera.enabled:
            raise Conflict(f"camera {camera.key!r} is disabled", code="camera_disabled")
        return camera
