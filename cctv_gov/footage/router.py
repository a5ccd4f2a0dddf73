"""HTTP for footage: listings, coverage and gaps, playback links and playback."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from cctv_gov.authz import Actor, Role, allow, public
from cctv_gov.db import get_database, get_session
from cctv_gov.footage.schemas import (
    Coverage,
    Gap,
    PlaybackLink,
    PlaybackRequest,
    SegmentOut,
    SegmentPage,
)
from cctv_gov.footage.service import CONTENT_TYPES, MAX_PAGE, VIEWER_ROLES, FootageService

router = APIRouter(tags=["footage"])
SessionDep = Depends(get_session, scope="function")
FINDERS = (Role.OPERATOR, Role.GENERAL_MANAGER, Role.AUDITOR)
VIEWERS = tuple(Role(r) for r in sorted(VIEWER_ROLES))


def _service(request: Request) -> FootageService:
    service: FootageService = request.app.state.services.footage
    return service


@router.get(
    "/v1/sites/{site_id}/segments",
    response_model=SegmentPage,
    summary="Registered segments by camera and time (an audited read)",
)
def list_segments(
    site_id: uuid.UUID,
    request: Request,
    camera_id: uuid.UUID | None = None,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    actor: Actor = allow(*FINDERS),
    session: Session = SessionDep,
) -> SegmentPage:
    page = _service(request).list(
        session, actor, site_id, camera_id=camera_id, start=start, end=end, cursor=cursor, limit=limit
    )
    return SegmentPage(segments=[SegmentOut.of(s) for s in page.segments], next_cursor=page.next_cursor)


@router.get(
    "/v1/sites/{site_id}/cameras/{camera_id}/coverage",
    response_model=Coverage,
    summary="What a camera recorded in a window, and the gaps (an audited read)",
)
def camera_coverage(
    site_id: uuid.UUID,
    camera_id: uuid.UUID,
    start: AwareDatetime,
    end: AwareDatetime,
    request: Request,
    actor: Actor = allow(*FINDERS),
    session: Session = SessionDep,
) -> Coverage:
    report = _service(request).coverage(session, actor, site_id, camera_id, start, end)
    return Coverage(
        camera_id=camera_id,
        start=start,
        end=end,
        segments=report.segments,
        recorded_seconds=report.recorded_seconds,
        gaps=[Gap(start=g.start, end=g.end, seconds=(g.end - g.start).total_seconds()) for g in report.gaps],
    )


@router.post(
    "/v1/sites/{site_id}/segments/{segment_id}/playback",
    response_model=PlaybackLink,
    summary="A short-lived playback link, for a stated purpose (audited)",
)
def playback_link(
    site_id: uuid.UUID,
    segment_id: uuid.UUID,
    body: PlaybackRequest,
    request: Request,
    actor: Actor = allow(*VIEWERS),
    session: Session = SessionDep,
) -> PlaybackLink:
    url, expires, segment = _service(request).playback_link(session, actor, site_id, segment_id, body.purpose)
    return PlaybackLink(
        url=url,
        expires_at=expires,
        content_type=CONTENT_TYPES.get(segment.container, "application/octet-stream"),
        size=segment.size,
    )


@router.get(
    "/v1/playback/{ticket}",
    summary="Stream a segment, decrypted (the link is the credential; supports Range)",
    response_class=StreamingResponse,
    responses={206: {"description": "Partial content"}, 200: {"content": {"video/mp4": {}}}},
)
def play(
    ticket: str,
    request: Request,
    range_header: Annotated[str | None, Header(alias="range")] = None,
    _open: None = public(),
) -> StreamingResponse:
    playback = _service(request).open_link(get_database(request), ticket, range_header)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(playback.end - playback.start + 1 if playback.segment.size else 0),
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if playback.partial:
        headers["Content-Range"] = f"bytes {playback.start}-{playback.end}/{playback.segment.size}"
    return StreamingResponse(
        playback.body,
        status_code=206 if playback.partial else 200,
        media_type=playback.content_type,
        headers=headers,
    )
