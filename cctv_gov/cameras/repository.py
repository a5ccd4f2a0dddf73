"""SQL for cameras."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_gov.models import Camera


class CameraRepository:
    def add(self, session: Session, camera: Camera) -> None:
        session.add(camera)
        session.flush()

    def get(self, session: Session, camera_id: uuid.UUID, *, for_update: bool = False) -> Camera | None:
        if for_update:
            return session.scalars(select(Camera).where(Camera.id == camera_id).with_for_update()).first()
        return session.get(Camera, camera_id)

    def by_key(
        self, session: Session, site_id: uuid.UUID, key: str, *, for_update: bool = False
    ) -> Camera | None:
        stmt = select(Camera).where(Camera.site_id == site_id, Camera.key == key)
        if for_update:
            stmt = stmt.with_for_update()
        return session.scalars(stmt).first()

    def list(self, session: Session, site_id: uuid.UUID) -> Sequence[Camera]:
        return session.scalars(select(Camera).where(Camera.site_id == site_id).order_by(Camera.key)).all()

    def keys(self, session: Session, camera_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not camera_ids:
            return {}
        return {
            row[0]: row[1]
            for row in session.execute(select(Camera.id, Camera.key).where(Camera.id.in_(camera_ids)))
        }
