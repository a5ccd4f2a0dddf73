"""Reconcile: compare the object store with the database in both directions, and report.

* **rows without objects** — registered footage whose object is gone: reported and audited, never "fixed" by
  deleting the row (the row is the evidence that something removed footage outside the purge);
* **objects without rows** — orphans: an object under ``footage/`` whose segment the database does not know. One
  whose segment was erased (a tombstone exists) or that is older than the install-wide maximum retention is
  footage that must not exist: it is deleted and the deletion audited (never silently); a younger unknown object
  is reported only (it may be an upload whose row a restore lost).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction, Outcome
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import SYSTEM_ACTOR, Actor
from cctv_gov.config import Settings
from cctv_gov.db import Database
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.storage import ObjectInfo, ObjectStore
from cctv_gov.models import SegmentState
from cctv_gov.retention.repository import RetentionRepository

log = logging.getLogger("cctv_gov.reconcile")


@dataclass
class ReconcileReport:
    dry_run: bool
    rows_without_objects: list[str] = field(default_factory=list)
    """Segment ids."""
    orphans: list[str] = field(default_factory=list)
    """Object keys with no row, kept (young, unknown)."""
    orphans_erased: list[str] = field(default_factory=list)
    """Object keys deleted: of erased segments, or older than the maximum retention."""
    objects_checked: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "objects_checked": self.objects_checked,
            "rows_without_objects": len(self.rows_without_objects),
            "orphans": len(self.orphans),
            "orphans_erased": len(self.orphans_erased),
        }


class ReconcileService:
    def __init__(self, clock: Clock, audit: AuditLog, settings: Settings, storage: ObjectStore) -> None:
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.storage = storage
        self.repo = RetentionRepository()

    def run(self, db: Database, *, dry_run: bool = False, actor: Actor = SYSTEM_ACTOR) -> ReconcileReport:
        report = ReconcileReport(dry_run)
        now = self.clock.now()
        too_old = now - timedelta(days=self.settings.max_retention_days)
        with db.transaction() as session:
            sites = [s.id for s in self.repo.sites(session)]
        for site_id in sites:
            with db.transaction() as session:
                expected = self.repo.stored_keys(session, site_id)
            seen: set[str] = set()
            unknown: list[ObjectInfo] = []
            for info in self.storage.list(f"footage/{site_id}/"):
                report.objects_checked += 1
                seen.add(info.key)
                if info.key not in expected:
                    unknown.append(info)
            missing = [
                k for k, state in expected.items() if state == SegmentState.REGISTERED.value and k not in seen
            ]
            with db.transaction() as session:
                erased = self.repo.tombstoned(
                    session, [i for i in (_segment_id(o.key) for o in unknown) if i]
                )
            doomed = [
                o
                for o in unknown
                if _segment_id(o.key) in erased
                or (o.last_modified is not None and o.last_modified <= too_old)
            ]
            kept = [o for o in unknown if o not in doomed]
            report.rows_without_objects += [_segment_id_text(k) for k in missing]
            report.orphans += [o.key for o in kept]
            if dry_run:
                report.orphans_erased += [o.key for o in doomed]
                continue
            failed = set(self.storage.delete_many([o.key for o in doomed])) if doomed else set()
            gone = [o.key for o in doomed if o.key not in failed]
            report.orphans_erased += gone
            with db.transaction() as session:
                for key in gone:
                    self._audit(session, actor, AuditAction.ORPHAN_ERASE, site_id, key, "erased")
                for key in missing:
                    self._audit(session, actor, AuditAction.RECONCILE_FINDING, site_id, key, "object_missing")
                for o in kept:
                    self._audit(session, actor, AuditAction.RECONCILE_FINDING, site_id, o.key, "orphan")
        if report.rows_without_objects or report.orphans:
            log.warning("reconcile: %s", report.counts())
        return report

    def _audit(
        self, session: Session, actor: Actor, action: AuditAction, site_id: uuid.UUID, key: str, what: str
    ) -> None:
        self.audit.record(
            session,
            actor,
            action,
            target_type="object",
            target_id=_segment_id_text(key),
            site_id=site_id,
            outcome=Outcome.OK if action is AuditAction.ORPHAN_ERASE else Outcome.FAILED,
            details={"finding": what, "key_sha256": hashlib.sha256(key.encode()).hexdigest()},
        )


def _segment_id(key: str) -> uuid.UUID | None:
    name = key.rsplit("/", 1)[-1].removesuffix(".cgv")
    try:
        return uuid.UUID(name)
    except ValueError:
        return None


def _segment_id_text(key: str) -> str:
    found = _segment_id(key)
    return str(found) if found else key[-64:]
