"""HTTP for uploads (agents only). The protocol is in docs/ingest-protocol.md."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import anyio.from_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from cctv_gov.authz import Actor, Role, allow, allow_streaming
from cctv_gov.db import get_database, get_session
from cctv_gov.errors import AppError
from cctv_gov.footage.schemas import SegmentOut
from cctv_gov.kit import stream
from cctv_gov.middleware import error_response
from cctv_gov.uploads.schemas import (
    BatchComplete,
    BatchItem,
    BatchResult,
    ItemError,
    PrepareUpload,
    StreamFormat,
    TargetRequest,
    UploadOut,
    UploadTarget,
)
from cctv_gov.uploads.service import Prepared, UploadService

router = APIRouter(prefix="/v1/sites/{site_id}/uploads", tags=["uploads"])
SessionDep = Depends(get_session, scope="function")
AGENT = allow(Role.AGENT)

CONTENT_PATH = r"^/v1/sites/[^/]+/uploads/[^/]+/content$"
"""The one route whose body is footage: the body-size limit for JSON does not apply to it."""


def _service(request: Request) -> UploadService:
    service: UploadService = request.app.state.services.uploads
    return service


def _out(prepared: Prepared) -> UploadOut:
    segment = prepared.segment
    return UploadOut(
        upload_id=segment.upload_id,
        segment_id=segment.id,
        state=segment.state,
        expires_at=segment.expires_at,
        data_key=None if prepared.data_key is None else base64.b64encode(prepared.data_key).decode(),
        stream=StreamFormat(format=stream.FORMAT, chunk_size=segment.chunk_size),
        ciphertext_size=segment.ciphertext_size,
    )


@router.post(
    "",
    response_model=UploadOut,
    status_code=201,
    summary="Prepare an upload: validate the segment, reserve its time, issue its data key",
    responses={200: {"description": "A retry of the same segment: the same upload"}},
)
def prepare_upload(
    site_id: uuid.UUID,
    body: PrepareUpload,
    request: Request,
    response: Response,
    actor: Actor = AGENT,
    session: Session = SessionDep,
) -> UploadOut:
    prepared = _service(request).prepare(session, actor, site_id, body)
    if not prepared.created:
        response.status_code = 200
    response.headers["Cache-Control"] = "no-store"
    return _out(prepared)


@router.post("/batch-complete", response_model=BatchResult, summary="Register many uploaded segments at once")
def batch_complete(
    site_id: uuid.UUID,
    body: BatchComplete,
    request: Request,
    actor: Actor = AGENT,
    session: Session = SessionDep,
) -> BatchResult:
    results = _service(request).complete_many(session, actor, site_id, body.upload_ids)
    return BatchResult(
        results=[
            BatchItem(upload_id=u, ok=False, error=ItemError(code=r.code, message=r.message))
            if isinstance(r, AppError)
            else BatchItem(upload_id=u, ok=True, segment=SegmentOut.of(r))
            for u, r in results
        ]
    )


@router.post(
    "/{upload_id}/target", response_model=UploadTarget, summary="Where and how to PUT the ciphertext"
)
def upload_target(
    site_id: uuid.UUID,
    upload_id: uuid.UUID,
    body: TargetRequest,
    request: Request,
    actor: Actor = AGENT,
    session: Session = SessionDep,
) -> UploadTarget:
    target = _service(request).target(session, site_id, upload_id, body.content_md5)
    return UploadTarget(
        method=target.method, url=target.url, headers=target.headers, expires_at=target.expires_at
    )


@router.put(
    "/{upload_id}/content",
    status_code=204,
    summary="Receive the ciphertext (local backend; S3 stores take a presigned PUT instead)",
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string"}}}}},
)
def upload_content(
    site_id: uuid.UUID, upload_id: uuid.UUID, request: Request, actor: Actor = allow_streaming(Role.AGENT)
) -> Response:
    declared = request.headers.get("content-length")
    _service(request).receive(
        get_database(request),
        site_id,
        upload_id,
        _body(request),
        length=int(declared) if declared and declared.isdigit() else None,
        content_md5=request.headers.get("content-md5"),
    )
    return Response(status_code=204)


@router.post(
    "/{upload_id}/complete", response_model=SegmentOut, summary="Verify the stored object and register"
)
def complete_upload(
    site_id: uuid.UUID,
    upload_id: uuid.UUID,
    request: Request,
    actor: Actor = AGENT,
    session: Session = SessionDep,
) -> SegmentOut | JSONResponse:
    outcome = _service(request).complete(session, actor, site_id, upload_id)
    if isinstance(outcome, AppError):
        # Answered, not raised: the quarantine and its audit event are committed with this request.
        return error_response(outcome.status, outcome.code, outcome.message, outcome.details)
    return SegmentOut.of(outcome)


def _body(request: Request) -> Iterator[bytes]:
    """The request body as a blocking iterator, for a sync route running in a worker thread."""
    chunks = request.stream()
    while True:
        try:
            chunk = anyio.from_thread.run(chunks.__anext__)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk
