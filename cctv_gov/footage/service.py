"""Rules for registered footage: listings and gaps (audited reads) and playback (audited, with a stated purpose).

Playback is a two-step: an operator asks for a link with a purpose (audited), and gets a short-lived signed
link that a browser's video element can use with range requests (it cannot send an Authorization header).
The link names one segment and one person and expires; its signature key is derived from the master key, so
any service process accepts links made by another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor, Role
from cctv_gov.cameras.service import CameraService
from cctv_gov.config import Settings
from cctv_gov.db import Database
from cctv_gov.errors import AppError, InvalidInput, NotFound, Unauthenticated
from cctv_gov.footage.repository import SegmentRepository
from cctv_gov.holds.repository import HoldRepository
from cctv_gov.identity.repository import IdentityRepository
from cctv_gov.kit import stream
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.keystore import KeyDestroyed, KeyStore, unwrap_data_key
from cctv_gov.kit.storage import ObjectStore
from cctv_gov.models import Segment, SegmentState

MAX_PAGE = 1000
VIEWER_ROLES = frozenset({Role.OPERATOR.value, Role.GENERAL_MANAGER.value})
"""Who may play footage (the router's rule for asking a link; checked again when the link is used)."""
CONTENT_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "ts": "video/mp2t",
    "avi": "video/x-msvideo",
}


class RangeNotSatisfiable(AppError):
    status = 416
    code = "range_not_satisfiable"


@dataclass(frozen=True)
class Page:
    segments: Sequence[Segment]
    next_cursor: str | None


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class CoverageReport:
    segments: int
    recorded_seconds: float
    gaps: list[Gap]


@dataclass(frozen=True)
class Playback:
    segment: Segment
    start: int
    end: int  # inclusive
    partial: bool
    body: Iterator[bytes]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.segment.container, "application/octet-stream")


class FootageService:
    def __init__(
        self,
        clock: Clock,
        audit: AuditLog,
        settings: Settings,
        storage: ObjectStore,
        keys: KeyStore,
        cameras: CameraService,
        link_secret: bytes,
    ) -> None:
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.storage = storage
        self.keys = keys
        self.cameras = cameras
        self.repo = SegmentRepository()
        self.people = IdentityRepository()
        self.holds = HoldRepository()
        self._link_secret = link_secret

    # Finding -----------------------------------------------------------------------------------------------

    def list(
        self,
        session: Session,
        actor: Actor,
        site_id: uuid.UUID,
        *,
        camera_id: uuid.UUID | None,
        start: datetime | None,
        end: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page:
        if start is not None and end is not None and end <= start:
            raise InvalidInput("end must be after start", code="invalid_time_range")
        if camera_id is not None:
            self.cameras.get(session, site_id, camera_id)
        after = _decode_cursor(cursor) if cursor else None
        rows = self.repo.registered(
            session,
            site_id,
            camera_ids=None if camera_id is None else [camera_id],
            start=start,
            end=end,
            after=after,
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        self.audit.record(
            session,
            actor,
            AuditAction.SEGMENT_LIST,
            target_type="camera" if camera_id else "site",
            target_id=camera_id or site_id,
            site_id=site_id,
            details={
                "start": "" if start is None else start.astimezone(UTC).isoformat(),
                "end": "" if end is None else end.astimezone(UTC).isoformat(),
                "returned": len(rows),
            },
        )
        next_cursor = _encode_cursor(rows[-1]) if more and rows else None
        return Page(rows, next_cursor)

    def coverage(
        self,
        session: Session,
        actor: Actor,
        site_id: uuid.UUID,
        camera_id: uuid.UUID,
        start: datetime,
        end: datetime,
    ) -> CoverageReport:
        if end <= start:
            raise InvalidInput("end must be after start", code="invalid_time_range")
        if end - start > timedelta(days=self.settings.max_retention_days + 1):
            raise InvalidInput("ask for at most the retention period at once", code="window_too_long")
        self.cameras.get(session, site_id, camera_id)
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        intervals = self.repo.intervals(session, camera_id, start, end)
        report = coverage_of(intervals, start, end, timedelta(seconds=self.settings.gap_tolerance_seconds))
        self.audit.record(
            session,
            actor,
            AuditAction.COVERAGE_READ,
            target_type="camera",
            target_id=camera_id,
            site_id=site_id,
            details={"start": start.isoformat(), "end": end.isoformat(), "gaps": len(report.gaps)},
        )
        return report

    # Playback ----------------------------------------------------------------------------------------------

    def playback_link(
        self, session: Session, actor: Actor, site_id: uuid.UUID, segment_id: uuid.UUID, purpose: str
    ) -> tuple[str, datetime, Segment]:
        segment = self._registered(session, site_id, segment_id)
        expires = self.clock.now() + timedelta(seconds=self.settings.playback_seconds)
        self.audit.record(
            session,
            actor,
            AuditAction.SEGMENT_PLAY,
            target_type="segment",
            target_id=segment.id,
            site_id=site_id,
            purpose=purpose,
            details={"camera_id": str(segment.camera_id), "expires": expires.isoformat()},
        )
        payload = json.dumps(
            {"s": str(segment.id), "p": str(actor.principal_id), "e": int(expires.timestamp())},
            separators=(",", ":"),
        ).encode()
        ticket = _b64(payload) + "." + _b64(self._sign(payload))
        return f"/v1/playback/{ticket}", expires, segment

    def open_link(self, db: Database, ticket: str, range_header: str | None) -> Playback:
        payload = self._check_ticket(ticket)
        with db.transaction() as session:
            segment = self.repo.get(session, uuid.UUID(payload["s"]))
            if segment is None or segment.state != SegmentState.REGISTERED.value:
                raise NotFound("the footage is no longer available", code="segment_not_found")
            # A link lives minutes, but a person disabled or stripped of the role meanwhile loses it at once.
            if not self._may_view(session, uuid.UUID(payload["p"]), segment.site_id):
                raise Unauthenticated("the playback link is no longer valid", code="invalid_link")
            data_key = self.data_key(session, segment)
            session.expunge(segment)
        return self.play(segment, range_header, data_key)

    def data_key(self, session: Session, segment: Segment) -> bytes:
        """The segment's data key: under its day's key, or, once that is destroyed, under a hold in force."""
        if segment.wrapped_key is not None:
            try:
                return unwrap_data_key(self.keys.get(segment.site_id, segment.key_day), segment.wrapped_key)
            except KeyDestroyed:
                pass
        for hold_id, wrapped in self.holds.held_keys_of(session, segment.id, self.clock.now()):
            try:
                return unwrap_data_key(self.keys.get_hold_key(hold_id), wrapped)
            except KeyDestroyed:
                continue
        raise NotFound("the footage's keys are destroyed: it has been erased", code="segment_erased")

    def play(self, segment: Segment, range_header: str | None, data_key: bytes) -> Playback:
        size = segment.size
        first, last, partial = _parse_range(range_header, size)
        layout = stream.Layout(size, segment.chunk_size)
        return Playback(
            segment, first, last, partial, self._decrypt(segment, data_key, layout, first, last, partial)
        )

    def _decrypt(
        self, segment: Segment, data_key: bytes, layout: stream.Layout, first: int, last: int, partial: bool
    ) -> Iterator[bytes]:
        decryptor = stream.Decryptor(data_key, segment.id, layout)
        if layout.plaintext_size == 0:
            return iter(())
        c_first, c_last = first // layout.chunk_size, last // layout.chunk_size
        offset, length = layout.chunk_range(c_first, c_last)

        def body() -> Iterator[bytes]:
            digest = hashlib.sha256() if not partial else None
            with self.storage.open(segment.object_key, offset=0, length=stream.HEADER_SIZE) as head:
                decryptor.check_header(b"".join(head))
            position = c_first * layout.chunk_size
            with self.storage.open(segment.object_key, offset=offset, length=length) as sealed:
                for plain in decryptor.chunks(sealed, first=c_first):
                    if digest is not None:
                        digest.update(plain)
                    lo, hi = max(first - position, 0), min(last + 1 - position, len(plain))
                    position += len(plain)
                    if lo < hi:
                        yield plain[lo:hi]
            if digest is not None and digest.digest() != segment.sha256:
                # A full playback re-checks the evidence hash; on a mismatch the response is cut short.
                raise stream.StreamError("the decrypted footage does not match its registered SHA-256")

        return body()

    def _may_view(self, session: Session, principal_id: uuid.UUID, site_id: uuid.UUID) -> bool:
        principal = self.people.get_principal(session, principal_id)
        if principal is None or principal.disabled_at is not None:
            return False
        return any(
            g.role in VIEWER_ROLES and (g.site_id is None or g.site_id == site_id)
            for g in self.people.active_grants(session, principal_id)
        )

    def _registered(self, session: Session, site_id: uuid.UUID, segment_id: uuid.UUID) -> Segment:
        segment = self.repo.get(session, segment_id)
        if segment is None or segment.site_id != site_id or segment.state != SegmentState.REGISTERED.value:
            raise NotFound("no such segment at this site", code="segment_not_found")
        return segment

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._link_secret, b"playback-link v1\n" + payload, hashlib.sha256).digest()

    def _check_ticket(self, ticket: str) -> dict[str, str]:
        invalid = Unauthenticated("the playback link is not valid", code="invalid_link")
        if len(ticket) > 512:
            raise invalid
        try:
            raw_payload, raw_mac = ticket.split(".", 1)
            payload = _unb64(raw_payload)
            mac = _unb64(raw_mac)
        except ValueError:
            raise invalid from None
        if not hmac.compare_digest(mac, self._sign(payload)):
            raise invalid
        data = json.loads(payload)
        if int(data["e"]) <= int(self.clock.now().timestamp()):
            raise Unauthenticated("the playback link has expired; ask for a new one", code="link_expired")
        return {k: str(v) for k, v in data.items()}


def coverage_of(
    intervals: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime, tolerance: timedelta
) -> CoverageReport:
    """Recorded time and the gaps (longer than ``tolerance``) in [start, end), from intervals sorted by start."""
    gaps: list[Gap] = []
    recorded = timedelta(0)
    cursor = start
    for s, e in intervals:
        s, e = max(s, start), min(e, end)
        if s > cursor and s - cursor > tolerance:
            gaps.append(Gap(cursor, s))
        if e > cursor:
            recorded += e - max(s, cursor)
            cursor = e
    if end - cursor > tolerance:
        gaps.append(Gap(cursor, end))
    return CoverageReport(len(intervals), recorded.total_seconds(), gaps)


def _parse_range(header: str | None, size: int) -> tuple[int, int, bool]:
    """(first, last inclusive, partial) for a single ``bytes=`` range (RFC 9110); multiple ranges are refused."""
    if header is None or size == 0:
        return 0, max(size - 1, 0), False
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise RangeNotSatisfiable("only a single bytes= range is supported", details={"size": size})
    lo, _, hi = spec.strip().partition("-")
    try:
        if lo == "":
            suffix = int(hi)
            if suffix <= 0:
                raise ValueError
            first, last = max(size - suffix, 0), size - 1
        else:
            first = int(lo)
            last = min(int(hi), size - 1) if hi else size - 1
    except ValueError:
        raise RangeNotSatisfiable("the Range header is malformed", details={"size": size}) from None
    if first >= size or first > last:
        raise RangeNotSatisfiable("the range lies outside the footage", details={"size": size})
    return first, last, True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None


def _encode_cursor(segment: Segment) -> str:
    return _b64(f"{segment.start_at.isoformat()}|{segment.id}".encode())


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        when, _, ident = _unb64(cursor).decode().partition("|")
        return datetime.fromisoformat(when), uuid.UUID(ident)
    except ValueError:
        raise InvalidInput("the cursor is not one this API gave", code="invalid_cursor") from None
