"""The agent's cgv-stream-1 encryptor: byte for byte the service's, streaming, and watchful of the file."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cctv_ingest import stream

from cctv_gov.kit import stream as reference

KEY = bytes(range(32))
SEGMENT = uuid.UUID("0b6f3c1e-8f1d-4b8e-9a55-3f0d2c6b7a10")
SMALL_CHUNK = 16

SIZES: dict[str, Callable[[int], int]] = {
    "empty": lambda chunk: 0,
    "one byte": lambda chunk: 1,
    "chunk - 1": lambda chunk: chunk - 1,
    "one chunk": lambda chunk: chunk,
    "chunk + 1": lambda chunk: chunk + 1,
    "3 chunks + 7": lambda chunk: 3 * chunk + 7,
}


def write(path: Path, data: bytes) -> stream.FileIdentity:
    path.write_bytes(data)
    info = path.stat()
    return stream.FileIdentity(info.st_size, info.st_mtime_ns)


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


@pytest.mark.parametrize("chunk_size", [SMALL_CHUNK, stream.DEFAULT_CHUNK_SIZE])
@pytest.mark.parametrize("size_of", list(SIZES.values()), ids=list(SIZES))
def test_output_is_byte_identical_to_the_services_encryptor(
    tmp_path: Path, chunk_size: int, size_of: Callable[[int], int]
) -> None:
    size = size_of(chunk_size)
    data = os.urandom(size)
    expected = b"".join(reference.encrypt(KEY, SEGMENT, [data], chunk_size))

    # From pieces of any size, and from the file itself.
    for piece_size in (1, 7, chunk_size, chunk_size + 3):
        assert b"".join(stream.encrypt(KEY, SEGMENT, pieces(data, piece_size), chunk_size)) == expected
    identity = write(tmp_path / "segment.mp4", data)
    from_file = b"".join(stream.encrypt_file(tmp_path / "segment.mp4", identity, KEY, SEGMENT, chunk_size))
    assert from_file == expected

    layout = reference.Layout(size, chunk_size)
    assert len(from_file) == stream.ciphertext_size(size, chunk_size) == layout.ciphertext_size
    assert stream.chunk_count(size, chunk_size) == layout.chunks
    assert b"".join(reference.decrypt_all(KEY, SEGMENT, layout, [from_file])) == data


def test_header_and_nonces_follow_the_format() -> None:
    head = stream.header(SEGMENT, 65536)

    assert head == b"CGVSTRM1" + (65536).to_bytes(4, "big") + bytes(4) + SEGMENT.bytes
    assert len(head) == stream.HEADER_SIZE == reference.HEADER_SIZE
    assert stream.nonce(0, False) == bytes(12)
    assert stream.nonce(2, True) == bytes(10) + b"\x02\x01"
    assert stream.nonce(5, True) == reference.nonce(5, True)


def test_encryption_is_deterministic_so_the_md5_pass_matches_the_upload(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    data = os.urandom(3 * SMALL_CHUNK + 5)
    identity = write(path, data)

    md5, sha256 = stream.ciphertext_md5(path, identity, KEY, SEGMENT, SMALL_CHUNK)

    uploaded = b"".join(stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK))
    assert md5 == hashlib.md5(uploaded, usedforsecurity=False).digest()
    assert sha256 == hashlib.sha256(data).hexdigest()


def test_hash_file_gives_sha256_and_size(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    data = os.urandom(2_500_000)
    identity = write(path, data)

    assert stream.hash_file(path) == (hashlib.sha256(data).hexdigest(), len(data))
    assert stream.hash_file(path, identity, read_size=4096) == (hashlib.sha256(data).hexdigest(), len(data))
    empty = tmp_path / "empty.mp4"
    assert stream.hash_file(empty, write(empty, b"")) == (hashlib.sha256(b"").hexdigest(), 0)


def test_a_wrong_key_size_or_chunk_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        list(stream.encrypt(b"short", SEGMENT, [b"x"]))
    with pytest.raises(ValueError, match="chunk_size"):
        stream.header(SEGMENT, 8)


# -- the file must stay the file that was queued --------------------------------------------------------


def test_a_file_changed_before_the_pass_is_refused_before_any_byte(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    identity = write(path, b"a" * 100)
    path.write_bytes(b"b" * 101)

    with pytest.raises(stream.FileChanged):
        next(stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK))
    with pytest.raises(stream.FileChanged):
        stream.hash_file(path, identity)


def test_a_file_that_grows_during_the_pass_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    identity = write(path, b"a" * (4 * SMALL_CHUNK))
    produced = stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK)
    next(produced)  # the header
    next(produced)  # the first chunk
    with path.open("ab") as handle:
        handle.write(b"more")

    with pytest.raises(stream.FileChanged):
        list(produced)


def test_a_file_that_shrinks_during_the_pass_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    identity = write(path, b"a" * (4 * SMALL_CHUNK))
    produced = stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK)
    next(produced)
    os.truncate(path, SMALL_CHUNK)

    with pytest.raises(stream.FileChanged):
        list(produced)


def test_a_touched_file_is_caught_at_the_end_of_the_pass(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    identity = write(path, b"a" * (2 * SMALL_CHUNK))
    produced = stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK)
    next(produced)
    os.utime(path, ns=(identity.mtime_ns + 5_000_000_000, identity.mtime_ns + 5_000_000_000))

    with pytest.raises(stream.FileChanged):
        list(produced)


def test_missing_file_and_symbolic_link(tmp_path: Path) -> None:
    target = tmp_path / "real.mp4"
    identity = write(target, b"data")
    link = tmp_path / "link.mp4"
    link.symlink_to(target)

    with pytest.raises(stream.FileMissing):
        stream.hash_file(tmp_path / "gone.mp4")
    with pytest.raises(stream.FileChanged, match="symbolic link"):
        stream.hash_file(link, identity)


def test_a_pass_stops_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    identity = write(path, b"a" * (4 * SMALL_CHUNK))
    stop = threading.Event()
    produced = stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK, stop=stop)
    next(produced)
    stop.set()

    with pytest.raises(stream.Stopped):
        list(produced)


def test_on_plaintext_counts_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "segment.mp4"
    identity = write(path, b"a" * (3 * SMALL_CHUNK + 7))
    counted: list[int] = []

    list(stream.encrypt_file(path, identity, KEY, SEGMENT, SMALL_CHUNK, on_plaintext=counted.append))

    assert counted == [SMALL_CHUNK, SMALL_CHUNK, SMALL_CHUNK, 7]


# -- memory stays flat ----------------------------------------------------------------------------------

BIG = 200 * 1024 * 1024
MEMORY_LIMIT = 4 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, stream.FileIdentity]:
    """200 MB, sparse (the file system makes zeros up, so reading it is quick and it takes no disk)."""
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    with path.open("wb") as handle:
        handle.write(b"start")
        handle.truncate(BIG)
    info = path.stat()
    return path, stream.FileIdentity(info.st_size, info.st_mtime_ns)


def test_hashing_and_encrypting_a_big_file_keeps_memory_flat(
    big_file: tuple[Path, stream.FileIdentity],
) -> None:
    path, identity = big_file
    tracemalloc.start()
    try:
        sha256, size = stream.hash_file(path, identity)
        md5, sha256_again = stream.ciphertext_md5(path, identity, KEY, SEGMENT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert size == BIG
    assert sha256 == sha256_again
    assert len(md5) == 16
    assert peak < MEMORY_LIMIT, f"peak {peak} bytes"
