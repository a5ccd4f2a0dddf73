"""cgv-stream-1, the agent's side: hash a segment file and encrypt it, streaming.

The format (docs/ingest-protocol.md)::

    header  = b"CGVSTRM1" | chunk_size (u32, big-endian) | 4 zero bytes | segment id (16 bytes)
    chunk_i = AES-256-GCM(data_key, nonce_i, plaintext_i, associated_data=header)   # ciphertext + 16-byte tag
    nonce_i = i as 11 bytes big-endian | 0x01 for the last chunk, 0x00 otherwise
    object  = header | chunk_0 | ... | chunk_{n-1}

Every chunk holds ``chunk_size`` plaintext bytes except the last (1..chunk_size; an empty file is one empty
last chunk), so ``n = max(1, ceil(size / chunk_size))`` and the object is ``32 + size + 16 * n`` bytes.

Encryption is deterministic for a given data key and segment id: the agent encrypts a file once to learn
the MD5 of the ciphertext, and again while uploading it, and both passes produce the same bytes. Neither
pass holds more than one chunk of the file (plus the chunk's ciphertext) in memory, whatever the file's
size, and nothing is written to disk.

Every pass over a file checks that the file is still the one that was queued: same size and modification
time before and after, and exactly ``size`` bytes to read. Otherwise it raises :class:`FileChanged`, and the
agent starts over for that file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import struct
import threading
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "cgv-stream-1"
MAGIC = b"CGVSTRM1"
HEADER_SIZE = 32
TAG_SIZE = 16
KEY_SIZE = 32
DEFAULT_CHUNK_SIZE = 64 * 1024
MIN_CHUNK_SIZE = 16
MAX_CHUNK_SIZE = 16 * 1024 * 1024
HASH_READ_SIZE = 1024 * 1024
"""How much of the file the plain SHA-256 pass reads at a time."""


class FileChanged(Exception):
    """The file is no longer the one that was queued: its size or modification time changed, or it is not
    a regular file any more. The agent starts over for it."""


class FileMissing(Exception):
    """The file is gone."""


class Stopped(Exception):
    """A pass was abandoned because the agent is stopping."""


class _Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What the agent recorded of a file when it queued it."""

    size: int
    mtime_ns: int


def header(segment_id: uuid.UUID, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    check_chunk_size(chunk_size)
    return MAGIC + struct.pack(">I", chunk_size) + bytes(4) + segment_id.bytes


def check_chunk_size(chunk_size: int) -> None:
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between {MIN_CHUNK_SIZE} bytes and 16 MiB")


def chunk_count(size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    if size < 0:
        raise ValueError("size must not be negative")
    return max(1, -(-size // chunk_size))


def ciphertext_size(size: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """The length of the cgv-stream-1 object for ``size`` bytes of plaintext."""
    return HEADER_SIZE + size + TAG_SIZE * chunk_count(size, chunk_size)


def nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(
    data_key: bytes,
    segment_id: uuid.UUID,
    pieces: Iterable[bytes],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Iterator[bytes]:
    """Encrypt plaintext given in pieces of any size: yields the header, then one sealed chunk at a time.

    At most one chunk plus one piece of plaintext is buffered.
    """
    if len(data_key) != KEY_SIZE:
        raise ValueError("a data key is 32 bytes")
    head = header(segment_id, chunk_size)
    aead = AESGCM(data_key)
    yield head
    index = 0
    pending = bytearray()
    for piece in pieces:
        pending += piece
        # Keep at least one byte back: only the end of the input tells which chunk is the last.
        while len(pending) > chunk_size:
            yield aead.encrypt(nonce(index, False), bytes(pending[:chunk_size]), head)
            del pending[:chunk_size]
            index += 1
    yield aead.encrypt(nonce(index, True), bytes(pending), head)


def hash_file(
    path: Path, expected: FileIdentity | None = None, *, read_size: int = HASH_READ_SIZE
) -> tuple[str, int]:
    """SHA-256 (lower-case hex) and size of a file, in one streaming pass.

    With ``expected``, the file must keep that size and modification time for the whole pass.
    """
    digest = hashlib.sha256()
    size = 0
    with _open_checked(path, expected) as handle:
        for piece in _read_pieces(handle, None if expected is None else expected.size, read_size):
            digest.update(piece)
            size += len(piece)
        _check_unchanged(handle, path, expected)
    return digest.hexdigest(), size


def encrypt_file(
    path: Path,
    expected: FileIdentity,
    data_key: bytes,
    segment_id: uuid.UUID,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    plaintext_hash: _Hasher | None = None,
    stop: threading.Event | None = None,
    on_plaintext: Callable[[int], None] | None = None,
) -> Generator[bytes, None, None]:
    """The cgv-stream-1 object of a file, one piece at a time (the header, then each sealed chunk).

    Exactly ``ciphertext_size(expected.size, chunk_size)`` bytes in all, or :class:`FileChanged` is raised
    (before the first byte when the file's size or modification time differ already, else at the point
    the difference shows). ``plaintext_hash`` is fed the plaintext as it is read; ``on_plaintext`` is told
    how many plaintext bytes each chunk held; when ``stop`` is set the pass raises :class:`Stopped`.
    """
    check_chunk_size(chunk_size)
    with _open_checked(path, expected) as handle:
        pieces = _read_pieces(handle, expected.size, chunk_size)

        def watched() -> Iterator[bytes]:
            for piece in pieces:
                if stop is not None and stop.is_set():
                    raise Stopped
                if plaintext_hash is not None:
                    plaintext_hash.update(piece)
                yield piece
            # The whole file was read: make sure it did not change meanwhile, before the last chunk is
            # sealed and the object can be complete.
            _check_unchanged(handle, path, expected)

        sealed_pieces = encrypt(data_key, segment_id, watched(), chunk_size)
        yield next(sealed_pieces)  # the header
        for sealed in sealed_pieces:
            yield sealed
            if on_plaintext is not None:
                on_plaintext(len(sealed) - TAG_SIZE)


def ciphertext_md5(
    path: Path,
    expected: FileIdentity,
    data_key: bytes,
    segment_id: uuid.UUID,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    stop: threading.Event | None = None,
) -> tuple[bytes, str]:
    """The MD5 digest of the file's ciphertext and the SHA-256 (hex) of its plaintext, in one pass."""
    md5 = hashlib.md5(usedforsecurity=False)  # S3's Content-MD5, an integrity check, not a security one
    sha256 = hashlib.sha256()
    for sealed in encrypt_file(
        path, expected, data_key, segment_id, chunk_size, plaintext_hash=sha256, stop=stop
    ):
        md5.update(sealed)
    return md5.digest(), sha256.hexdigest()


# -- reading files ---------------------------------------------------------------------------------------


def _open_checked(path: Path, expected: FileIdentity | None) -> io.FileIO:
    """Open a regular file for reading (never through a symbolic link), checking its identity."""
    # O_NONBLOCK so a FIFO put there cannot hang the agent before the regular-file check.
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileMissing(str(path)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileChanged(f"{path} is a symbolic link") from None
        raise
    handle = io.FileIO(fd, "rb", closefd=True)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileChanged(f"{path} is not a regular file")
        if expected is not None and (info.st_size, info.st_mtime_ns) != (expected.size, expected.mtime_ns):
            raise FileChanged(f"{path} changed since it was queued")
    except BaseException:
        handle.close()
        raise
    return handle


def _check_unchanged(handle: io.FileIO, path: Path, expected: FileIdentity | None) -> None:
    if expected is None:
        return
    info = os.fstat(handle.fileno())
    if (info.st_size, info.st_mtime_ns) != (expected.size, expected.mtime_ns):
        raise FileChanged(f"{path} changed while it was read")


def _read_pieces(handle: io.FileIO, size: int | None, piece_size: int) -> Iterator[bytes]:
    """The file's bytes in pieces of ``piece_size`` (the last may be shorter).

    With ``size``: exactly that many bytes, or FileChanged when the file ends early or goes on past it.
    """
    if size is None:
        while piece := _read_up_to(handle, piece_size):
            yield piece
        return
    remaining = size
    while remaining > 0:
        want = min(piece_size, remaining)
        piece = _read_up_to(handle, want)
        if len(piece) < want:
            raise FileChanged("the file is shorter than when it was queued")
        remaining -= want
        yield piece
    if _read_up_to(handle, 1):
        raise FileChanged("the file is longer than when it was queued")


def _read_up_to(handle: io.FileIO, want: int) -> bytes:
    """``want`` bytes, or fewer only at the end of the file."""
    parts: list[bytes] = []
    got = 0
    while got < want:
        piece = handle.read(want - got)
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)
