"""SQL for segments (uploads in progress and registered footage share the table)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from cctv_gov.models import Segment, SegmentState

LIVE = (SegmentState.PENDING.value, SegmentState.REGISTERED.value)


class SegmentRepository:
    def add(self, session: Session, segment: Segment) -> None:
        session.add(segment)
        session.flush()

    def get(self, session: Session, segment_id: uuid.UUID) -> Segment | None:
        return session.get(Segment, segment_id)

    def by_upload(self, session: Session, upload_id: uuid.UUID) -> Segment | None:
        return session.scalars(select(Segment).where(Segment.upload_id == upload_id)).first()

    def by_uploads(
        self, session: Session, site_id: uuid.UUID, upload_ids: Sequence[uuid.UUID]
    ) -> list[Segment]:
        if not upload_ids:
            return []
        stmt = select(Segment).where(Segment.site_id == site_id, Segment.upload_id.in_(upload_ids))
        return list(session.scalars(stmt))

    def overlapping(
        self, session: Session, camera_id: uuid.UUID, start: datetime, end: datetime, now: datetime
    ) -> Sequence[Segment]:
        """Registered segments and unexpired uploads of the camera that share any instant with [start, end)."""
        stmt = select(Segment).where(
            Segment.camera_id == camera_id,
            Segment.start_at < end,
            Segment.end_at > start,
            or_(
                Segment.state == SegmentState.REGISTERED.value,
                and_(Segment.state == SegmentState.PENDING.value, Segment.expires_at > now),
            ),
        )
        return session.scalars(stmt).all()

    def mark_expired(self, session: Session, now: datetime, limit: int) -> int:
        ids = session.scalars(
            select(Segment.id)
            .where(Segment.state == SegmentState.PENDING.value, Segment.expires_at <= now)
            .limit(limit)
        ).all()
        if ids:
            session.execute(
                update(Segment)
                .where(Segment.id.in_(ids), Segment.state == SegmentState.PENDING.value)
                .values(state=SegmentState.EXPIRED.value, failure_code="upload_expired", wrapped_key=None)
            )
        return len(ids)

    def objects_to_delete(self, session: Session, expired_before: datetime, limit: int) -> Sequence[Segment]:
        """Quarantined uploads, and expired ones whose presigned PUT can no longer land, not yet cleaned."""
        stmt = (
            select(Segment)
            .where(
                Segment.object_deleted_at.is_(None),
                or_(
                    Segment.state == SegmentState.QUARANTINED.value,
                    and_(Segment.state == SegmentState.EXPIRED.value, Segment.expires_at <= expired_before),
                ),
            )
            .limit(limit)
        )
        return session.scalars(stmt).all()

    def mark_objects_deleted(self, session: Session, ids: Sequence[uuid.UUID], now: datetime) -> None:
        if ids:
            session.execute(update(Segment).where(Segment.id.in_(ids)).values(object_deleted_at=now))

    def registered(
        self,
        session: Session,
        site_id: uuid.UUID,
        *,
        camera_ids: Sequence[uuid.UUID] | None,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Segment]:
        """Registered segments of the site touching [start, end), in (start, id) order, after a cursor."""
        conditions: list[Any] = [Segment.site_id == site_id, Segment.state == SegmentState.REGISTERED.value]
        if camera_ids is not None:
            conditions.append(Segment.camera_id.in_(camera_ids))
        if start is not None:
            conditions.append(Segment.end_at > start)
        if end is not None:
            conditions.append(Segment.start_at < end)
        if after is not None:
            conditions.append(
                or_(Segment.start_at > after[0], and_(Segment.start_at == after[0], Segment.id > after[1]))
            )
        stmt = select(Segment).where(*conditions).order_by(Segment.start_at, Segment.id).limit(limit)
        return session.scalars(stmt).all()

    def intervals(
        self, session: Session, camera_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        stmt = (
            select(Segment.start_at, Segment.end_at)
            .where(
                Segment.camera_id == camera_id,
                Segment.state == SegmentState.REGISTERED.value,
                Segment.start_at < end,
                Segment.end_at > start,
            )
            .order_by(Segment.start_at)
        )
        return [(row[0], row[1]) for row in session.execute(stmt)]
