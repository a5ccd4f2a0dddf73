from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from cctv_gov.footage.schemas import SegmentOut
from cctv_gov.kit.schemas import Input, Output

MAX_BATCH = 1000


class Container(StrEnum):
    MP4 = "mp4"
    MKV = "mkv"
    TS = "ts"
    AVI = "avi"
    MOV = "mov"


class PrepareUpload(Input):
    camera: Annotated[
        str, Field(min_length=1, max_length=64, description="Camera key at the site, or its id")
    ]
    start: AwareDatetime
    end: AwareDatetime
    size: Annotated[int, Field(ge=0, description="Bytes of the file as the NVR wrote it")]
    sha256: Annotated[
        str, Field(max_length=128, description="SHA-256 of the file as the NVR wrote it, 64 hex digits")
    ]
    container: Container
    codec: Annotated[str | None, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,31}$", examples=["h264"])] = None


class StreamFormat(Output):
    format: str
    chunk_size: int


class UploadOut(Output):
    upload_id: uuid.UUID
    segment_id: uuid.UUID
    state: str
    expires_at: datetime
    data_key: str | None = Field(
        description="Base64 of the segment's data key; only while the upload is open. Keep it in memory only."
    )
    stream: StreamFormat
    ciphertext_size: int


class TargetRequest(Input):
    content_md5: Annotated[str, Field(max_length=64, description="Base64 of the MD5 of the ciphertext")]


class UploadTarget(Output):
    method: str
    url: str = Field(description="Relative (the service itself: send your token) or a presigned store URL")
    headers: dict[str, str]
    expires_at: datetime


class BatchComplete(Input):
    upload_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_BATCH)]


class ItemError(Output):
    code: str
    message: str


class BatchItem(Output):
    upload_id: uuid.UUID
    ok: bool
    segment: SegmentOut | None = None
    error: ItemError | None = None


class BatchResult(Output):
    results: list[BatchItem]
