from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from cctv_gov.kit.schemas import Input, Output

Statement = Annotated[
    str,
    Field(
        min_length=20,
        max_length=4000,
        description="The General Manager's written statement: what is approved or refused, and why",
        examples=[
            "I approve keeping cameras 1-2 from 14:00 to 15:00 for the police investigation of incident 42."
        ],
    ),
]


class Decision(StrEnum):
    APPROVE = "approve"
    REFUSE = "refuse"


class ApprovalOut(Output):
    id: uuid.UUID
    site_id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    decision: str
    statement: str
    scope: str = Field(description="Canonical JSON of exactly what was decided")
    approver_id: uuid.UUID
    approver_name: str
    decided_at: datetime
    note: str = Field(description="The record as a signed note: verify it with the service's public key")


class DecisionIn(Input):
    decision: Decision
    statement: Statement
