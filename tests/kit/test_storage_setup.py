"""Setting up the footage bucket (Object Lock, versioning, the lifecycle backstop), and the backstop at work
on radosgw, where ``rgw lc debug interval = 10`` makes a lifecycle "day" 10 seconds."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from minio.commonconfig import ENABLED, GOVERNANCE, Filter
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.objectlockconfig import DAYS, ObjectLockConfig

from cctv_gov.kit.storage import S3ObjectStore
from cctv_gov.kit.storage.s3_admin import (
    EXPIRE_RULE_ID,
    MARKER_RULE_ID,
    ForeignLifecycleRules,
    ObjectLockMissing,
    default_expire_after_days,
    describe_rule,
    footage_lifecycle_rules,
    object_lock_enabled,
    setup_footage_bucket,
)
from tests.fixtures.s3 import S3Server, remove_bucket, require_enforcement
from tests.kit.test_storage_lock import locked_store, read, release_holds, versions

s3 = pytest.mark.s3

POLL_SECONDS = 2.0
BACKSTOP_TIMEOUT = 120.0


def expected_rules(days: int) -> list[dict[str, object]]:
    """The two rules as ``describe_rule`` gives them, in the order of ``by_id``."""
    return [
        {
            "id": MARKER_RULE_ID,
            "status": "Enabled",
            "prefix": "footage/",
            "expiration": {"expired_object_delete_marker": True},
        },
        {
            "id": EXPIRE_RULE_ID,
            "status": "Enabled",
            "prefix": "footage/",
            "expiration": {"days": days},
            "noncurrent_version_expiration_days": 1,
            "abort_incomplete_multipart_upload_days": 1,
        },
    ]


def by_id(rules: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(rules, key=lambda rule: str(rule["id"]))


@pytest.fixture
def new_bucket(s3_server: S3Server) -> Iterator[S3ObjectStore]:
    """A store on a bucket that does not exist yet; removed afterwards (whatever the test made of it)."""
    bucket = f"cctv-gov-test-{secrets.token_hex(6)}"
    try:
        yield s3_server.store(bucket)
    finally:
        client = s3_server.client()
        if client.bucket_exists(bucket):
            release_holds(client, bucket)
        remove_bucket(client, bucket)


def test_the_rules() -> None:
    assert default_expire_after_days(31) == 33
    assert default_expire_after_days(10, margin_days=5) == 15
    assert by_id([describe_rule(rule) for rule in footage_lifecycle_rules(33)]) == expected_rules(33)
    with pytest.raises(ValueError, match="at least 1"):
        footage_lifecycle_rules(0)


@s3
def test_setup_creates_a_locked_versioned_bucket_with_the_backstop(
    new_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    client = s3_server.client()
    first = setup_footage_bucket(new_bucket, expire_after_days=33)
    assert first.created is True
    assert first.object_lock is True
    assert first.lifecycle_changed is True
    assert by_id(first.lifecycle) == expected_rules(33)

    # Read back from the store itself, not from the report.
    assert object_lock_enabled(new_bucket) is True
    client.get_object_lock_config(new_bucket.bucket)
    assert client.get_bucket_versioning(new_bucket.bucket).status == "Enabled"
    stored = client.get_bucket_lifecycle(new_bucket.bucket)
    assert stored is not None
    assert by_id([describe_rule(rule) for rule in stored.rules]) == expected_rules(33)
    assert {rule.rule_id: rule for rule in stored.rules} == {
        rule.rule_id: rule for rule in footage_lifecycle_rules(33)
    }

    again = setup_footage_bucket(new_bucket, expire_after_days=33)
    assert again.as_dict()["created"] is False
    assert again.as_dict()["versioning"] == {"found": "Enabled", "enabled_now": False}
    assert again.as_dict()["lifecycle"]["changed"] is False
    assert by_id(again.as_dict()["lifecycle"]["found"]) == expected_rules(33)

    longer = setup_footage_bucket(new_bucket, expire_after_days=40)  # after the policy changed
    assert longer.lifecycle_changed is True
    assert by_id(longer.lifecycle) == expected_rules(40)
    new_bucket.put("footage/x", [b"x"], length=1)  # the bucket takes footage as before
    assert new_bucket.delete_many(["footage/x"]) == []


@s3
def test_setup_refuses_a_bucket_without_object_lock(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    with pytest.raises(ObjectLockMissing, match="only when a bucket is created") as refused:
        setup_footage_bucket(s3_bucket, expire_after_days=33)
    assert "--bucket NEW-NAME" in str(refused.value)
    client = s3_server.client()
    assert client.get_bucket_versioning(s3_bucket.bucket).status != "Enabled"  # nothing was changed
    assert client.get_bucket_lifecycle(s3_bucket.bucket) is None


@s3
def test_setup_keeps_its_hands_off_other_lifecycle_rules(s3_server: S3Server) -> None:
    client = s3_server.client()
    with locked_store(s3_server) as store:
        foreign = Rule(
            ENABLED, rule_filter=Filter(prefix="footage/"), rule_id="tidy-up", expiration=Expiration(days=7)
        )
        client.set_bucket_lifecycle(store.bucket, LifecycleConfig([foreign]))
        with pytest.raises(ForeignLifecycleRules, match="'tidy-up'"):
            setup_footage_bucket(store, expire_after_days=33)
        stored = client.get_bucket_lifecycle(store.bucket)
        assert stored is not None
        assert [describe_rule(rule) for rule in stored.rules] == [describe_rule(foreign)]


@s3
def test_setup_reports_a_default_retention(s3_server: S3Server) -> None:
    """Setup sets no default retention (it would make the store refuse the purge); it says when it finds one."""
    with locked_store(s3_server) as store:
        assert setup_footage_bucket(store, expire_after_days=33).default_retention is None
        s3_server.client().set_object_lock_config(store.bucket, ObjectLockConfig(GOVERNANCE, 1, DAYS))
        found = setup_footage_bucket(store, expire_after_days=33)
        assert found.as_dict()["default_retention"] == {"mode": "GOVERNANCE", "days": 1}


@s3
@pytest.mark.slow
def test_the_lifecycle_backstop_erases_unheld_footage_and_spares_held(s3_server: S3Server) -> None:
    """With a rule of one "day" (10 s here), footage left behind by a stopped service is erased by the store,
    every version of it; footage under legal hold is not, though a delete marker is put over it."""
    require_enforcement(s3_server, "lifecycle rules (they never run)")
    client = s3_server.client()
    with locked_store(s3_server) as store:
        setup_footage_bucket(store, expire_after_days=1)
        store.put("footage/site/cam/free.cgv", [b"routine"], length=7)
        store.put("footage/site/cam/held.cgv", [b"evidence"], length=8)
        store.put("elsewhere/note", [b"not footage"], length=11)
        store.set_legal_hold("footage/site/cam/held.cgv", True)

        started = time.monotonic()
        while versions(client, store.bucket, "footage/site/cam/free.cgv"):
            assert time.monotonic() - started < BACKSTOP_TIMEOUT, (
                f"the lifecycle left {versions(client, store.bucket)} after {BACKSTOP_TIMEOUT:.0f} s"
            )
            time.sleep(POLL_SECONDS)
        erased_after = time.monotonic() - started

        # Every version of the unheld object is gone, and its delete marker too.
        assert versions(client, store.bucket, "footage/site/cam/free.cgv") == []
        # The held bytes are all there, under the marker the lifecycle put on top.
        held = versions(client, store.bucket, "footage/site/cam/held.cgv")
        assert ("footage/site/cam/held.cgv", False) in held
        assert store.legal_hold("footage/site/cam/held.cgv") is True
        (version,) = [
            o.version_id
            for o in client.list_objects(store.bucket, "footage/", recursive=True, include_version=True)
            if not o.is_delete_marker
        ]
        response = client.get_object(store.bucket, "footage/site/cam/held.cgv", version_id=version)
        try:
            assert response.read() == b"evidence"
        finally:
            response.close()
            response.release_conn()
        # Outside the footage prefix nothing is touched.
        assert read(store, "elsewhere/note") == b"not footage"

        # Released, the held footage is erased like any other.
        store.set_legal_hold("footage/site/cam/held.cgv", False)
        assert store.delete_many(["footage/site/cam/held.cgv"]) == []
        assert versions(client, store.bucket, "footage/") == []
    assert erased_after < BACKSTOP_TIMEOUT
