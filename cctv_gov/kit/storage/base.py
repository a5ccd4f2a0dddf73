"""The object store interface every backend implements, its errors, and the pieces backends share."""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol, runtime_checkable

CHUNK_SIZE = 64 * 1024
"""Reads are streamed in chunks of this size; a put reads its source in chunks of this size."""

MAX_PRESIGN_EXPIRY = timedelta(days=7)


class StorageError(Exception):
    """Any failure of the object store: the base of every error raised here."""


class InvalidObjectKey(StorageError):
    """The key was refused before any I/O (see ``keys.validate_key``), or it leads outside the store."""


class ObjectNotFound(StorageError):
    """No object under that key."""


class IntegrityError(StorageError):
    """The bytes did not match the declared Content-MD5 or length; no object was left under the key."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


@dataclass(frozen=True)
class PresignedRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    """Headers the client must send exactly as given: they are bound into the signature."""


@runtime_checkable
class ObjectStore(Protocol):
    backend_name: str
    supports_presign: bool
    supports_legal_hold: bool
    """Whether the backend can make the store itself refuse to delete an object (an S3 Object Lock legal
    hold). False: ``set_legal_hold`` does nothing and ``legal_hold`` is always False, so held footage is
    protected by the service alone. True (S3): it needs a bucket created with Object Lock (see
    ``s3_admin.setup_footage_bucket``); on a bucket without, ``set_legal_hold`` raises StorageError."""

    def put(
        self,
        key: str,
        data: BinaryIO | Iterable[bytes],
        *,
        length: int | None = None,
        content_md5: str | None = None,
    ) -> ObjectInfo:
        """Store ``data`` under ``key``, streaming.

        ``content_md5`` is the base64 of the MD5 digest of the whole object and ``length`` its size; when
        either does not match the bytes, IntegrityError is raised and no object is left under the key.
        """
        ...

    def open(self, key: str, *, offset: int = 0, length: int | None = None) -> ObjectReader:
        """Stream the object (or ``length`` bytes from ``offset``) in chunks of at most CHUNK_SIZE.

        ObjectNotFound is raised by the call itself, not on the first iteration. The returned iterator has
        a ``close()``; use it (or exhaust the iterator) so the file or connection is released promptly.
        """
        ...

    def stat(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def delete_many(self, keys: Iterable[str]) -> builtins.list[str]:
        """Erase the keys for good; return those that could not be erased. An absent key is not a failure.

        This is the delete the purge calls. On a versioned S3 bucket a plain delete only adds a delete
        marker and keeps the bytes as a noncurrent version, so every version of each key (and every delete
        marker) is deleted by its version id. A version the store refuses to delete (one under legal hold)
        does not raise: its key is returned, it stays readable, and no delete marker is put over it.
        Every key is validated (InvalidObjectKey) before anything is deleted.
        """
        ...

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put (``on``) or release the store's legal hold on ``key``: while held, the store itself refuses
        to delete it, even when the service asks (``delete_many`` reports it as failed).

        Applies to every stored version of the key (normally one: footage is written once), so a hold also
        reaches bytes a delete marker hides, and releasing it works after the lifecycle put a marker on top.
        ObjectNotFound if there is no such object. A no-op where ``supports_legal_hold`` is False.
        """
        ...

    def legal_hold(self, key: str) -> bool:
        """Whether the store holds ``key``: every stored version of it is under legal hold.

        ObjectNotFound if there is no such object; always False where ``supports_legal_hold`` is False.
        """
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    def presigned_put(
        self, key: str, *, expires: timedelta, content_md5: str | None = None
    ) -> PresignedRequest: ...

    def presigned_get(self, key: str, *, expires: timedelta) -> PresignedRequest: ...

    def check(self) -> None:
        """Readiness probe: return if the store is usable, raise StorageError if not."""
        ...


def decode_content_md5(content_md5: str) -> bytes:
    """The 16-byte digest inside a Content-MD5 value (base64), or IntegrityError if it is not one."""
    try:
        digest = base64.b64decode(content_md5, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IntegrityError("content_md5 is not valid base64") from exc
    if len(digest) != 16:
        raise IntegrityError("content_md5 must be the base64 of a 16-byte MD5 digest")
    return digest


def check_range(offset: int, length: int | None) -> None:
    if offset < 0:
        raise ValueError("offset must not be negative")
    if length is not None and length < 0:
        raise ValueError("length must not be negative")


def check_length(length: int | None) -> None:
    if length is not None and length < 0:
        raise ValueError("length must not be negative")


def check_expiry(expires: timedelta) -> int:
    seconds = int(expires.total_seconds())
    if seconds < 1 or expires > MAX_PRESIGN_EXPIRY:
        raise ValueError("expires must be between 1 second and 7 days")
    return seconds


def iter_chunks(data: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    """The source of a put as a stream of non-empty chunks, never reading it whole."""
    read = getattr(data, "read", None)
    if callable(read):
        while True:
            chunk = read(CHUNK_SIZE)
            if not chunk:
                return
            yield _as_bytes(chunk)
    else:
        for chunk in data:
            if chunk:
                yield _as_bytes(chunk)


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(f"a put source must produce bytes, not {type(chunk).__name__}")


class ObjectReader(Iterator[bytes]):
    """The iterator ``open`` returns: yields chunks, and releases its file or connection when exhausted,
    on error, on ``close()``, on leaving a ``with`` block, or at the latest when garbage collected."""

    def __init__(self, chunks: Iterator[bytes], on_close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> ObjectReader:
        return self

    def __next__(self) -> bytes:
        if self._on_close is None:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def empty_reader() -> ObjectReader:
    return ObjectReader(iter(()), lambda: None)
