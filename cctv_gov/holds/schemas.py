from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from cctv_gov.approvals.schemas import ApprovalOut, Decision, Statement
from cctv_gov.kit.schemas import Input, Output


class HoldCreate(Input):
    camera_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=100)]
    start: AwareDatetime
    end: AwareDatetime
    reason: Annotated[
        str,
        Field(
            min_length=20,
            max_length=2000,
            description="Why this footage must be kept (the policy: copies only in relation to incidents)",
        ),
    ]
    incident_ref: Annotated[
        str, Field(min_length=1, max_length=100, examples=["INC-2026-118", "police 26/4471"])
    ]
    ends_at: AwareDatetime | None = Field(
        default=None, description="When the hold ends; default 90 days after approval is asked"
    )


class HoldDecision(Input):
    decision: Decision
    statement: Statement


class HoldExtend(Input):
    ends_at: AwareDatetime
    statement: Statement


class HoldEnd(Input):
    statement: Annotated[
        str,
        Field(min_length=10, max_length=2000, description="Why the hold ends (the purpose is discharged)"),
    ]


class HoldOut(Output):
    id: uuid.UUID
    site_id: uuid.UUID
    state: str
    camera_ids: list[uuid.UUID]
    start: datetime
    end: datetime
    reason: str
    incident_ref: str
    proposed_by: uuid.UUID | None
    proposed_at: datetime
    ends_at: datetime
    approved_at: datetime | None
    review_at: datetime | None
    review_due: bool
    ended_at: datetime | None
    end_reason: str | None
    approvals: list[ApprovalOut]
