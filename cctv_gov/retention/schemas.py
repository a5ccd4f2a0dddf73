from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field

from cctv_gov.kit.schemas import Output


class CameraAgeOut(Output):
    camera_id: uuid.UUID
    key: str
    oldest_end: datetime | None
    age_seconds: float | None
    overdue: bool


class HoldInForce(Output):
    id: uuid.UUID
    incident_ref: str
    ends_at: datetime
    review_at: datetime | None


class PurgeRunOut(Output):
    id: uuid.UUID
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    segments_erased: int
    keys_destroyed: int
    forced: bool


class ComplianceOut(Output):
    site_id: uuid.UUID
    generated_at: datetime
    retention_days: int
    limit_seconds: float = Field(description="Retention plus one purge interval: no footage may be older")
    cameras: list[CameraAgeOut]
    purged_per_day: dict[date, int]
    holds_in_force: list[HoldInForce]
    holds_due_for_review: list[uuid.UUID]
    last_successful_pass: PurgeRunOut | None
    last_pass: PurgeRunOut | None
    overdue: list[str] = Field(description="Empty when the site keeps its policy")


class CertificateOut(Output):
    certificate: dict[str, Any]
    note: str = Field(description="The certificate as a signed note: check it offline with the service's key")
