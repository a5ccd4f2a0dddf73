"""One queued file's way through the protocol, from ``discovered`` to ``registered``.

Each worker thread takes one spool row and carries it as far as it can go, committing each step to the
spool as it goes (docs/ingest-protocol.md has the four steps):

1. hash: SHA-256 and size of the file, one streaming pass;
2. prepare: the service reserves the upload and answers the upload id, segment id and data key;
3. MD5 of the ciphertext (encrypt, hash, discard), target (the URL to PUT to), PUT of the ciphertext
   (encrypted again: the same bytes);
4. complete: the service checks the stored object and registers the segment.

The data key lives in this module's local variables only, for the one pass that needs it. A row that
comes back in ``prepared`` state (after a failure or a restart) is prepared again, which gives the same
upload and key again (or says the segment is registered already).

Failures follow the protocol's table: a refusal that is about the file marks the row ``rejected``; an
expired or quarantined upload is prepared again; a missing object is PUT again; a body the store refuses
for its digest is PUT again, and after a few such refusals the file is hashed again; anything else (the
service or store down, 5xx, 429, no answer, or an error that is not about this file) keeps the row's
state, backs it off, and opens the circuit that holds the other uploads back.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from cctv_ingest import stream
from cctv_ingest.backoff import Backoff, Circuit, Clock, Random
from cctv_ingest.client import BodyReadError, ServiceClient, ServiceError
from cctv_ingest.scanner import SIDECAR_SUFFIX
from cctv_ingest.spool import Row, Spool, SpoolError, State

logger = logging.getLogger(__name__)

# Refusals about the file itself: keep the file, mark the row rejected, show it in status.
REJECT_CODES = frozenset(
    {
        "camera_not_found",
        "camera_disabled",
        "camera_other_site",
        "invalid_time_range",
        "segment_too_long",
        "past_retention",
        "segment_overlap",
    }
)
# At prepare, the service refusing the segment's fields (or its size) is about the file too.
PREPARE_REJECT_CODES = REJECT_CODES | {"invalid_input", "segment_too_large"}
# Start over with a fresh prepare.
REPREPARE_CODES = frozenset({"upload_expired", "upload_quarantined"})
# The object is not in the store: PUT again.
REPUT_CODES = frozenset({"object_missing"})
# The body did not match its Content-MD5 (S3 BadDigest, the service's digest_mismatch): PUT again.
DIGEST_CODES = frozenset({"BadDigest", "digest_mismatch", "size_mismatch"})
MAX_DIGEST_FAILURES = 3
# The service says "not yet": try again later, without holding other uploads back.
# (The protocol document says start_in_future; the service also answers time_in_future.)
LATER_CODES = frozenset({"start_in_future", "time_in_future"})
# Codes about the file on the NVR, recorded by the agent itself.
FILE_MISSING = "file_missing"
FILE_ERROR = "file_error"
_MAX_STEPS = 12
_T = TypeVar("_T")


class Outcome(StrEnum):
    REGISTERED = "registered"
    UPLOADED = "uploaded"  # waiting for a batch complete
    REJECTED = "rejected"
    DEFERRED = "deferred"
    REQUEUED = "requeued"  # the file changed: its row was dropped, the scanner queues it again
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class _Prepared:
    """The service's answer to prepare, with the data key (memory only)."""

    data_key: bytes
    segment_id: uuid.UUID
    chunk_size: int

    def __repr__(self) -> str:
        return f"_Prepared(segment_id={self.segment_id}, chunk_size={self.chunk_size}, data_key=<hidden>)"


class Pipeline:
    """The steps for one row at a time; shared by the worker threads (it keeps no per-row state)."""

    def __init__(
        self,
        spool: Spool,
        client: ServiceClient,
        site_id: str,
        *,
        delete_after_upload: bool,
        sidecar_cameras: Collection[str],
        backoff: Backoff,
        circuit: Circuit,
        clock: Clock,
        rand: Random,
        stop: threading.Event,
        complete_inline: bool = True,
        on_bytes: Callable[[int, int], None] | None = None,
        upload_slots: threading.Semaphore | None = None,
        cpu_slots: threading.Semaphore | None = None,
    ) -> None:
        self.spool = spool
        self.client = client
        self.site_id = site_id
        self.delete_after_upload = delete_after_upload
        self.sidecar_cameras = frozenset(sidecar_cameras)
        self.backoff = backoff
        self.circuit = circuit
        self.clock = clock
        self.rand = rand
        self.stop = stop
        self.complete_inline = complete_inline
        """False in backfill (--once): stop at ``uploaded`` and let the runner complete in batches."""
        self.upload_slots = upload_slots
        self.cpu_slots = cpu_slots
        """Bounds the whole-file passes (hashing, the MD5 of the ciphertext) to about one per CPU: a file
        is ready to upload sooner than if every worker hashed at once, so uploads start early and keep going."""
        """Bounds the PUTs in flight (``max_concurrent_uploads``) while more workers hash and prepare the next
        files, so the CPU work of one file overlaps the upload of another."""
        self.on_bytes = on_bytes
        """Told (row id, plaintext bytes sent) as a row's upload goes on, and (row id, -1) when the
        attempt ends."""

    # -- one row ---------------------------------------------------------------------------------------

    def process(self, row_id: int) -> Outcome:
        row = self.spool.find(row_id)
        if row is None:
            return Outcome.REQUEUED
        prepared: _Prepared | None = None
        step = "hash"
        try:
            for _ in range(_MAX_STEPS):
                if self.stop.is_set():
                    return Outcome.STOPPED
                if row.state is State.DISCOVERED:
                    step = "hash"
                    row = self._hash(row)
                elif row.state is State.HASHED or (row.state is State.PREPARED and prepared is None):
                    step = "prepare"
                    row, prepared = self._prepare(row)
                elif row.state is State.PREPARED and prepared is not None:
                    step = "upload"
                    row = self._upload(row, prepared)
                elif row.state is State.UPLOADED:
                    if not self.complete_inline:
                        return Outcome.UPLOADED
                    step = "complete"
                    row = self._complete(row)
                elif row.state in (State.REGISTERED, State.DELETED):
                    self.after_registration(row)
                    return Outcome.REGISTERED
                else:
                    return Outcome.REJECTED
            return self._defer(row, "internal_error", "too many steps in one attempt", service_trouble=False)
        except stream.FileMissing:
            self.circuit.probe_finished()
            self.spool.reject(
                row.id, FILE_MISSING, f"{row.path} is gone; it was never registered", self._now()
            )
            logger.warning("%s: the file is gone before its segment was registered", row.path)
            return Outcome.REJECTED
        except stream.FileChanged as exc:
            self.circuit.probe_finished()
            self.spool.forget(row.id)
            logger.info("%s: %s; it is queued again once it settles", row.path, exc)
            return Outcome.REQUEUED
        except stream.Stopped:
            self.circuit.probe_finished()
            return Outcome.STOPPED
        except BodyReadError as exc:
            self.circuit.probe_finished()
            return self._defer(row, FILE_ERROR, str(exc), service_trouble=False)
        except OSError as exc:
            self.circuit.probe_finished()
            return self._defer(
                row,
                FILE_ERROR,
                f"cannot read the file: {exc.strerror or type(exc).__name__}",
                service_trouble=False,
            )
        except ServiceError as exc:
            if self.stop.is_set():
                self.circuit.probe_finished()
                return Outcome.STOPPED  # most likely the agent cut the call short to stop: not a failure
            return self._service_failure(row, step, exc)
        finally:
            if self.on_bytes is not None:
                self.on_bytes(row_id, -1)  # done with this row: drop its partial count

    def _hash(self, row: Row) -> Row:
        with _slot(self.cpu_slots):
            sha256, _ = stream.hash_file(Path(row.path), _identity(row))
        row = self.spool.mark_hashed(row.id, sha256, self._now())
        twin = self.spool.registered_twin(row)
        if twin is not None:
            logger.info(
                "%s: same camera, start and content as the registered %s; not uploaded again",
                row.path,
                twin.path,
            )
            return self.spool.mark_registered(row.id, twin.segment_id, self._now())
        return row

    def _prepare(self, row: Row) -> tuple[Row, _Prepared | None]:
        _check_unchanged(row)  # cheap, and the service does not hear of a file that changed since hashing
        body: dict[str, object] = {
            "camera": row.camera,
            "start": row.start_utc,
            "end": row.end_utc,
            "size": row.size,
            "sha256": row.sha256,
            "container": row.container,
        }
        if row.codec:
            body["codec"] = row.codec
        answer = self.client.prepare_upload(self.site_id, body)
        self.circuit.success()
        if answer.get("state") == "registered":
            segment_id = answer.get("segment_id")
            logger.info("%s: the service has this segment registered already", row.path)
            registered = self.spool.mark_registered(
                row.id, segment_id if isinstance(segment_id, str) else None, self._now()
            )
            return registered, None
        prepared, upload_id, ciphertext_size = _read_prepare_answer(answer, row.size)
        row = self.spool.mark_prepared(
            row.id,
            upload_id=upload_id,
            segment_id=str(prepared.segment_id),
            chunk_size=prepared.chunk_size,
            ciphertext_size=ciphertext_size,
            now=self._now(),
        )
        return row, prepared

    def _upload(self, row: Row, prepared: _Prepared) -> Row:
        upload_id = _required(row.upload_id, row, "upload id")
        ciphertext_size = _required(row.ciphertext_size, row, "ciphertext size")
        path = Path(row.path)
        identity = _identity(row)
        if row.content_md5 is None:
            with _slot(self.cpu_slots):
                md5, sha256 = stream.ciphertext_md5(
                    path,
                    identity,
                    prepared.data_key,
                    prepared.segment_id,
                    prepared.chunk_size,
                    stop=self.stop,
                )
            if sha256 != row.sha256:
                raise stream.FileChanged("its content changed since it was hashed")
            row = self.spool.set_content_md5(row.id, base64.b64encode(md5).decode("ascii"), self._now())
        content_md5 = _required(row.content_md5, row, "content MD5")
        target = self.client.upload_target(self.site_id, upload_id, content_md5)
        self.circuit.success()
        method, url, headers = _read_target(target)
        row_id = row.id
        on_bytes = self.on_bytes

        def progress(count: int) -> None:
            if on_bytes is not None:
                on_bytes(row_id, count)

        body = stream.encrypt_file(
            path,
            identity,
            prepared.data_key,
            prepared.segment_id,
            prepared.chunk_size,
            stop=self.stop,
            on_plaintext=progress,
        )
        slots = self.upload_slots
        if slots is not None:
            while not slots.acquire(timeout=0.5):
                if self.stop.is_set():
                    body.close()
                    raise stream.Stopped
        try:
            self.client.put_object(method, url, headers, body, ciphertext_size)
        finally:
            body.close()
            if slots is not None:
                slots.release()
        self.circuit.success()
        return self.spool.mark_uploaded(row.id, self._now())

    def _complete(self, row: Row) -> Row:
        answer = self.client.complete_upload(self.site_id, _required(row.upload_id, row, "upload id"))
        self.circuit.success()
        return self._registered(row, answer)

    def _registered(self, row: Row, segment: Mapping[str, Any]) -> Row:
        segment_id = segment.get("id") or segment.get("segment_id")
        row = self.spool.mark_registered(
            row.id, segment_id if isinstance(segment_id, str) else None, self._now()
        )
        logger.info(
            "registered %s %s..%s (%d bytes) as segment %s: %s",
            row.camera,
            row.start_utc,
            row.end_utc,
            row.size,
            row.segment_id,
            row.path,
        )
        return row

    def after_registration(self, row: Row) -> None:
        """Delete the local file (and its sidecar) when configured, once its segment is registered.

        Only the very file that was uploaded: same size and modification time. A failure to delete is
        recorded on the row and logged; the segment stays registered.
        """
        if not self.delete_after_upload or row.state is not State.REGISTERED:
            return
        path = Path(row.path)
        now = self._now()
        try:
            info = path.lstat()
        except FileNotFoundError:
            self.spool.mark_deleted(row.id, now)
            return
        except OSError as exc:
            self.spool.note(row.id, "delete_failed", f"cannot check the file: {exc.strerror}", now)
            return
        if (info.st_size, info.st_mtime_ns) != (row.size, row.mtime_ns):
            self.spool.note(row.id, "delete_skipped", "the file changed after its upload; it was kept", now)
            logger.warning("%s changed after its segment was registered; not deleting it", path)
            return
        try:
            path.unlink()
            if row.camera in self.sidecar_cameras:
                Path(row.path + SIDECAR_SUFFIX).unlink(missing_ok=True)
        except OSError as exc:
            self.spool.note(row.id, "delete_failed", f"cannot delete the file: {exc.strerror}", now)
            logger.warning("%s: cannot delete after upload: %s", path, exc.strerror)
            return
        self.spool.mark_deleted(row.id, now)

    # -- many rows at once (backfill) ----------------------------------------------------------------------

    def complete_batch(self, rows: Sequence[Row]) -> dict[int, Outcome]:
        """Complete many uploaded rows with one call. Raises ServiceError when the call itself fails
        (after recording it on the rows and the circuit), so the caller can fall back to single calls."""
        by_upload = {row.upload_id: row for row in rows if row.upload_id is not None}
        try:
            answer = self.client.batch_complete(self.site_id, list(by_upload))
        except ServiceError as exc:
            if exc.status in (404, 405):
                raise  # this service has no batch endpoint; the caller completes one by one
            self.circuit.failure(exc.retry_after)
            logger.warning("batch-complete of %d uploads failed: %s", len(rows), exc)
            for each in rows:
                self._defer(each, exc.code, str(exc), service_trouble=False, log=logging.DEBUG)
            raise
        self.circuit.success()
        outcomes: dict[int, Outcome] = {}
        results: object = answer.get("results")
        items: list[object] = list(results) if isinstance(results, list) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            upload_id = item.get("upload_id")
            found = by_upload.pop(upload_id, None) if isinstance(upload_id, str) else None
            if found is None:
                continue
            row = found
            segment = item.get("segment")
            if item.get("ok") is True and isinstance(segment, dict):
                registered = self._registered(row, segment)
                self.after_registration(registered)
                outcomes[row.id] = Outcome.REGISTERED
                continue
            error = item.get("error")
            code: object = error.get("code") if isinstance(error, dict) else None
            message: object = error.get("message") if isinstance(error, dict) else None
            failure = ServiceError(
                None,
                code if isinstance(code, str) and code else "unexpected_response",
                message if isinstance(message, str) else "batch-complete refused this upload",
                "-",
                retryable=False,
            )
            outcomes[row.id] = self._service_failure(row, "complete", failure, in_batch=True)
        for missing in by_upload.values():
            outcomes[missing.id] = self._defer(
                missing,
                "unexpected_response",
                "batch-complete gave no result for this upload",
                service_trouble=False,
            )
        return outcomes

    # -- failures ----------------------------------------------------------------------------------------

    def _service_failure(self, row: Row, step: str, exc: ServiceError, *, in_batch: bool = False) -> Outcome:
        code = exc.code
        current = self.spool.find(row.id)
        if current is None:
            return Outcome.REQUEUED
        row = current
        now = self._now()
        rejects = PREPARE_REJECT_CODES if step == "prepare" else REJECT_CODES
        if code in rejects:
            self.circuit.success()  # the service answered
            self.spool.reject(row.id, code, exc.message, now)
            logger.warning("%s: rejected by the service at %s: %s", row.path, step, exc)
            return Outcome.REJECTED
        if code in REPREPARE_CODES and row.state in (State.PREPARED, State.UPLOADED):
            self.circuit.success()
            row = self.spool.back_to_hashed(row.id, now)
            return self._defer(row, code, exc.message, service_trouble=False, log=logging.INFO)
        if code in REPUT_CODES and row.state is State.UPLOADED:
            self.circuit.success()
            row = self.spool.back_to_prepared(row.id, now)
            return self._defer(row, code, exc.message, service_trouble=False, log=logging.INFO)
        if step == "upload" and code in DIGEST_CODES:
            self.circuit.success()
            row = self._defer_row(row, code, exc.message, None, digest=True)
            if row.digest_failures >= MAX_DIGEST_FAILURES:
                logger.warning(
                    "%s: the upload's digest was refused %d times; hashing the file again",
                    row.path,
                    row.digest_failures,
                )
                self.spool.back_to_discovered(row.id, self._now())
            else:
                logger.info("%s: the upload's digest was refused (%s); uploading again", row.path, code)
            return Outcome.DEFERRED
        if code in LATER_CODES:
            self.circuit.success()
            return self._defer(row, code, exc.message, service_trouble=False, log=logging.INFO)
        if (
            not exc.retryable
            and step in ("upload", "complete")
            and exc.status in (404, 409, 410)
            and not (step == "upload" and code.startswith(("NoSuch", "store_http_")))
            and row.state in (State.PREPARED, State.UPLOADED)
        ):
            # The service no longer knows this upload in this form: prepare again, which tells the truth
            # (the same upload, a fresh one, or the segment registered already).
            self.circuit.success()
            row = self.spool.back_to_hashed(row.id, now)
            return self._defer(row, code, exc.message, service_trouble=False, log=logging.INFO)
        if in_batch:
            return self._defer(row, code, exc.message, service_trouble=False)
        return self._defer(row, code, str(exc), service_trouble=True, retry_after=exc.retry_after)

    def _defer(
        self,
        row: Row,
        code: str,
        message: str,
        *,
        service_trouble: bool,
        retry_after: float | None = None,
        log: int = logging.WARNING,
    ) -> Outcome:
        if service_trouble:
            was_open = self.circuit.failures > 0
            self.circuit.failure(retry_after)
            if was_open:
                log = logging.DEBUG  # the first failure was logged; the rest would only repeat it
        else:
            self.circuit.probe_finished()
        row = self._defer_row(row, code, message, retry_after)
        logger.log(
            log,
            "%s: %s; trying again in %.1f s (attempt %d)",
            row.path,
            message,
            max(0.0, row.next_attempt_at - self._now()),
            row.attempts,
        )
        return Outcome.DEFERRED

    def _defer_row(
        self, row: Row, code: str, message: str, retry_after: float | None, *, digest: bool = False
    ) -> Row:
        now = self._now()
        delay = self.backoff.delay(row.attempts + 1, self.rand, retry_after)
        return self.spool.defer(row.id, code, message, now + delay, now, digest=digest)

    def _now(self) -> float:
        return self.clock.time()


def _required(value: _T | None, row: Row, what: str) -> _T:
    """A field the row's state guarantees (the spool's CHECK constraints do too)."""
    if value is None:
        raise SpoolError(f"spool row {row.id} is {row.state} but has no {what}")
    return value


def _check_unchanged(row: Row) -> None:
    try:
        info = os.lstat(row.path)
    except FileNotFoundError:
        raise stream.FileMissing(row.path) from None
    if (info.st_size, info.st_mtime_ns) != (row.size, row.mtime_ns):
        raise stream.FileChanged("it changed since it was queued")


def _identity(row: Row) -> stream.FileIdentity:
    return stream.FileIdentity(row.size, row.mtime_ns)


def _bad_answer(message: str) -> ServiceError:
    return ServiceError(None, "unexpected_response", message, "-", retryable=False)


def _read_prepare_answer(answer: Mapping[str, Any], size: int) -> tuple[_Prepared, str, int]:
    upload_id = answer.get("upload_id")
    segment_id = answer.get("segment_id")
    key_text = answer.get("data_key")
    stream_info = answer.get("stream")
    ciphertext_size = answer.get("ciphertext_size")
    if not isinstance(upload_id, str) or not upload_id:
        raise _bad_answer("prepare gave no upload id")
    try:
        segment_uuid = uuid.UUID(str(segment_id))
    except ValueError:
        raise _bad_answer("prepare gave no segment id (a UUID)") from None
    if not isinstance(stream_info, dict) or stream_info.get("format") != stream.FORMAT:
        raise _bad_answer(f"prepare asked for a stream format other than {stream.FORMAT}")
    chunk_size = stream_info.get("chunk_size")
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or not stream.MIN_CHUNK_SIZE <= chunk_size <= stream.MAX_CHUNK_SIZE
    ):
        raise _bad_answer("prepare gave an unusable chunk size")
    try:
        data_key = base64.b64decode(str(key_text), validate=True)
    except (binascii.Error, ValueError):
        data_key = b""
    if not isinstance(key_text, str) or len(data_key) != stream.KEY_SIZE:
        raise _bad_answer("prepare gave no usable data key")
    expected = stream.ciphertext_size(size, chunk_size)
    if ciphertext_size != expected:
        raise _bad_answer(f"prepare expects {ciphertext_size} bytes of ciphertext; the file makes {expected}")
    return _Prepared(data_key, segment_uuid, chunk_size), upload_id, expected


def _read_target(answer: Mapping[str, Any]) -> tuple[str, str, dict[str, str]]:
    method = answer.get("method", "PUT")
    url = answer.get("url")
    headers = answer.get("headers") or {}
    if not isinstance(method, str) or not isinstance(url, str) or not url:
        raise _bad_answer("target gave no method and URL")
    if not isinstance(headers, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in headers.items()
    ):
        raise _bad_answer("target gave headers that are not strings")
    return method, url, dict(headers)


@contextmanager
def _slot(semaphore: threading.Semaphore | None) -> Iterator[None]:
    if semaphore is None:
        yield
        return
    with semaphore:
        yield
