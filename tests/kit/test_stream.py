"""cgv-stream-1: round trips, and every kind of tampering is refused."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from cctv_gov.kit import stream

KEY = bytes(range(32))
SEG = uuid.UUID("12345678-1234-5678-1234-567812345678")
C = 64


def sealed(data: bytes, key: bytes = KEY, seg: uuid.UUID = SEG) -> bytes:
    return b"".join(stream.encrypt(key, seg, [data], chunk_size=C))


@pytest.mark.parametrize("size", [0, 1, C - 1, C, C + 1, 3 * C + 7])
def test_round_trip_and_size(size: int) -> None:
    data = os.urandom(size)
    layout = stream.Layout(size, C)
    blob = sealed(data)
    assert len(blob) == layout.ciphertext_size
    # Any chunking of the ciphertext decrypts.
    pieces = [blob[i : i + 7] for i in range(0, len(blob), 7)]
    assert b"".join(stream.decrypt_all(KEY, SEG, layout, pieces)) == data


def test_encryption_is_deterministic_for_one_key_and_segment() -> None:
    # The agent relies on this: one pass for the MD5, a second for the upload.
    data = os.urandom(5 * C + 3)
    assert sealed(data) == b"".join(stream.encrypt(KEY, SEG, [data[:10], data[10:]], chunk_size=C))


def test_no_nonce_repeats_and_the_last_is_flagged() -> None:
    nonces = [stream.nonce(i, i == 9) for i in range(10)]
    assert len(set(nonces)) == 10
    assert nonces[-1][-1] == 1
    assert all(n[-1] == 0 for n in nonces[:-1])


def _fails(blob: bytes, layout: stream.Layout, key: bytes = KEY, seg: uuid.UUID = SEG) -> None:
    with pytest.raises(stream.StreamError):
        b"".join(stream.decrypt_all(key, seg, layout, [blob]))


def test_tampering_is_refused() -> None:
    data = os.urandom(3 * C + 5)
    layout = stream.Layout(len(data), C)
    blob = bytearray(sealed(data))
    chunk = C + stream.TAG_SIZE
    flipped = bytearray(blob)
    flipped[stream.HEADER_SIZE + 3] ^= 1
    _fails(bytes(flipped), layout)
    # Truncated at a chunk boundary: the new last chunk lacks the last flag.
    _fails(bytes(blob[: stream.HEADER_SIZE + 2 * chunk]), layout)
    # Chunks swapped.
    h = stream.HEADER_SIZE
    swapped = blob[:h] + blob[h + chunk : h + 2 * chunk] + blob[h : h + chunk] + blob[h + 2 * chunk :]
    _fails(bytes(swapped), layout)
    # Extra bytes after the end.
    _fails(bytes(blob) + b"x", layout)
    # Another segment's header, or another key.
    _fails(bytes(blob), layout, seg=uuid.uuid4())
    _fails(bytes(blob), layout, key=os.urandom(32))


def test_chunk_range_addresses_each_chunk() -> None:
    data = os.urandom(3 * C + 5)
    layout = stream.Layout(len(data), C)
    blob = sealed(data)
    dec = stream.Decryptor(KEY, SEG, layout)
    for i in range(layout.chunks):
        off, length = layout.chunk_range(i, i)
        assert dec.chunk(i, blob[off : off + length]) == data[i * C : (i + 1) * C]
    off, length = layout.chunk_range(1, 3)
    assert b"".join(dec.chunks([blob[off : off + length]], first=1)) == data[C:]
    assert stream.sha256_of([data]) == hashlib.sha256(data).hexdigest()
