"""SQL of the purge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from cctv_gov.holds.repository import covering_holds
from cctv_gov.models import (
    DayKeyDestruction,
    HeldKey,
    PurgeRun,
    Segment,
    SegmentState,
    SegmentTombstone,
    Site,
)

_ERASABLE = (SegmentState.REGISTERED.value, SegmentState.PURGING.value)


class RetentionRepository:
    def sites(self, session: Session) -> Sequence[Site]:
        return session.scalars(select(Site).order_by(Site.slug)).all()

    def count_expired(self, session: Session, site_id: uuid.UUID, cutoff: datetime, now: datetime) -> int:
        """Expired segments the purge may erase (not under a hold in force)."""
        stmt = select(func.count()).where(
            Segment.site_id == site_id,
            Segment.state.in_(_ERASABLE),
            Segment.end_at <= cutoff,
            ~covering_holds(now),
        )
        return session.scalar(stmt) or 0

    def count_expired_held(
        self, session: Session, site_id: uuid.UUID, cutoff: datetime, now: datetime
    ) -> int:
        stmt = select(func.count()).where(
            Segment.site_id == site_id,
            Segment.state.in_(_ERASABLE),
            Segment.end_at <= cutoff,
            covering_holds(now),
        )
        return session.scalar(stmt) or 0

    def count_held(self, session: Session, site_id: uuid.UUID) -> int:
        """Registered footage of the site (what a pass could erase at most)."""
        stmt = select(func.count()).where(Segment.site_id == site_id, Segment.state.in_(_ERASABLE))
        return session.scalar(stmt) or 0

    def claim_expired(
        self, session: Session, site_id: uuid.UUID, cutoff: datetime, now: datetime, limit: int
    ) -> list[Segment]:
        """Expired segments of the site (registered, or left ``purging`` by a crashed pass) that no hold in force
        covers — checked in this same query — marked ``purging`` so that nothing serves them again. Rows another
        purge holds are skipped (PostgreSQL)."""
        stmt = (
            select(Segment)
            .where(
                Segment.site_id == site_id,
                Segment.state.in_(_ERASABLE),
                Segment.end_at <= cutoff,
                ~covering_holds(now),
            )
            # By camera first: a batch then lies in one or two camera-day folders, which the store lists once.
            .order_by(Segment.camera_id, Segment.end_at, Segment.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list(session.scalars(stmt))
        if rows:
            session.execute(
                update(Segment)
                .where(Segment.id.in_([r.id for r in rows]))
                .values(state=SegmentState.PURGING.value)
            )
        return rows

    def replace_by_tombstones(
        self, session: Session, segment_ids: Sequence[uuid.UUID], run_id: uuid.UUID, now: datetime
    ) -> list[Segment]:
        """Tombstones for the ``purging`` segments among ``segment_ids``, and their rows (with the wrapped data
        keys) deleted, in the caller's transaction."""
        rows = list(
            session.scalars(
                select(Segment).where(
                    Segment.id.in_(segment_ids), Segment.state == SegmentState.PURGING.value
                )
            )
        )
        if not rows:
            return []
        session.execute(
            insert(SegmentTombstone),
            [
                {
                    "segment_id": r.id,
                    "site_id": r.site_id,
                    "camera_id": r.camera_id,
                    "start_at": r.start_at,
                    "end_at": r.end_at,
                    "size": r.size,
                    "sha256": r.sha256,
                    "key_day": r.key_day,
                    "registered_at": r.registered_at,
                    "purged_at": now,
                    "purge_run_id": run_id,
                }
                for r in rows
            ],
        )
        erased = [r.id for r in rows]
        session.execute(delete(HeldKey).where(HeldKey.segment_id.in_(erased)))
        session.execute(delete(Segment).where(Segment.id.in_(erased)))
        return rows

    def day_in_use(self, session: Session, site_id: uuid.UUID, day: date, now: datetime) -> bool:
        """Whether a segment of the site-day outside any hold in force still needs the day's key."""
        stmt = select(Segment.id).where(
            Segment.site_id == site_id,
            Segment.key_day == day,
            Segment.wrapped_key.is_not(None),
            ~covering_holds(now),
        )
        return session.scalars(stmt.limit(1)).first() is not None

    def record_destruction(
        self, session: Session, site_id: uuid.UUID, day: date, run_id: uuid.UUID, now: datetime
    ) -> bool:
        if session.get(DayKeyDestruction, (site_id, day)) is not None:
            return False
        session.add(DayKeyDestruction(site_id=site_id, day=day, destroyed_at=now, purge_run_id=run_id))
        session.flush()
        return True

    def add_run(self, session: Session, run: PurgeRun) -> None:
        session.add(run)
        session.flush()

    def finish_run(self, session: Session, run_id: uuid.UUID, **values: object) -> None:
        session.execute(update(PurgeRun).where(PurgeRun.id == run_id).values(**values))

    def last_run(self, session: Session, outcome: str | None = None) -> PurgeRun | None:
        stmt = select(PurgeRun).where(PurgeRun.dry_run.is_(False))
        if outcome is not None:
            stmt = stmt.where(PurgeRun.outcome == outcome)
        return session.scalars(stmt.order_by(PurgeRun.started_at.desc()).limit(1)).first()

    # Certificates and the compliance report ------------------------------------------------------------------

    def tombstones_between(
        self, session: Session, site_id: uuid.UUID, start: datetime, end: datetime
    ) -> Sequence[SegmentTombstone]:
        stmt = (
            select(SegmentTombstone)
            .where(
                SegmentTombstone.site_id == site_id,
                SegmentTombstone.purged_at >= start,
                SegmentTombstone.purged_at < end,
            )
            .order_by(SegmentTombstone.purged_at, SegmentTombstone.segment_id)
        )
        return session.scalars(stmt).all()

    def destructions_between(
        self, session: Session, site_id: uuid.UUID, start: datetime, end: datetime
    ) -> Sequence[DayKeyDestruction]:
        stmt = (
            select(DayKeyDestruction)
            .where(
                DayKeyDestruction.site_id == site_id,
                DayKeyDestruction.destroyed_at >= start,
                DayKeyDestruction.destroyed_at < end,
            )
            .order_by(DayKeyDestruction.day)
        )
        return session.scalars(stmt).all()

    def purged_at_since(self, session: Session, site_id: uuid.UUID, since: datetime) -> list[datetime]:
        stmt = select(SegmentTombstone.purged_at).where(
            SegmentTombstone.site_id == site_id, SegmentTombstone.purged_at >= since
        )
        return list(session.scalars(stmt))

    def oldest_by_camera(
        self, session: Session, site_id: uuid.UUID, now: datetime
    ) -> dict[uuid.UUID, datetime]:
        """Per camera, the end of its oldest footage that no hold in force keeps."""
        stmt = (
            select(Segment.camera_id, func.min(Segment.end_at))
            .where(Segment.site_id == site_id, Segment.state.in_(_ERASABLE), ~covering_holds(now))
            .group_by(Segment.camera_id)
        )
        return {row[0]: row[1] for row in session.execute(stmt)}

    # Reconcile ---------------------------------------------------------------------------------------------

    def stored_keys(self, session: Session, site_id: uuid.UUID) -> dict[str, str]:
        """Object key -> state of every segment row of the site whose object should still exist."""
        stmt = select(Segment.object_key, Segment.state).where(
            Segment.site_id == site_id, Segment.object_deleted_at.is_(None)
        )
        return {row[0]: row[1] for row in session.execute(stmt)}

    def tombstoned(self, session: Session, segment_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        if not segment_ids:
            return set()
        stmt = select(SegmentTombstone.segment_id).where(SegmentTombstone.segment_id.in_(segment_ids))
        return set(session.scalars(stmt))

    # Legal holds on the store ----------------------------------------------------------------------------------

    def legal_hold_changes(
        self, session: Session, now: datetime, limit: int
    ) -> tuple[list[Segment], list[Segment]]:
        """(segments a hold in force covers whose object is not under legal hold yet, segments under legal hold
        that no hold in force covers any more)."""
        live = Segment.state.in_(_ERASABLE)
        to_hold = select(Segment).where(live, Segment.legal_hold.is_(False), covering_holds(now)).limit(limit)
        to_release = select(Segment).where(Segment.legal_hold.is_(True), ~covering_holds(now)).limit(limit)
        return list(session.scalars(to_hold)), list(session.scalars(to_release))

    def mark_legal_hold(self, session: Session, segment_ids: Sequence[uuid.UUID], on: bool) -> None:
        if segment_ids:
            session.execute(update(Segment).where(Segment.id.in_(segment_ids)).values(legal_hold=on))
