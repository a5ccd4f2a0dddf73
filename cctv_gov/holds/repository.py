"""SQL for evidence holds."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session

from cctv_gov.models import EvidenceHold, HeldKey, HoldCamera, HoldState, Segment


def covering_holds(now: datetime) -> ColumnElement[bool]:
    """SQL: an active, unexpired hold covers the segment row (its camera, any instant of its time). Used inside
    the purge's own query, so a held segment can never be selected for erasure."""
    return exists(
        select(HoldCamera.hold_id)
        .join(EvidenceHold, EvidenceHold.id == HoldCamera.hold_id)
        .where(
            HoldCamera.camera_id == Segment.camera_id,
            EvidenceHold.state == HoldState.ACTIVE.value,
            EvidenceHold.ends_at > now,
            EvidenceHold.window_start < Segment.end_at,
            EvidenceHold.window_end > Segment.start_at,
        )
    )


class HoldRepository:
    def add(self, session: Session, hold: EvidenceHold, camera_ids: Sequence[uuid.UUID]) -> None:
        session.add(hold)
        session.flush()
        session.add_all([HoldCamera(hold_id=hold.id, camera_id=c) for c in camera_ids])
        session.flush()

    def get(self, session: Session, hold_id: uuid.UUID, *, for_update: bool = False) -> EvidenceHold | None:
        stmt = select(EvidenceHold).where(EvidenceHold.id == hold_id)
        if for_update:
            stmt = stmt.with_for_update()
        return session.scalars(stmt).first()

    def cameras(
        self, session: Session, hold_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, builtins.list[uuid.UUID]]:
        found: dict[uuid.UUID, builtins.list[uuid.UUID]] = {h: [] for h in hold_ids}
        if hold_ids:
            stmt = select(HoldCamera.hold_id, HoldCamera.camera_id).where(HoldCamera.hold_id.in_(hold_ids))
            for hold_id, camera_id in session.execute(stmt):
                found[hold_id].append(camera_id)
        return found

    def for_site(self, session: Session, site_id: uuid.UUID) -> Sequence[EvidenceHold]:
        stmt = select(EvidenceHold).where(EvidenceHold.site_id == site_id).order_by(EvidenceHold.proposed_at)
        return session.scalars(stmt).all()

    def due_to_end(self, session: Session, now: datetime) -> Sequence[EvidenceHold]:
        stmt = select(EvidenceHold).where(
            EvidenceHold.state == HoldState.ACTIVE.value, EvidenceHold.ends_at <= now
        )
        return session.scalars(stmt).all()

    def active_covering(self, session: Session, segment: Segment, now: datetime) -> builtins.list[uuid.UUID]:
        stmt = (
            select(EvidenceHold.id)
            .join(HoldCamera, HoldCamera.hold_id == EvidenceHold.id)
            .where(
                HoldCamera.camera_id == segment.camera_id,
                EvidenceHold.state == HoldState.ACTIVE.value,
                EvidenceHold.ends_at > now,
                EvidenceHold.window_start < segment.end_at,
                EvidenceHold.window_end > segment.start_at,
            )
        )
        return list(session.scalars(stmt))

    def held_key(self, session: Session, hold_id: uuid.UUID, segment_id: uuid.UUID) -> HeldKey | None:
        return session.get(HeldKey, (hold_id, segment_id))

    def add_held_key(
        self, session: Session, hold_id: uuid.UUID, segment_id: uuid.UUID, wrapped: bytes
    ) -> None:
        if session.get(HeldKey, (hold_id, segment_id)) is None:
            session.add(HeldKey(hold_id=hold_id, segment_id=segment_id, wrapped_key=wrapped))
            session.flush()

    def held_keys_of(
        self, session: Session, segment_id: uuid.UUID, now: datetime
    ) -> builtins.list[tuple[uuid.UUID, bytes]]:
        """(hold, wrapped key) of the segment under holds that are active now."""
        stmt = (
            select(HeldKey.hold_id, HeldKey.wrapped_key)
            .join(EvidenceHold, EvidenceHold.id == HeldKey.hold_id)
            .where(
                HeldKey.segment_id == segment_id,
                EvidenceHold.state == HoldState.ACTIVE.value,
                EvidenceHold.ends_at > now,
            )
        )
        return [(row[0], row[1]) for row in session.execute(stmt)]

    def finished_with_keys(self, session: Session) -> Sequence[EvidenceHold]:
        """Ended or refused holds whose key may still exist and that no longer hold any segment's key."""
        stmt = select(EvidenceHold).where(
            EvidenceHold.state.in_([HoldState.ENDED.value, HoldState.REFUSED.value]),
            EvidenceHold.key_destroyed_at.is_(None),
            ~exists(select(HeldKey.segment_id).where(HeldKey.hold_id == EvidenceHold.id)),
        )
        return session.scalars(stmt).all()

    def held_segments_of_day(
        self, session: Session, site_id: uuid.UUID, day: object, now: datetime
    ) -> Sequence[Segment]:
        stmt = select(Segment).where(
            and_(Segment.site_id == site_id, Segment.key_day == day, Segment.wrapped_key.is_not(None)),
            covering_holds(now),
        )
        return session.scalars(stmt).all()
