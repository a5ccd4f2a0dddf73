"""cgv-stream-1: footage encrypted with AES-256-GCM in chunks, as age's STREAM construction does.

An object is a 32-byte header followed by the chunks::

    header  = b"CGVSTRM1" | chunk_size (u32, big-endian) | 4 zero bytes | segment id (16 bytes)
    chunk_i = AES-256-GCM(data_key, nonce_i, plaintext_i, associated_data=header)   # ciphertext + 16-byte tag
    nonce_i = i as 11 bytes big-endian | 0x01 for the last chunk, 0x00 otherwise

Every chunk holds exactly ``chunk_size`` plaintext bytes except the last, which holds 1..chunk_size (0 only
for an empty file, which is one empty last chunk). The data key is fresh for each segment and the counter
never repeats inside one object, so no (key, nonce) pair is ever used twice. The header is authenticated with
every chunk, so a chunk cannot be moved to another segment; the counter stops reordering and the last-chunk
flag stops truncation or extension.

The agent (``ingest/``) has its own encryptor of this format, written against this description; the tests
check the two agree byte for byte.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = "cgv-stream-1"
MAGIC = b"CGVSTRM1"
HEADER_SIZE = 32
TAG_SIZE = 16
DEFAULT_CHUNK_SIZE = 64 * 1024
KEY_SIZE = 32


class StreamError(Exception):
    """The object is not a valid cgv-stream-1 ciphertext for this key (tampered, truncated, wrong key)."""


def header(segment_id: uuid.UUID, chunk_size: int = DEFAULT_CHUNK_SIZE) -> bytes:
    if not 16 <= chunk_size <= 16 * 1024 * 1024:
        raise ValueError("chunk_size must be between 16 bytes and 16 MiB")
    return MAGIC + struct.pack(">I", chunk_size) + bytes(4) + segment_id.bytes


@dataclass(frozen=True)
class Layout:
    """Where each plaintext chunk lies in the ciphertext object."""

    plaintext_size: int
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @property
    def chunks(self) -> int:
        return max(1, -(-self.plaintext_size // self.chunk_size))

    @property
    def ciphertext_size(self) -> int:
        return HEADER_SIZE + self.plaintext_size + TAG_SIZE * self.chunks

    def chunk_offset(self, index: int) -> int:
        return HEADER_SIZE + index * (self.chunk_size + TAG_SIZE)

    def chunk_plain_size(self, index: int) -> int:
        if index < self.chunks - 1:
            return self.chunk_size
        return self.plaintext_size - index * self.chunk_size

    def chunk_range(self, first: int, last: int) -> tuple[int, int]:
        """(offset, length) of ciphertext chunks first..last inclusive."""
        start = self.chunk_offset(first)
        end = self.chunk_offset(last) + self.chunk_plain_size(last) + TAG_SIZE
        return start, end - start


def nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt(
    data_key: bytes, segment_id: uuid.UUID, chunks: Iterable[bytes], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Encrypt a plaintext stream (any chunking) into cgv-stream-1 pieces: the header, then one per chunk."""
    head = header(segment_id, chunk_size)
    aead = AESGCM(data_key)
    yield head
    index = 0
    pending = b""
    for piece in chunks:
        pending += piece
        # Keep at least one byte back: only the end of input tells which chunk is the last.
        while len(pending) > chunk_size:
            yield aead.encrypt(nonce(index, False), pending[:chunk_size], head)
            pending = pending[chunk_size:]
            index += 1
    yield aead.encrypt(nonce(index, True), pending, head)


class Decryptor:
    """Decrypts chunks of one object whose header has been checked against the expected segment and size."""

    def __init__(self, data_key: bytes, segment_id: uuid.UUID, layout: Layout) -> None:
        if len(data_key) != KEY_SIZE:
            raise StreamError("a data key is 32 bytes")
        self.head = header(segment_id, layout.chunk_size)
        self.layout = layout
        self._aead = AESGCM(data_key)

    def check_header(self, head: bytes) -> None:
        if head != self.head:
            raise StreamError("the object's header does not belong to this segment")

    def chunk(self, index: int, sealed: bytes) -> bytes:
        last = index == self.layout.chunks - 1
        if len(sealed) != self.layout.chunk_plain_size(index) + TAG_SIZE:
            raise StreamError(f"chunk {index} has the wrong length")
        try:
            return self._aead.decrypt(nonce(index, last), sealed, self.head)
        except InvalidTag:
            raise StreamError(f"chunk {index} failed authentication") from None

    def chunks(self, sealed: Iterable[bytes], first: int = 0) -> Iterator[bytes]:
        """Decrypt consecutive sealed chunks from ``first``, regrouping a byte stream of any chunking."""
        index = first
        buffer = bytearray()
        for piece in sealed:
            buffer += piece
            while index < self.layout.chunks:
                need = self.layout.chunk_plain_size(index) + TAG_SIZE
                if len(buffer) < need:
                    break
                yield self.chunk(index, bytes(buffer[:need]))
                del buffer[:need]
                index += 1
        if buffer:
            raise StreamError("bytes after the last chunk")


def decrypt_all(
    data_key: bytes, segment_id: uuid.UUID, layout: Layout, sealed: Iterable[bytes]
) -> Iterator[bytes]:
    """Plaintext of a whole object (header included in ``sealed``); raises StreamError on any fault,
    including a missing tail."""
    dec = Decryptor(data_key, segment_id, layout)
    buffer = bytearray()
    stream = iter(sealed)
    for piece in stream:
        buffer += piece
        if len(buffer) >= HEADER_SIZE:
            break
    dec.check_header(bytes(buffer[:HEADER_SIZE]))
    rest = bytes(buffer[HEADER_SIZE:])

    def body() -> Iterator[bytes]:
        if rest:
            yield rest
        yield from stream

    count = 0
    for plain in dec.chunks(body()):
        count += 1
        yield plain
    if count != layout.chunks:
        raise StreamError("the object ends before its last chunk")


def sha256_of(chunks: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    with path.open("rb") as fh:
        return sha256_of(iter(lambda: fh.read(1 << 20), b""))
