"""The purge: erase footage past its site's retention period, on time, never early, and say what it erased.

A pass, per site, in batches:

1. **claim** expired segments (age from the recorded *end* time) and mark them ``purging`` (committed: from
   here on nothing serves them);
2. **delete their objects** from the store (an absent object is not a failure);
3. **replace their rows by tombstones** (id, camera, times, evidence hash, purge time; no footage, no key) and
   append one audit event per segment, in one transaction.

Then every site-day key whose day can take no more footage and whose segments are all gone is **destroyed** in
the key store, recorded and audited: every copy of that day's footage, backups included, is unreadable from then.

A crash at any point leaves rows ``purging`` (claimed, objects perhaps gone) that the next pass finishes, or keys
whose day is empty that the next pass destroys: every step is idempotent. A safety threshold stops a pass that
would erase more than expected (a clock that jumped forward makes everything look expired) unless forced. The
purge acts on rows, never on a listing of the store: an empty database erases nothing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from cctv_gov.audit.actions import AuditAction, Outcome
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import SYSTEM_ACTOR, Actor
from cctv_gov.config import Settings
from cctv_gov.db import Database
from cctv_gov.holds.service import HoldService
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.kit.keystore import KeyStore, unwrap_data_key, wrap_data_key
from cctv_gov.kit.storage import ObjectNotFound, ObjectStore, StorageError
from cctv_gov.models import PurgeRun
from cctv_gov.retention.repository import RetentionRepository

log = logging.getLogger("cctv_gov.purge")

MIN_SEGMENTS_FOR_FRACTION = 100
"""The share threshold applies from this many segments up: a young site's first purge may well erase half."""


@dataclass
class SitePlan:
    site_id: uuid.UUID
    slug: str
    retention_days: int
    cutoff: datetime
    expired: int
    stored: int
    held: int = 0
    """Expired, but kept by an evidence hold in force."""


@dataclass
class PurgeReport:
    run_id: uuid.UUID | None
    dry_run: bool
    forced: bool
    outcome: str = "ok"
    reason: str = ""
    sites: list[SitePlan] = field(default_factory=list)
    segments_erased: int = 0
    keys_destroyed: int = 0
    delete_failures: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "expired": sum(p.expired for p in self.sites),
            "erased": self.segments_erased,
            "keys_destroyed": self.keys_destroyed,
            "delete_failures": self.delete_failures,
            "stopped": int(self.outcome == "stopped"),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": None if self.run_id is None else str(self.run_id),
            "dry_run": self.dry_run,
            "forced": self.forced,
            "outcome": self.outcome,
            "reason": self.reason,
            **self.counts(),
            "sites": [
                {"site": p.slug, "cutoff": p.cutoff.isoformat(), "expired": p.expired, "stored": p.stored}
                for p in self.sites
            ],
        }


class PurgeService:
    def __init__(
        self,
        clock: Clock,
        audit: AuditLog,
        settings: Settings,
        storage: ObjectStore,
        keys: KeyStore,
        holds: HoldService,
    ) -> None:
        self.holds = holds
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.storage = storage
        self.keys = keys
        self.repo = RetentionRepository()

    def plan(self, db: Database, now: datetime) -> list[SitePlan]:
        with db.transaction() as session:
            plans = []
            for site in self.repo.sites(session):
                cutoff = now - timedelta(days=site.retention_days)
                plans.append(
                    SitePlan(
                        site.id,
                        site.slug,
                        site.retention_days,
                        cutoff,
                        self.repo.count_expired(session, site.id, cutoff, now),
                        self.repo.count_held(session, site.id),
                        self.repo.count_expired_held(session, site.id, cutoff, now),
                    )
                )
            return plans

    def run(
        self, db: Database, *, dry_run: bool = False, force: bool = False, actor: Actor = SYSTEM_ACTOR
    ) -> PurgeReport:
        now = self.clock.now()
        if not dry_run:
            with db.transaction() as session:
                self.holds.end_due(session)  # a hold past its end date protects nothing from here on
            self.sync_legal_holds(db)  # released first, or the store would refuse the purge's deletes
        report = PurgeReport(None, dry_run, force, sites=self.plan(db, now))
        report.reason = self._threshold(report.sites)
        if dry_run:
            report.outcome = "stopped" if report.reason else "ok"
            return report
        run_id = new_id()
        report.run_id = run_id
        with db.transaction() as session:
            self.repo.add_run(
                session,
                PurgeRun(
                    id=run_id,
                    started_at=now,
                    finished_at=None,
                    dry_run=False,
                    forced=force,
                    outcome="running",
                    segments_erased=0,
                    keys_destroyed=0,
                ),
            )
        if report.reason and not force:
            report.outcome = "stopped"
            log.warning("purge stopped by its safety threshold: %s", report.reason)
            with db.transaction() as session:
                self.audit.record(
                    session,
                    actor,
                    AuditAction.PURGE_STOPPED,
                    target_type="purge",
                    target_id=run_id,
                    outcome=Outcome.FAILED,
                    details={"reason": report.reason, "expired": sum(p.expired for p in report.sites)},
                )
                self.repo.finish_run(session, run_id, outcome="stopped", finished_at=self.clock.now())
            return report
        try:
            for plan in report.sites:
                if plan.expired:
                    self._erase_site(db, plan, run_id, actor, report)
            for plan in report.sites:
                self._destroy_empty_days(db, plan, run_id, actor, report, now)
            self._destroy_finished_hold_keys(db, actor)
        except Exception:
            with db.transaction() as session:
                self.repo.finish_run(
                    session,
                    run_id,
                    outcome="failed",
                    finished_at=self.clock.now(),
                    segments_erased=report.segments_erased,
                    keys_destroyed=report.keys_destroyed,
                )
            raise
        report.outcome = "ok" if not report.delete_failures else "incomplete"
        with db.transaction() as session:
            self.repo.finish_run(
                session,
                run_id,
                outcome=report.outcome,
                finished_at=self.clock.now(),
                segments_erased=report.segments_erased,
                keys_destroyed=report.keys_destroyed,
            )
        return report

    def _threshold(self, plans: list[SitePlan]) -> str:
        total = sum(p.expired for p in plans)
        if total > self.settings.purge_max_segments:
            return f"{total} segments expired, more than CCTV_GOV_PURGE_MAX_SEGMENTS ({self.settings.purge_max_segments})"
        for p in plans:
            if (
                p.expired >= MIN_SEGMENTS_FOR_FRACTION
                and p.expired > self.settings.purge_max_fraction * p.stored
            ):
                return (
                    f"site {p.slug}: {p.expired} of its {p.stored} segments expired, more than "
                    f"CCTV_GOV_PURGE_MAX_FRACTION ({self.settings.purge_max_fraction:g}); is the clock right?"
                )
        return ""

    def _erase_site(
        self, db: Database, plan: SitePlan, run_id: uuid.UUID, actor: Actor, report: PurgeReport
    ) -> None:
        while True:
            with db.transaction() as session:
                claimed = [
                    (s.id, s.object_key)
                    for s in self.repo.claim_expired(
                        session, plan.site_id, plan.cutoff, self.clock.now(), self.settings.purge_batch_size
                    )
                ]
            if not claimed:
                return
            failed = set(self.storage.delete_many([key for _, key in claimed]))
            gone = [segment_id for segment_id, key in claimed if key not in failed]
            with db.transaction() as session:
                erased = self.repo.replace_by_tombstones(session, gone, run_id, self.clock.now())
                self.audit.record_many(
                    session,
                    [
                        self.audit.event(
                            actor,
                            AuditAction.SEGMENT_ERASE,
                            target_type="segment",
                            target_id=s.id,
                            site_id=s.site_id,
                            details={
                                "camera_id": str(s.camera_id),
                                "start": s.start_at.isoformat(),
                                "end": s.end_at.isoformat(),
                                "size": s.size,
                                "sha256": s.sha256.hex(),
                                "day": s.key_day.isoformat(),
                            },
                        )
                        for s in erased
                    ],
                )
            report.segments_erased += len(erased)
            if failed:
                # Left ``purging``: never served, and the next pass tries their objects again.
                report.delete_failures += len(failed)
                log.error(
                    "purge: %d objects of site %s could not be deleted; retried next pass",
                    len(failed),
                    plan.slug,
                )
                return

    def _destroy_empty_days(
        self,
        db: Database,
        plan: SitePlan,
        run_id: uuid.UUID,
        actor: Actor,
        report: PurgeReport,
        now: datetime,
    ) -> None:
        # A day can take no more footage once a segment that starts on it would already be past retention.
        longest = timedelta(seconds=self.settings.max_segment_seconds)
        for day in self.keys.days(plan.site_id):
            day_end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
            if day_end + longest + timedelta(days=plan.retention_days) > now:
                continue
            with db.transaction() as session:
                if self.repo.day_in_use(session, plan.site_id, day, now):
                    continue
                self._rewrap_held(session, plan, day, now)
                # Recorded first: if the destruction below fails, the next pass finds the key and destroys it.
                if self.repo.record_destruction(session, plan.site_id, day, run_id, self.clock.now()):
                    self.audit.record(
                        session,
                        actor,
                        AuditAction.DAY_KEY_DESTROY,
                        target_type="day_key",
                        target_id=f"{plan.site_id}/{day.isoformat()}",
                        site_id=plan.site_id,
                        details={"day": day.isoformat()},
                    )
            if self.keys.destroy(plan.site_id, day):
                report.keys_destroyed += 1

    def sync_legal_holds(self, db: Database, batch: int = 1000) -> dict[str, int]:
        """Make the store's legal holds follow the holds in force: put on objects an evidence hold covers,
        released from objects none does. Idempotent; a failure is left for the next run."""
        counts = {"held": 0, "released": 0, "failures": 0}
        if not self.storage.supports_legal_hold:
            return counts
        while True:
            with db.transaction() as session:
                to_hold, to_release = self.repo.legal_hold_changes(session, self.clock.now(), batch)
                work = [(s.id, s.object_key, True) for s in to_hold] + [
                    (s.id, s.object_key, False) for s in to_release
                ]
            if not work:
                return counts
            done: dict[bool, list[uuid.UUID]] = {True: [], False: []}
            for segment_id, key, on in work:
                try:
                    self.storage.set_legal_hold(key, on)
                except ObjectNotFound:
                    done[on].append(segment_id)  # nothing left to hold or release
                except StorageError as exc:
                    counts["failures"] += 1
                    log.error(
                        "legal hold %s failed for a segment: %s", "on" if on else "off", type(exc).__name__
                    )
                    continue
                else:
                    done[on].append(segment_id)
            with db.transaction() as session:
                for on, ids in done.items():
                    self.repo.mark_legal_hold(session, ids, on)
            counts["held"] += len(done[True])
            counts["released"] += len(done[False])
            if counts["failures"]:
                return counts

    def _rewrap_held(self, session: Any, plan: SitePlan, day: Any, now: datetime) -> None:
        """Before a day's key goes, the data keys of that day's held segments are wrapped again under each
        covering hold's own key: held evidence stays readable, everything else of the day does not."""
        held = self.holds.repo.held_segments_of_day(session, plan.site_id, day, now)
        if not held:
            return
        kek = self.keys.get(plan.site_id, day)
        for segment in held:
            assert segment.wrapped_key is not None  # the query selects those with a key
            data_key = unwrap_data_key(kek, segment.wrapped_key)
            for hold_id in self.holds.repo.active_covering(session, segment, now):
                rewrapped = wrap_data_key(self.keys.hold_key(hold_id), data_key)
                self.holds.repo.add_held_key(session, hold_id, segment.id, rewrapped)
            segment.wrapped_key = None
        session.flush()

    def _destroy_finished_hold_keys(self, db: Database, actor: Actor) -> None:
        with db.transaction() as session:
            for hold in self.holds.repo.finished_with_keys(session):
                destroyed = self.keys.destroy_hold_key(hold.id)
                hold.key_destroyed_at = self.clock.now()
                if destroyed:
                    self.audit.record(
                        session,
                        actor,
                        AuditAction.HOLD_KEY_DESTROY,
                        target_type="evidence_hold",
                        target_id=hold.id,
                        site_id=hold.site_id,
                    )
