"""Objects as files under one root directory: the embedded development mode and single-host installs.

A put writes a temporary file next to the final one, fsyncs it, renames it over the key and fsyncs the
directory, so a crash leaves either the old object, the new one, or no object, never a part of one.
Temporary files start with ``.``, which no key segment may, so they are never listed or read as objects.

A file system has no legal holds, versions or lifecycle: ``supports_legal_hold`` is False, ``set_legal_hold``
does nothing (held footage is protected by the service alone), and a delete removes the only copy.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import stat as stat_module
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from cctv_gov.kit.storage.base import (
    CHUNK_SIZE,
    IntegrityError,
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PresignedRequest,
    StorageError,
    check_length,
    check_range,
    decode_content_md5,
    empty_reader,
    iter_chunks,
)
from cctv_gov.kit.storage.keys import validate_key, validate_prefix

_TEMP_PREFIX = ".tmp-"


class LocalObjectStore:
    backend_name = "local"
    supports_presign = False
    supports_legal_hold = False

    def __init__(self, root: Path) -> None:
        # Resolved once, so a root reached through a symlink (a mount point, say) is fine, while a symlink
        # *inside* the root that leads out of it is refused for every key (see _path).
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # ------------------------------------------------------------------ helpers

    def _path(self, key: str) -> Path:
        """The file for an already validated key, refused if symlinks inside the root lead out of it."""
        candidate = self.root.joinpath(*key.split("/"))
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.root) or resolved == self.root:
            raise InvalidObjectKey(f"object key {key!r} leads outside the store root")
        return resolved

    def _make_parents(self, directory: Path) -> None:
        missing: list[Path] = []
        current = directory
        while current != self.root and not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                if not path.is_dir():
                    raise StorageError(f"{path.relative_to(self.root)} exists and is not a prefix") from None
                continue
            _fsync_directory(path.parent)

    def _open_temp(self, directory: Path) -> tuple[int, str]:
        # delete_many prunes empty directories; one may vanish between mkdir and mkstemp, so try again.
        for _ in range(5):
            self._make_parents(directory)
            try:
                return tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=directory)
            except FileNotFoundError:
                continue
        raise StorageError(f"could not create a temporary file in {directory}")

    def _info(self, key: str, st: os.stat_result, etag: str | None = None) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=etag,
            last_modified=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        )

    # ------------------------------------------------------------------ the interface

    def put(
        self,
        key: str,
        data: BinaryIO | Iterable[bytes],
        *,
        length: int | None = None,
        content_md5: str | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        check_length(length)
        expected_md5 = decode_content_md5(content_md5) if content_md5 is not None else None
        if not self.root.is_dir():
            raise StorageError(f"store root {self.root} does not exist")
        path = self._path(key)
        fd, temp_name = self._open_temp(path.parent)
        temp = Path(temp_name)
        try:
            digest = hashlib.md5(usedforsecurity=False)
            size = 0
            with os.fdopen(fd, "wb") as file:
                for chunk in iter_chunks(data):
                    size += len(chunk)
                    if length is not None and size > length:
                        raise IntegrityError(f"more than the declared {length} bytes for {key!r}")
                    digest.update(chunk)
                    try:
                        file.write(chunk)
                    except OSError as exc:
                        raise StorageError(f"writing {key!r}: {exc}") from exc
                try:
                    file.flush()
                    os.fsync(file.fileno())
                except OSError as exc:
                    raise StorageError(f"writing {key!r}: {exc}") from exc
            if length is not None and size != length:
                raise IntegrityError(f"got {size} bytes for {key!r}, declared {length}")
            if expected_md5 is not None and digest.digest() != expected_md5:
                raise IntegrityError(f"Content-MD5 does not match the bytes received for {key!r}")
            # Checked again right before the rename: a symlink planted meanwhile must not be followed.
            if self._path(key) != path:
                raise InvalidObjectKey(f"object key {key!r} changed underneath the store")
            try:
                temp.replace(path)
            except IsADirectoryError as exc:
                raise StorageError(f"{key!r} is a prefix of other objects") from exc
            except OSError as exc:
                raise StorageError(f"storing {key!r}: {exc}") from exc
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        _fsync_directory(path.parent)
        return self._info(key, path.stat(), etag=digest.hexdigest())

    def open(self, key: str, *, offset: int = 0, length: int | None = None) -> ObjectReader:
        validate_key(key)
        check_range(offset, length)
        path = self._path(key)
        try:
            file = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"reading {key!r}: {exc}") from exc
        if not stat_module.S_ISREG(os.fstat(file.fileno()).st_mode):
            file.close()
            raise ObjectNotFound(key)
        if length == 0:
            file.close()
            return empty_reader()
        return ObjectReader(_read_chunks(file, key, offset, length), file.close)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(f"stat {key!r}: {exc}") from exc
        if not stat_module.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return self._info(key, st)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete_many(self, keys: Iterable[str]) -> builtins.list[str]:
        keys = [validate_key(key) for key in keys]
        failed: list[str] = []
        for key in keys:
            try:
                path = self._path(key)
                path.unlink()
            except FileNotFoundError:
                continue
            except (OSError, InvalidObjectKey):
                failed.append(key)
                continue
            self._prune(path.parent)
        return failed

    def set_legal_hold(self, key: str, on: bool) -> None:
        """Nothing to set: files cannot refuse their own deletion (``supports_legal_hold`` is False)."""
        self.stat(key)

    def legal_hold(self, key: str) -> bool:
        self.stat(key)
        return False

    def _prune(self, directory: Path) -> None:
        """Remove directories left empty, up to (not including) the root."""
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix names completely, then filter by the rest.
        head, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*head.split("/")) if head else self.root
        if start != self.root:
            try:
                if self._path(head) != start:
                    return
            except InvalidObjectKey:
                return
        yield from self._walk(start, head + "/" if head else "", prefix)

    def _walk(self, directory: Path, key_prefix: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = [entry for entry in scan if not entry.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"listing {key_prefix or '/'}: {exc}") from exc
        # Sorting a directory as "name/" makes the recursive walk yield keys in plain string order, the
        # order S3 lists in: everything under "a" sorts where "a/" would.
        walk = []
        for entry in entries:
            if entry.is_symlink():
                continue  # never followed: it could lead out of the root or loop
            if entry.is_dir(follow_symlinks=False):
                walk.append((entry.name + "/", entry))
            elif entry.is_file(follow_symlinks=False):
                walk.append((entry.name, entry))
        walk.sort(key=lambda item: item[0])
        for name, entry in walk:
            key = key_prefix + name
            if name.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif key.startswith(prefix):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while listing
                yield self._info(key, st)

    def presigned_put(
        self, key: str, *, expires: timedelta, content_md5: str | None = None
    ) -> PresignedRequest:
        raise StorageError("presigned URLs are not supported by the local backend")

    def presigned_get(self, key: str, *, expires: timedelta) -> PresignedRequest:
        raise StorageError("presigned URLs are not supported by the local backend")

    def check(self) -> None:
        if not self.root.is_dir():
            raise StorageError(f"store root {self.root} does not exist or is not a directory")
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"store root {self.root} is not writable")

    def ensure_root(self) -> None:
        """Create the root directory if absent (the counterpart of S3ObjectStore.ensure_bucket)."""
        self.root.mkdir(parents=True, exist_ok=True)


def _read_chunks(file: BinaryIO, key: str, offset: int, length: int | None) -> Iterator[bytes]:
    remaining = length
    try:
        if offset:
            file.seek(offset)
        while remaining is None or remaining > 0:
            chunk = file.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
    except OSError as exc:
        raise StorageError(f"reading {key!r}: {exc}") from exc


def _fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
