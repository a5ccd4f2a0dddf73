"""Periodic jobs of the audit domain."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cctv_gov.audit.sequencer import Sequencer
from cctv_gov.kit.jobs import Job

SEQUENCER_JOB = "audit-sequencer"


def sequencer_job(sequencer: Sequencer, interval_seconds: float) -> Job:
    def run(session: Session) -> dict[str, int]:
        integrated = sequencer.integrate(session)
        return {"integrated": integrated, "more": int(integrated >= sequencer.batch_size)}

    return Job(SEQUENCER_JOB, interval_seconds, run)
