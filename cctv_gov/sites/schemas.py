from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import Field, field_validator

from cctv_gov.kit.schemas import Input, Output

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$", examples=["gym-central"])]


class SiteCreate(Input):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200, examples=["Central Gym"])]
    timezone: Annotated[str, Field(max_length=64, examples=["Pacific/Auckland"])]
    retention_days: Annotated[int, Field(ge=1, le=3650, examples=[31])] = 31

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError("not an IANA time zone name")
        return value


def _zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones() | {"UTC"}
    return _ZONES


_ZONES: set[str] | None = None


class SiteUpdate(Input):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    retention_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in _zones():
            raise ValueError("not an IANA time zone name")
        return value


class Person(Output):
    id: uuid.UUID
    name: str


class SiteOut(Output):
    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    retention_days: int
    created_at: datetime


class SiteDetail(SiteOut):
    general_managers: list[Person]
