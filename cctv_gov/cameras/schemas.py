from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from cctv_gov.kit.schemas import Input, Output

CameraKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Stable name the site's NVR and agent use; never changes.",
        examples=["cam-01"],
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=200, examples=["Front desk"])]
Location = Annotated[str, Field(min_length=1, max_length=200, examples=["Reception, facing the entrance"])]
Purpose = Annotated[
    str,
    Field(
        min_length=10,
        max_length=1000,
        description="Why this camera records (the policy requires a specified purpose per camera).",
        examples=["Safety of members and staff at the entrance; investigating incidents"],
    ),
]


class CameraCreate(Input):
    key: CameraKey
    name: Name
    location: Location
    purpose: Purpose
    enabled: bool = True


class CameraUpdate(Input):
    name: Name | None = None
    location: Location | None = None
    purpose: Purpose | None = None
    enabled: bool | None = None


class CameraOut(Output):
    id: uuid.UUID
    site_id: uuid.UUID
    key: str
    name: str
    location: str
    purpose: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
