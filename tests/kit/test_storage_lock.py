"""Legal holds and deletes that erase every version, on a bucket with S3 Object Lock (radosgw; moto as a
fallback, which enforces legal holds too) and on the local backend, which has neither."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error

from cctv_gov.kit.storage import (
    IntegrityError,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
)
from cctv_gov.kit.storage import s3 as s3_module
from tests.fixtures.s3 import S3Server, remove_bucket
from tests.kit.test_storage_local import md5_b64

s3 = pytest.mark.s3


def versions(client: Minio, bucket: str, prefix: str = "") -> list[tuple[str, bool]]:
    """Every version and delete marker in the bucket: (key, is a delete marker), in key order."""
    return sorted(
        (obj.object_name, bool(obj.is_delete_marker))
        for obj in client.list_objects(bucket, prefix=prefix or None, recursive=True, include_version=True)
    )


def release_holds(client: Minio, bucket: str) -> None:
    """Release every legal hold, so the bucket can be emptied."""
    for obj in client.list_objects(bucket, recursive=True, include_version=True):
        if not obj.is_delete_marker:
            with contextlib.suppress(S3Error):
                client.disable_object_legal_hold(bucket, obj.object_name, obj.version_id)


@contextlib.contextmanager
def locked_store(server: S3Server) -> Iterator[S3ObjectStore]:
    """A fresh bucket created with Object Lock (so versioned), emptied and removed afterwards."""
    bucket = f"cctv-gov-test-{secrets.token_hex(6)}"
    store = server.store(bucket)
    store.ensure_bucket(object_lock=True)
    try:
        yield store
    finally:
        client = server.client()
        release_holds(client, bucket)
        remove_bucket(client, bucket)


@pytest.fixture
def locked_bucket(s3_server: S3Server) -> Iterator[S3ObjectStore]:
    with locked_store(s3_server) as store:
        yield store


def read(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as reader:
        return b"".join(reader)


# ---------------------------------------------------------------------------------------- local backend


def test_the_local_backend_has_no_legal_holds(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    assert isinstance(store, ObjectStore)
    assert store.supports_legal_hold is False
    store.put("footage/a", [b"a"], length=1)
    store.set_legal_hold("footage/a", True)  # documented no-op: callers check supports_legal_hold
    assert store.legal_hold("footage/a") is False
    with pytest.raises(ObjectNotFound):
        store.set_legal_hold("footage/missing", True)
    with pytest.raises(ObjectNotFound):
        store.legal_hold("footage/missing")
    assert store.delete_many(["footage/a"]) == []
    assert not store.exists("footage/a")


# ---------------------------------------------------------------------------------------- S3: every version


@s3
def test_delete_many_erases_every_version_and_delete_marker(
    locked_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    client = s3_server.client()
    store = locked_bucket
    assert store.supports_legal_hold is True
    store.put("footage/over", [b"one"], length=3)
    store.put("footage/over", [b"two"], length=3)  # the first stays as a noncurrent version
    store.put("footage/hidden", [b"x"], length=1)
    client.remove_object(store.bucket, "footage/hidden")  # a plain delete: a marker over the bytes
    store.put("footage/keep", [b"k"], length=1)
    assert versions(client, store.bucket) == [
        ("footage/hidden", False),
        ("footage/hidden", True),
        ("footage/keep", False),
        ("footage/over", False),
        ("footage/over", False),
    ]
    assert store.delete_many(["footage/over", "footage/hidden", "footage/never", "footage/over"]) == []
    assert versions(client, store.bucket) == [("footage/keep", False)]


@s3
@pytest.mark.parametrize("folder_from", [2, 1000], ids=["folder-listing", "key-listing"])
def test_delete_many_touches_only_the_keys_given(
    locked_bucket: S3ObjectStore, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, folder_from: int
) -> None:
    """Versions are found by listing a folder or a key's own prefix: neighbours that share the prefix
    ("1" and "10", "1" and "1/deeper") must survive either way."""
    monkeypatch.setattr(s3_module, "LIST_FOLDER_FROM", folder_from)
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)  # versions of one key may span two requests
    store = locked_bucket
    for key in ("d/1", "d/2", "d/3", "d/10", "d/1/deeper", "top"):
        store.put(key, [b"v1"], length=2)
    store.put("d/1", [b"v2"], length=2)
    assert store.delete_many(["d/1", "d/2", "d/3", "top"]) == []
    assert versions(s3_server.client(), store.bucket) == [("d/1/deeper", False), ("d/10", False)]


@s3
def test_a_put_refused_for_its_digest_leaves_no_version(
    locked_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    """radosgw refuses the bytes itself; moto stores them and the store takes back that very version."""
    with pytest.raises(IntegrityError):
        locked_bucket.put("footage/bad", [b"abc"], length=3, content_md5=md5_b64(b"abd"))
    assert versions(s3_server.client(), locked_bucket.bucket) == []


# ---------------------------------------------------------------------------------------- S3: legal holds


@s3
def test_a_legal_hold_makes_the_store_refuse_the_delete(
    locked_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    client = s3_server.client()
    store = locked_bucket
    store.put("footage/held", [b"evidence"], length=8)
    store.put("footage/free", [b"routine"], length=7)
    store.set_legal_hold("footage/held", True)
    store.set_legal_hold("footage/held", True)  # idempotent
    assert store.legal_hold("footage/held") is True
    assert store.legal_hold("footage/free") is False

    # The purge's delete reports the held key as not deleted, does not raise, and hides nothing.
    assert store.delete_many(["footage/held", "footage/free"]) == ["footage/held"]
    assert read(store, "footage/held") == b"evidence"
    assert versions(client, store.bucket) == [("footage/held", False)]
    # Whoever holds the service's key cannot delete the version either: the store itself refuses.
    (version,) = [
        o.version_id for o in client.list_objects(store.bucket, recursive=True, include_version=True)
    ]
    with pytest.raises(S3Error) as refused:
        client.remove_object(store.bucket, "footage/held", version_id=version)
    assert refused.value.code == "AccessDenied"
    assert read(store, "footage/held") == b"evidence"

    store.set_legal_hold("footage/held", False)
    assert store.legal_hold("footage/held") is False
    assert store.delete_many(["footage/held"]) == []
    assert versions(client, store.bucket) == []


@s3
def test_a_hold_reaches_bytes_under_a_delete_marker(
    locked_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    """What the lifecycle leaves of held footage: its bytes, noncurrent, under a delete marker. The hold is
    per version, so it can still be read, set and released there."""
    client = s3_server.client()
    store = locked_bucket
    store.put("footage/clip", [b"clip"], length=4)
    store.set_legal_hold("footage/clip", True)
    client.remove_object(store.bucket, "footage/clip")  # a marker on top, as the lifecycle puts
    assert not store.exists("footage/clip")
    assert store.legal_hold("footage/clip") is True
    assert store.delete_many(["footage/clip"]) == ["footage/clip"]  # the marker went; the held bytes stay
    assert versions(client, store.bucket) == [("footage/clip", False)]
    store.set_legal_hold("footage/clip", False)
    assert store.delete_many(["footage/clip"]) == []
    assert versions(client, store.bucket) == []


@s3
def test_legal_holds_on_missing_keys_and_on_a_bucket_without_object_lock(
    locked_bucket: S3ObjectStore, s3_bucket: S3ObjectStore
) -> None:
    with pytest.raises(ObjectNotFound):
        locked_bucket.set_legal_hold("footage/missing", True)
    with pytest.raises(ObjectNotFound):
        locked_bucket.legal_hold("footage/missing")
    s3_bucket.put("footage/a", [b"a"], length=1)
    with pytest.raises(StorageError, match="no S3 Object Lock"):
        s3_bucket.set_legal_hold("footage/a", True)
    assert s3_bucket.legal_hold("footage/a") is False
    assert s3_bucket.delete_many(["footage/a"]) == []
    assert not s3_bucket.exists("footage/a")
