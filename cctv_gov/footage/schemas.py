from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field

from cctv_gov.kit.schemas import Input, Output
from cctv_gov.models import Segment


class SegmentOut(Output):
    id: uuid.UUID
    site_id: uuid.UUID
    camera_id: uuid.UUID
    start: datetime
    end: datetime
    size: int
    sha256: str = Field(description="SHA-256 of the file as the NVR wrote it (the evidence hash), hex")
    container: str
    codec: str | None
    state: str
    registered_at: datetime | None

    @classmethod
    def of(cls, segment: Segment) -> SegmentOut:
        return cls(
            id=segment.id,
            site_id=segment.site_id,
            camera_id=segment.camera_id,
            start=segment.start_at,
            end=segment.end_at,
            size=segment.size,
            sha256=segment.sha256.hex(),
            container=segment.container,
            codec=segment.codec,
            state=segment.state,
            registered_at=segment.registered_at,
        )


class SegmentPage(Output):
    segments: list[SegmentOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class Gap(Output):
    start: datetime
    end: datetime
    seconds: float


class Coverage(Output):
    camera_id: uuid.UUID
    start: datetime
    end: datetime
    segments: int
    recorded_seconds: float
    gaps: list[Gap]


class PlaybackRequest(Input):
    purpose: Annotated[
        str,
        Field(
            min_length=10,
            max_length=500,
            description="Why you are viewing this footage; kept (as a hash) in the audit log",
            examples=["Incident 2026-118: reviewing the fall reported at the front desk"],
        ),
    ]


class PlaybackLink(Output):
    url: str = Field(description="Relative URL; a video element can use it (range requests) until it expires")
    expires_at: datetime
    content_type: str
    size: int


class TimeWindow(Input):
    start: AwareDatetime
    end: AwareDatetime
