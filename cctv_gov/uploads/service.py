"""Rules of the upload protocol (docs/ingest-protocol.md).

A segment is registered only after its stored object is verified: on S3 stores the presigned PUT binds the
ciphertext's Content-MD5 (the store refuses other bytes) and completion checks the object's size and ETag; on the
local backend the service receives the bytes itself and checks length and MD5 while writing. A mismatch
quarantines the upload: never registered or served, its data key dropped, its object deleted by the cleanup job,
and the failure audited.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction, Outcome
from cctv_gov.audit.repository import EventValues
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor
from cctv_gov.cameras.service import CameraService
from cctv_gov.config import Settings
from cctv_gov.db import Database
from cctv_gov.errors import AppError, Conflict, InvalidInput, NotFound
from cctv_gov.footage.repository import SegmentRepository
from cctv_gov.kit import stream
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.ids import new_id
from cctv_gov.kit.keystore import KeyStore, new_data_key, unwrap_data_key, wrap_data_key
from cctv_gov.kit.storage import IntegrityError, ObjectInfo, ObjectNotFound, ObjectStore, StorageError
from cctv_gov.kit.storage.base import decode_content_md5
from cctv_gov.models import Segment, SegmentState
from cctv_gov.sites.service import SiteService
from cctv_gov.uploads.schemas import PrepareUpload

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_STAT_THREADS = 16
_LIST_AT_LEAST = 20


class UploadGone(AppError):
    status = 410
    code = "upload_expired"


@dataclass(frozen=True)
class Prepared:
    segment: Segment
    data_key: bytes | None
    created: bool


@dataclass(frozen=True)
class Target:
    method: str
    url: str
    headers: dict[str, str]
    expires_at: datetime


class UploadService:
    def __init__(
        self,
        clock: Clock,
        audit: AuditLog,
        settings: Settings,
        storage: ObjectStore,
        keys: KeyStore,
        sites: SiteService,
        cameras: CameraService,
    ) -> None:
        self.clock = clock
        self.audit = audit
        self.settings = settings
        self.storage = storage
        self.keys = keys
        self.sites = sites
        self.cameras = cameras
        self.repo = SegmentRepository()

    # Prepare -----------------------------------------------------------------------------------------------

    def prepare(self, session: Session, actor: Actor, site_id: uuid.UUID, data: PrepareUpload) -> Prepared:
        now = self.clock.now()
        site = self.sites.get(session, site_id)
        sha256 = _parse_sha256(data.sha256)
        start, end = data.start.astimezone(UTC), data.end.astimezone(UTC)
        self._check_times(start, end, now, site.retention_days)
        if data.size > self.settings.max_segment_bytes:
            raise InvalidInput(
                f"a segment may be at most {self.settings.max_segment_bytes} bytes", code="segment_too_large"
            )
        camera = self.cameras.resolve_for_ingest(session, site_id, data.camera)

        for other in self.repo.overlapping(session, camera.id, start, end, now):
            same = (other.start_at, other.end_at, other.size, other.sha256) == (start, end, data.size, sha256)
            if not same:
                raise Conflict(
                    "another segment of this camera already holds part of that time",
                    code="segment_overlap",
                    details={
                        "segment_id": str(other.id),
                        "start": other.start_at.isoformat(),
                        "end": other.end_at.isoformat(),
                    },
                )
            if other.state == SegmentState.REGISTERED.value:
                return Prepared(other, None, created=False)
            return Prepared(other, self._data_key(other), created=False)

        segment_id = new_id()
        day = start.date()
        data_key = new_data_key()
        wrapped = wrap_data_key(self.keys.get_or_create(site_id, day), data_key)
        layout = stream.Layout(data.size)
        segment = Segment(
            id=segment_id,
            upload_id=new_id(),
            site_id=site_id,
            camera_id=camera.id,
            state=SegmentState.PENDING.value,
            start_at=start,
            end_at=end,
            size=data.size,
            sha256=sha256,
            container=data.container.value,
            codec=data.codec,
            chunk_size=layout.chunk_size,
            ciphertext_size=layout.ciphertext_size,
            ciphertext_md5=None,
            object_key=f"footage/{site_id}/{camera.id}/{day:%Y/%m/%d}/{segment_id}.cgv",
            key_day=day,
            wrapped_key=wrapped,
            agent_id=actor.principal_id,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.upload_ttl_seconds),
        )
        self.repo.add(session, segment)
        return Prepared(segment, data_key, created=True)

    def _check_times(self, start: datetime, end: datetime, now: datetime, retention_days: int) -> None:
        if end <= start:
            raise InvalidInput("end must be after start", code="invalid_time_range")
        if end - start > timedelta(seconds=self.settings.max_segment_seconds):
            raise InvalidInput(
                f"a segment may last at most {self.settings.max_segment_seconds} s", code="segment_too_long"
            )
        if end > now + timedelta(seconds=self.settings.clock_skew_seconds):
            raise InvalidInput(
                "the segment's times lie in the future (check the NVR's clock)", code="time_in_future"
            )
        if end <= now - timedelta(days=retention_days):
            raise InvalidInput(
                f"the footage is already older than the site's retention period ({retention_days} days) "
                "and would have to be erased at once; it is not stored",
                code="past_retention",
            )

    def _data_key(self, segment: Segment) -> bytes:
        assert segment.wrapped_key is not None  # pending uploads keep theirs
        return unwrap_data_key(self.keys.get(segment.site_id, segment.key_day), segment.wrapped_key)

    # Target ------------------------------------------------------------------------------------------------

    def target(self, session: Session, site_id: uuid.UUID, upload_id: uuid.UUID, content_md5: str) -> Target:
        segment = self._open_upload(session, site_id, upload_id)
        try:
            md5 = decode_content_md5(content_md5)
        except IntegrityError:
            raise InvalidInput(
                "content_md5 must be the base64 of a 16-byte MD5 digest", code="invalid_content_md5"
            ) from None
        if segment.ciphertext_md5 is not None and segment.ciphertext_md5 != md5:
            raise Conflict(
                "this upload's content_md5 was already given and differs; prepare a new upload",
                code="content_md5_changed",
            )
        segment.ciphertext_md5 = md5
        session.flush()
        if not self.storage.supports_presign:
            return Target(
                "PUT",
                f"/v1/sites/{site_id}/uploads/{upload_id}/content",
                {"Content-MD5": content_md5, "Content-Type": "application/octet-stream"},
                segment.expires_at,
            )
        seconds = self.settings.presign_seconds
        presigned = self.storage.presigned_put(
            segment.object_key, expires=timedelta(seconds=seconds), content_md5=content_md5
        )
        return Target(
            "PUT", presigned.url, dict(presigned.headers), self.clock.now() + timedelta(seconds=seconds)
        )

    def _open_upload(self, session: Session, site_id: uuid.UUID, upload_id: uuid.UUID) -> Segment:
        segment = self._find(session, site_id, upload_id)
        error = self._unusable(segment)
        if error is not None:
            raise error
        return segment

    def _find(self, session: Session, site_id: uuid.UUID, upload_id: uuid.UUID) -> Segment:
        segment = self.repo.by_upload(session, upload_id)
        if segment is None or segment.site_id != site_id:
            raise NotFound("no such upload at this site", code="upload_not_found")
        return segment

    def _unusable(self, segment: Segment) -> AppError | None:
        if segment.state == SegmentState.REGISTERED.value:
            return Conflict("this upload is complete; its segment is registered", code="upload_completed")
        if segment.state == SegmentState.QUARANTINED.value:
            return _quarantined(segment)
        if segment.state == SegmentState.EXPIRED.value or segment.expires_at <= self.clock.now():
            return UploadGone("the upload expired before it was completed; prepare it again")
        return None

    # Receive (local backend) -----------------------------------------------------------------------------

    def receive(
        self,
        db: Database,
        site_id: uuid.UUID,
        upload_id: uuid.UUID,
        chunks: Iterable[bytes],
        *,
        length: int | None,
        content_md5: str | None,
    ) -> None:
        """Store an upload's bytes sent to the service itself. No transaction is held while the bytes flow."""
        if self.storage.supports_presign:
            raise NotFound("this store takes uploads directly; ask for a target", code="use_presigned_url")
        with db.transaction() as session:
            segment = self._open_upload(session, site_id, upload_id)
            if segment.ciphertext_md5 is None:
                raise Conflict("ask for the upload's target first", code="upload_not_targeted")
            expected_md5 = base64.b64encode(segment.ciphertext_md5).decode()
            key, size = segment.object_key, segment.ciphertext_size
        if content_md5 != expected_md5:
            raise InvalidInput(
                "Content-MD5 differs from the one given for this upload", code="digest_mismatch"
            )
        if length != size:
            raise InvalidInput(f"the body must be {size} bytes", code="size_mismatch")
        try:
            self.storage.put(key, chunks, length=size, content_md5=expected_md5)
        except IntegrityError:
            raise InvalidInput(
                "the bytes received do not match their Content-MD5 or length; nothing was stored",
                code="digest_mismatch",
            ) from None
        with db.transaction() as session:
            segment = self._find(session, site_id, upload_id)
            if segment.state == SegmentState.PENDING.value:
                segment.stored_at = self.clock.now()

    # Complete ----------------------------------------------------------------------------------------------

    def complete(
        self, session: Session, actor: Actor, site_id: uuid.UUID, upload_id: uuid.UUID
    ) -> Segment | AppError:
        """The registered segment, or the error to answer with. A quarantine is returned, not raised: its
        state change and audit event must be committed although the caller is told it failed."""
        outcome = self.complete_many(session, actor, site_id, [upload_id])[0][1]
        if isinstance(outcome, AppError) and outcome.code != "upload_quarantined":
            raise outcome
        return outcome

    def complete_many(
        self, session: Session, actor: Actor, site_id: uuid.UUID, upload_ids: Sequence[uuid.UUID]
    ) -> list[tuple[uuid.UUID, Segment | AppError]]:
        found = {
            s.upload_id: s for s in self.repo.by_uploads(session, site_id, list(dict.fromkeys(upload_ids)))
        }
        outcome: dict[uuid.UUID, Segment | AppError] = {}
        to_check: list[Segment] = []
        for upload_id in dict.fromkeys(upload_ids):
            segment = found.get(upload_id)
            if segment is None:
                outcome[upload_id] = NotFound("no such upload at this site", code="upload_not_found")
            elif segment.state == SegmentState.REGISTERED.value:
                outcome[upload_id] = segment  # completing twice is harmless
            elif (error := self._unusable(segment)) is not None:
                outcome[upload_id] = error
            elif segment.ciphertext_md5 is None:
                outcome[upload_id] = Conflict("ask for the upload's target first", code="upload_not_targeted")
            else:
                to_check.append(segment)

        now = self.clock.now()
        events: list[EventValues] = []
        for segment, info in zip(to_check, self._stat_all([s.object_key for s in to_check]), strict=True):
            if isinstance(info, ObjectNotFound):
                outcome[segment.upload_id] = Conflict(
                    "the object has not arrived in storage; upload it, then complete", code="object_missing"
                )
                continue
            if isinstance(info, StorageError):
                outcome[segment.upload_id] = AppError(
                    "the object store could not be reached; try again", code="storage_unavailable", status=503
                )
                continue
            if info.etag is None and segment.stored_at is None:
                # A store that gives no MD5 (the local folder after a crash between writing the bytes and
                # recording that they were checked): read the object back.
                info = self._read_back(info)
            reason = _mismatch(segment, info)
            if reason is not None:
                self._quarantine(session, actor, segment, reason, info)
                outcome[segment.upload_id] = _quarantined(segment)
                continue
            segment.state = SegmentState.REGISTERED.value
            segment.registered_at = now
            outcome[segment.upload_id] = segment
            events.append(
                self.audit.event(
                    actor,
                    AuditAction.SEGMENT_REGISTER,
                    target_type="segment",
                    target_id=segment.id,
                    site_id=segment.site_id,
                    details={
                        "camera_id": str(segment.camera_id),
                        "start": segment.start_at.isoformat(),
                        "end": segment.end_at.isoformat(),
                        "size": segment.size,
                        "sha256": segment.sha256.hex(),
                    },
                )
            )
        session.flush()
        self.audit.record_many(session, events)
        return [(u, outcome[u]) for u in dict.fromkeys(upload_ids)]

    def _stat_all(self, keys: list[str]) -> list[ObjectInfo | StorageError]:
        """Size and ETag of each object. A batch of one camera-day's segments is read from one listing of their
        folder (a LIST returns up to 1,000 objects with their ETags: far cheaper than a HEAD each); anything a
        listing does not show is asked for on its own, so a missing object is always confirmed by a HEAD."""

        def stat(key: str) -> ObjectInfo | StorageError:
            try:
                return self.storage.stat(key)
            except StorageError as exc:
                return exc

        listed: dict[str, ObjectInfo] = {}
        folders = sorted({key.rsplit("/", 1)[0] + "/" for key in keys})
        if self.storage.supports_presign and len(keys) >= _LIST_AT_LEAST and len(folders) * 4 <= len(keys):
            wanted = set(keys)

            def listing(folder: str) -> list[ObjectInfo]:
                try:
                    return [info for info in self.storage.list(folder) if info.key in wanted]
                except StorageError:
                    return []  # each key is then asked for on its own

            with ThreadPoolExecutor(max_workers=min(_STAT_THREADS, len(folders))) as pool:
                for infos in pool.map(listing, folders):
                    listed.update((info.key, info) for info in infos)
        rest = [key for key in keys if key not in listed]
        if len(rest) <= 1 or not self.storage.supports_presign:
            found = {key: stat(key) for key in rest}
        else:
            with ThreadPoolExecutor(max_workers=min(_STAT_THREADS, len(rest))) as pool:
                found = dict(zip(rest, pool.map(stat, rest), strict=True))
        return [listed[key] if key in listed else found[key] for key in keys]

    def _read_back(self, info: ObjectInfo) -> ObjectInfo:
        digest = hashlib.md5(usedforsecurity=False)  # the same check as a store's Content-MD5
        with self.storage.open(info.key) as chunks:
            for chunk in chunks:
                digest.update(chunk)
        return ObjectInfo(info.key, info.size, digest.hexdigest(), info.last_modified)

    def _quarantine(
        self, session: Session, actor: Actor, segment: Segment, reason: str, info: ObjectInfo
    ) -> None:
        segment.state = SegmentState.QUARANTINED.value
        segment.failure_code = reason
        segment.wrapped_key = None  # the data key is gone with it: the bytes can never be decrypted or served
        self.audit.record(
            session,
            actor,
            AuditAction.UPLOAD_QUARANTINE,
            target_type="segment",
            target_id=segment.id,
            site_id=segment.site_id,
            outcome=Outcome.FAILED,
            details={
                "reason": reason,
                "expected_size": segment.ciphertext_size,
                "stored_size": info.size,
                "sha256": segment.sha256.hex(),
            },
        )

    # Cleanup job -------------------------------------------------------------------------------------------

    def expire_and_clean(self, session: Session, batch: int = 500) -> dict[str, int]:
        """Expire uploads past their deadline; delete the objects of expired and quarantined ones.

        Idempotent: a crash after the deletes but before the commit only means the next run deletes again (an
        absent object is not a failure)."""
        now = self.clock.now()
        expired = self.repo.mark_expired(session, now, batch)
        late_put = now - timedelta(seconds=self.settings.presign_seconds)
        doomed = [(s.id, s.object_key) for s in self.repo.objects_to_delete(session, late_put, batch)]
        failed = set(self.storage.delete_many([key for _, key in doomed])) if doomed else set()
        done = [i for i, key in doomed if key not in failed]
        self.repo.mark_objects_deleted(session, done, now)
        return {
            "expired": expired,
            "objects_deleted": len(done),
            "delete_failures": len(failed),
            "more": int(expired >= batch or len(doomed) >= batch),
        }


def _parse_sha256(value: str) -> bytes:
    text = value.strip().lower()
    if not _SHA256.fullmatch(text):
        raise InvalidInput("sha256 must be 64 hexadecimal digits", code="invalid_sha256")
    return bytes.fromhex(text)


def _mismatch(segment: Segment, info: ObjectInfo) -> str | None:
    if info.size != segment.ciphertext_size:
        return "size_mismatch"
    if segment.stored_at is not None:
        return None  # the service received these bytes itself and checked length and MD5 while writing
    assert segment.ciphertext_md5 is not None
    if (info.etag or "").lower() != segment.ciphertext_md5.hex():
        return "digest_mismatch"
    return None


def _quarantined(segment: Segment) -> AppError:
    return AppError(
        "the stored object did not match what was declared; the upload is quarantined (never registered). "
        "Prepare the segment again.",
        code="upload_quarantined",
        status=422,
        details={"reason": segment.failure_code},
    )
