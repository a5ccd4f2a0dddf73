"""The compliance report: the evidence for the policy's periodic review, per site.

* per camera, the age of its oldest footage outside a hold in force: it must never exceed the retention period
  plus one purge interval (else it is reported overdue);
* segments purged per day over the retention period;
* holds in force and when they end (and which are due for review);
* the last successful purge pass, and whether the purge itself is overdue.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor
from cctv_gov.cameras.service import CameraService
from cctv_gov.config import Settings
from cctv_gov.holds.service import HoldService
from cctv_gov.kit.clock import Clock
from cctv_gov.models import EvidenceHold, PurgeRun
from cctv_gov.retention.repository import RetentionRepository
from cctv_gov.sites.service import SiteService


@dataclass(frozen=True)
class CameraAge:
    camera_id: uuid.UUID
    key: str
    oldest_end: datetime | None
    age_seconds: float | None
    overdue: bool


@dataclass(frozen=True)
class ComplianceReport:
    site_id: uuid.UUID
    generated_at: datetime
    retention_days: int
    limit_seconds: float
    cameras: list[CameraAge]
    purged_per_day: dict[date, int]
    holds_in_force: list[EvidenceHold]
    holds_due_for_review: list[uuid.UUID]
    last_successful_pass: PurgeRun | None
    last_pass: PurgeRun | None
    purge_overdue: bool

    @property
    def overdue(self) -> list[str]:
        found = [f"camera {c.key}: footage {c.age_seconds:.0f} s old" for c in self.cameras if c.overdue]
        if self.purge_overdue:
            found.append("no successful purge pass within two purge intervals")
        return found


class ComplianceService:
    def __init__(
        self,
        clock: Clock,
        audit: AuditLog,
        settings: Settings,
        sites: SiteService,
        cameras: CameraService,
        holds: HoldService,
    ) -> None:
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.sites = sites
        self.cameras = cameras
        self.holds = holds
        self.repo = RetentionRepository()

    def report(self, session: Session, actor: Actor, site_id: uuid.UUID) -> ComplianceReport:
        now = self.clock.now()
        site = self.sites.get(session, site_id)
        interval = timedelta(seconds=self.settings.purge_interval_seconds)
        limit = timedelta(days=site.retention_days) + interval
        oldest = self.repo.oldest_by_camera(session, site_id, now)
        cameras = []
        for camera in self.cameras.list(session, site_id):
            end = oldest.get(camera.id)
            age = None if end is None else (now - end).total_seconds()
            cameras.append(
                CameraAge(camera.id, camera.key, end, age, age is not None and age > limit.total_seconds())
            )
        since = now - timedelta(days=site.retention_days)
        per_day = Counter(t.date() for t in self.repo.purged_at_since(session, site_id, since))
        in_force = list(self.holds.in_force(session, site_id))
        due = [v.hold.id for v in self.holds.list(session, actor, site_id) if v.review_due]
        last_ok = self.repo.last_run(session, "ok")
        report = ComplianceReport(
            site_id=site_id,
            generated_at=now,
            retention_days=site.retention_days,
            limit_seconds=limit.total_seconds(),
            cameras=cameras,
            purged_per_day=dict(sorted(per_day.items())),
            holds_in_force=in_force,
            holds_due_for_review=due,
            last_successful_pass=last_ok,
            last_pass=self.repo.last_run(session),
            purge_overdue=last_ok is None or (last_ok.finished_at or last_ok.started_at) < now - 2 * interval,
        )
        self.audit.record(
            session,
            actor,
            AuditAction.COMPLIANCE_READ,
            target_type="site",
            target_id=site_id,
            site_id=site_id,
            details={"overdue": len(report.overdue)},
        )
        return report
