"""Periodic jobs of the retention domain."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cctv_gov.db import Database
from cctv_gov.kit.jobs import Job
from cctv_gov.retention.reconcile import ReconcileService
from cctv_gov.retention.service import PurgeService

PURGE_JOB = "retention-purge"


def purge_job(purge: PurgeService, db: Database, interval_seconds: float) -> Job:
    def run(_session: Session) -> dict[str, int]:
        # The purge commits batch by batch in transactions of its own (see PurgeService); the job's lock keeps
        # it to one process at a time.
        return purge.run(db).counts()

    return Job(PURGE_JOB, interval_seconds, run)


RECONCILE_JOB = "retention-reconcile"


def reconcile_job(reconcile: ReconcileService, db: Database, interval_seconds: float) -> Job:
    def run(_session: Session) -> dict[str, int]:
        return reconcile.run(db).counts()

    return Job(RECONCILE_JOB, interval_seconds, run)


LEGAL_HOLD_JOB = "retention-legal-holds"


def legal_hold_job(purge: PurgeService, db: Database, interval_seconds: float) -> Job:
    """Puts the store's legal hold on newly held footage within a minute of the approval (the purge also syncs
    before each pass)."""

    def run(_session: Session) -> dict[str, int]:
        return purge.sync_legal_holds(db)

    return Job(LEGAL_HOLD_JOB, interval_seconds, run)
