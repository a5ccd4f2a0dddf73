"""LocalObjectStore on a real directory: streaming, ranges, atomic writes, integrity and confinement."""

from __future__ import annotations

import base64
import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cctv_gov.kit.storage import (
    CHUNK_SIZE,
    IntegrityError,
    InvalidObjectKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    StorageError,
)

MiB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    root = tmp_path / "objects"
    root.mkdir()
    return LocalObjectStore(root)


def pattern(size: int, seed: int = 0) -> bytes:
    """Bytes that differ at every offset, so a shifted or mis-ranged read cannot pass."""
    block = hashlib.sha256(seed.to_bytes(4, "big")).digest() * 2048  # 64 KiB
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += counter.to_bytes(4, "big") + block[: 4096 - 4]
        counter += 1
    return bytes(out[:size])


def generated(size: int, chunk: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``size`` bytes, made chunk by chunk: the same as ``pattern(size)`` without holding it."""
    produced = 0
    counter = 0
    block = hashlib.sha256((0).to_bytes(4, "big")).digest() * 2048
    pending = b""
    while produced < size:
        while len(pending) < chunk:
            pending += counter.to_bytes(4, "big") + block[: 4096 - 4]
            counter += 1
        piece, pending = pending[: min(chunk, size - produced)], pending[min(chunk, size - produced) :]
        produced += len(piece)
        yield piece


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def open_fds() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())


def test_is_an_object_store(store: LocalObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert store.backend_name == "local"
    assert store.supports_presign is False


def test_generator_is_not_materialised_and_round_trips(store: LocalObjectStore) -> None:
    size = 40 * MiB
    digest = hashlib.md5(usedforsecurity=False)
    tracemalloc.start()
    try:
        info = store.put("site-a/cam-1/big.mp4", generated(size), length=size)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        received = 0
        for chunk in store.open("site-a/cam-1/big.mp4"):
            assert len(chunk) <= CHUNK_SIZE
            digest.update(chunk)
            received += len(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = hashlib.md5(usedforsecurity=False)
    for chunk in generated(size):
        expected.update(chunk)
    assert info.size == size
    assert info.etag == expected.hexdigest()
    assert received == size
    assert digest.hexdigest() == expected.hexdigest()
    assert put_peak < 2 * MiB, f"put held {put_peak / MiB:.1f} MiB for a {size // MiB} MiB object"
    assert read_peak < 2 * MiB, f"read held {read_peak / MiB:.1f} MiB for a {size // MiB} MiB object"


def test_put_from_a_file_object(store: LocalObjectStore, tmp_path: Path) -> None:
    data = pattern(3 * CHUNK_SIZE + 17)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    with source.open("rb") as fh:
        store.put("from-file", fh)
    store.put("from-bytesio", io.BytesIO(data), length=len(data))
    assert b"".join(store.open("from-file")) == data
    assert b"".join(store.open("from-bytesio")) == data


def test_empty_object(store: LocalObjectStore) -> None:
    info = store.put("empty", iter(()), length=0)
    assert info.size == 0
    assert list(store.open("empty")) == []
    assert store.stat("empty").size == 0


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, None),
        (0, 1),
        (1, 10),
        (CHUNK_SIZE - 3, 7),  # crosses a chunk boundary
        (CHUNK_SIZE, CHUNK_SIZE),
        (5, 3 * CHUNK_SIZE),  # several chunks
        (200_000, None),  # from an offset to the end
        (299_999, None),  # the last byte
        (299_990, 100),  # a length past the end is cut at the end
        (300_000, None),  # at the end: nothing
        (400_000, 10),  # past the end: nothing
        (10, 0),
    ],
)
def test_ranged_reads(store: LocalObjectStore, offset: int, length: int | None) -> None:
    data = pattern(300_000)
    store.put("ranged", [data])
    chunks = list(store.open("ranged", offset=offset, length=length))
    end = None if length is None else offset + length
    assert b"".join(chunks) == data[offset:end]
    assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)


def test_negative_ranges_refused(store: LocalObjectStore) -> None:
    store.put("x", [b"abc"])
    with pytest.raises(ValueError, match="offset"):
        store.open("x", offset=-1)
    with pytest.raises(ValueError, match="length"):
        store.open("x", length=-1)


def test_missing_object_raises_at_open_stat_and_exists(store: LocalObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.open("nope")  # at the call, not at the first chunk
    with pytest.raises(ObjectNotFound):
        store.stat("nope")
    assert store.exists("nope") is False
    store.put("dir/obj", [b"1"])
    with pytest.raises(ObjectNotFound):
        store.stat("dir")  # a prefix is not an object
    with pytest.raises(ObjectNotFound):
        store.open("dir")
    assert store.exists("dir") is False
    assert store.exists("dir/obj") is True


def test_reader_releases_its_file(store: LocalObjectStore) -> None:
    store.put("x", [pattern(3 * CHUNK_SIZE)])
    before = open_fds()
    reader = store.open("x")
    assert open_fds() == before + 1
    next(reader)
    reader.close()
    assert open_fds() == before
    with store.open("x") as reader2:
        next(reader2)
    assert open_fds() == before
    assert len(list(store.open("x"))) == 3
    assert open_fds() == before


def test_stat(store: LocalObjectStore) -> None:
    info = store.put("a/b", [b"hello ", b"world"])
    st = store.stat("a/b")
    assert st.key == "a/b"
    assert st.size == 11
    assert st.last_modified is not None
    assert st.last_modified.tzinfo is not None
    assert info.etag == hashlib.md5(b"hello world", usedforsecurity=False).hexdigest()


def test_overwrite_replaces(store: LocalObjectStore) -> None:
    store.put("k", [b"old contents"])
    store.put("k", [b"new"])
    assert b"".join(store.open("k")) == b"new"


def test_list_by_prefix_in_key_order(store: LocalObjectStore) -> None:
    keys = [
        "a.x",
        "a/b",
        "a/c/d",
        "a0",
        "a-",
        "site-a/cam-01/2026-11-01.mp4",
        "site-a/cam-01/2026-11-02.mp4",
        "site-a/cam-02/2026-11-01.mp4",
        "site-b/cam-01/2026-11-01.mp4",
    ]
    for key in reversed(keys):
        store.put(key, [key.encode()])
    (store.root / "site-a" / ".tmp-leftover").write_bytes(b"not an object")
    assert [i.key for i in store.list()] == sorted(keys)
    assert [i.key for i in store.list("site-a/")] == [k for k in sorted(keys) if k.startswith("site-a/")]
    assert [i.key for i in store.list("site-a/cam-0")] == [
        "site-a/cam-01/2026-11-01.mp4",
        "site-a/cam-01/2026-11-02.mp4",
        "site-a/cam-02/2026-11-01.mp4",
    ]
    assert [i.key for i in store.list("site-a/cam-01/2026-11-02")] == ["site-a/cam-01/2026-11-02.mp4"]
    assert [i.key for i in store.list("a")] == ["a-", "a.x", "a/b", "a/c/d", "a0"]
    assert [i.key for i in store.list("nothing/here/")] == []
    sizes = {i.key: i.size for i in store.list("site-b")}
    assert sizes == {"site-b/cam-01/2026-11-01.mp4": len(b"site-b/cam-01/2026-11-01.mp4")}
    with pytest.raises(InvalidObjectKey):
        list(store.list("../"))


def test_delete_many(store: LocalObjectStore) -> None:
    for key in ("s/c/1", "s/c/2", "s/d/3", "keep"):
        store.put(key, [b"x"])
    failed = store.delete_many(iter(["s/c/1", "s/c/2", "s/d/3", "never-existed", "s/c/1"]))
    assert failed == []
    assert [i.key for i in store.list()] == ["keep"]
    assert files_under(store.root) == ["keep"]
    assert not (store.root / "s").exists(), "emptied prefixes are pruned"
    assert store.root.is_dir(), "the root itself stays"


def test_delete_many_refuses_a_bad_key_before_deleting_anything(store: LocalObjectStore) -> None:
    store.put("a", [b"x"])
    with pytest.raises(InvalidObjectKey):
        store.delete_many(["a", "../escape"])
    assert store.exists("a")


def test_delete_many_reports_what_it_could_not_delete(store: LocalObjectStore) -> None:
    store.put("d/x", [b"x"])
    store.put("y", [b"y"])
    # "d" is a prefix (a directory here), not an object: deleting it is a failure, not a silent no-op.
    assert store.delete_many(["d", "y"]) == ["d"]
    assert store.exists("d/x")
    assert not store.exists("y")


@pytest.mark.parametrize("key", ["../../etc/passwd", "/abs", "a//b", "a/./b", ".hidden", "a\\b", "a\x00"])
def test_bad_keys_refused_by_every_operation(store: LocalObjectStore, key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        store.put(key, [b"x"])
    with pytest.raises(InvalidObjectKey):
        store.open(key)
    with pytest.raises(InvalidObjectKey):
        store.stat(key)
    with pytest.raises(InvalidObjectKey):
        store.exists(key)
    with pytest.raises(InvalidObjectKey):
        store.delete_many([key])
    assert files_under(store.root.parent) == []


def test_symlinked_directory_inside_root_cannot_be_written_through(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_bytes(b"original")
    (store.root / "escape").symlink_to(outside)
    with pytest.raises(InvalidObjectKey, match="outside"):
        store.put("escape/victim", [b"overwritten"])
    with pytest.raises(InvalidObjectKey):
        store.put("escape/new-file", [b"planted"])
    with pytest.raises(InvalidObjectKey):
        store.open("escape/victim")
    assert store.delete_many(["escape/victim"]) == ["escape/victim"]
    assert (outside / "victim").read_bytes() == b"original"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert [i.key for i in store.list()] == []  # symlinks are never followed when listing


def test_symlinked_file_inside_root_cannot_be_written_through(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"secret")
    (store.root / "link").symlink_to(target)
    with pytest.raises(InvalidObjectKey):
        store.put("link", [b"overwritten"])
    with pytest.raises(InvalidObjectKey):
        store.stat("link")
    with pytest.raises(InvalidObjectKey):
        b"".join(store.open("link"))
    assert target.read_bytes() == b"secret"
    assert (store.root / "link").is_symlink()


class Boom(Exception):
    pass


def failing_source(good_chunks: int) -> Iterator[bytes]:
    for _ in range(good_chunks):
        yield b"x" * CHUNK_SIZE
    raise Boom("source failed mid-stream")


def test_failed_stream_leaves_no_object_and_no_temp_file(store: LocalObjectStore) -> None:
    with pytest.raises(Boom):
        store.put("cam/clip", failing_source(10))
    assert not store.exists("cam/clip")
    assert [p for p in store.root.rglob("*") if p.is_file()] == [], "no temporary file is left behind"


def test_failed_stream_keeps_the_previous_version(store: LocalObjectStore) -> None:
    store.put("cam/clip", [b"previous"])
    with pytest.raises(Boom):
        store.put("cam/clip", failing_source(3))
    assert b"".join(store.open("cam/clip")) == b"previous"
    assert files_under(store.root) == ["cam/clip"]


def test_content_md5_match_is_stored(store: LocalObjectStore) -> None:
    data = pattern(200_000)
    info = store.put("ok", generated(200_000), content_md5=md5_b64(data))
    assert info.size == 200_000
    assert b"".join(store.open("ok")) == data


def test_content_md5_mismatch_leaves_no_object(store: LocalObjectStore) -> None:
    data = pattern(200_000)
    wrong = md5_b64(data[:-1] + b"!")
    with pytest.raises(IntegrityError, match="Content-MD5"):
        store.put("bad", [data], content_md5=wrong)
    assert not store.exists("bad")
    store.put("kept", [b"before"])
    with pytest.raises(IntegrityError):
        store.put("kept", [data], content_md5=wrong)
    assert b"".join(store.open("kept")) == b"before"
    assert files_under(store.root) == ["kept"]


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode(), ""])
def test_malformed_content_md5_refused_before_writing(store: LocalObjectStore, value: str) -> None:
    with pytest.raises(IntegrityError):
        store.put("k", [b"data"], content_md5=value)
    assert files_under(store.root) == []


@pytest.mark.parametrize("declared", [9, 11, 0])
def test_length_mismatch_leaves_no_object(store: LocalObjectStore, declared: int) -> None:
    with pytest.raises(IntegrityError):
        store.put("sized", [b"0123456789"], length=declared)
    assert not store.exists("sized")
    assert files_under(store.root) == []


def test_a_key_cannot_replace_a_prefix(store: LocalObjectStore) -> None:
    store.put("p/child", [b"x"])
    with pytest.raises(StorageError):
        store.put("p", [b"y"])
    assert store.exists("p/child")
    assert files_under(store.root) == ["p/child"]


def test_presign_not_supported(store: LocalObjectStore) -> None:
    with pytest.raises(StorageError, match="not supported by the local backend"):
        store.presigned_put("k", expires=timedelta(minutes=5))
    with pytest.raises(StorageError, match="not supported by the local backend"):
        store.presigned_get("k", expires=timedelta(minutes=5))


def test_check(tmp_path: Path) -> None:
    missing = LocalObjectStore(tmp_path / "missing")
    with pytest.raises(StorageError, match="does not exist"):
        missing.check()
    with pytest.raises(StorageError):
        missing.put("k", [b"x"])
    assert not (tmp_path / "missing").exists(), "a put does not invent a missing root"
    missing.ensure_root()
    missing.check()
    missing.put("k", [b"x"])
    assert missing.exists("k")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError):
        LocalObjectStore(tmp_path / "file").check()
