"""Periodic jobs of the uploads domain."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cctv_gov.kit.jobs import Job
from cctv_gov.uploads.service import UploadService

CLEANUP_JOB = "uploads-cleanup"


def cleanup_job(uploads: UploadService, interval_seconds: float) -> Job:
    def run(session: Session) -> dict[str, int]:
        return uploads.expire_and_clean(session)

    return Job(CLEANUP_JOB, interval_seconds, run)
