"""Setting up the footage bucket of an S3 store: Object Lock, versioning and the lifecycle backstop.

``cctv-gov storage setup`` calls ``setup_footage_bucket``. It is idempotent: it creates what is missing,
corrects what differs and says what it found. What each layer guarantees is in docs/storage.md.

* Object Lock, so the store itself refuses to delete a version under legal hold (``set_legal_hold``). Most
  stores (radosgw, MinIO, AWS until recently) turn it on only when a bucket is created; an existing bucket
  without it is refused with ``ObjectLockMissing``, whose message says how to move to a new bucket.
* Versioning, which Object Lock requires (and a bucket with Object Lock cannot suspend).
* Two lifecycle rules on the footage prefix (S3 allows no ``Days`` next to ``ExpiredObjectDeleteMarker`` in
  one ``Expiration``, hence two):

  1. ``Expiration Days=N``: N days after an object was stored, its current version becomes noncurrent under a
     delete marker; ``NoncurrentVersionExpiration NoncurrentDays=1`` then deletes noncurrent versions a day
     later (also those left by overwrites); ``AbortIncompleteMultipartUpload DaysAfterInitiation=1`` drops
     the parts of uploads never completed.
  2. ``Expiration ExpiredObjectDeleteMarker=true``: removes a delete marker once no version is left under it.

  A version under legal hold is not deleted by the lifecycle either: it stays, under a delete marker.

The bucket's lifecycle configuration is replaced as a whole (that is what S3 offers), so a bucket carrying
rules other than these two is refused rather than rewritten: another rule may erase footage early, and
rewriting one the SDK does not fully parse could widen it to the whole bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minio.commonconfig import ENABLED, Filter
from minio.error import S3Error
from minio.lifecycleconfig import (
    AbortIncompleteMultipartUpload,
    Expiration,
    LifecycleConfig,
    NoncurrentVersionExpiration,
    Rule,
)
from minio.objectlockconfig import ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from cctv_gov.kit.storage.base import StorageError
from cctv_gov.kit.storage.s3 import S3ObjectStore, _translate

FOOTAGE_PREFIX = "footage/"
"""Every footage object's key starts with this (``footage/<site>/<camera>/<yyyy>/<mm>/<dd>/<segment>``)."""
DEFAULT_MARGIN_DAYS = 2
"""The backstop expires objects this many days after the longest retention any site may have."""
NONCURRENT_DAYS = 1
ABORT_UPLOAD_DAYS = 1
EXPIRE_RULE_ID = "cctv-gov-footage-expire"
MARKER_RULE_ID = "cctv-gov-footage-delete-markers"
OUR_RULE_IDS = frozenset({EXPIRE_RULE_ID, MARKER_RULE_ID})

_NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"})


class ObjectLockMissing(StorageError):
    """The bucket exists without S3 Object Lock, and most stores turn it on only when a bucket is created."""


class ForeignLifecycleRules(StorageError):
    """The bucket has lifecycle rules that setup did not write; it will not drop or rewrite them."""


def default_expire_after_days(max_retention_days: int, margin_days: int = DEFAULT_MARGIN_DAYS) -> int:
    return max_retention_days + margin_days


def footage_lifecycle_rules(expire_after_days: int, prefix: str = FOOTAGE_PREFIX) -> list[Rule]:
    """The two rules of the backstop, exactly as put on the bucket."""
    if expire_after_days < 1:
        raise ValueError("expire_after_days must be at least 1")
    return [
        Rule(
            ENABLED,
            rule_filter=Filter(prefix=prefix),
            rule_id=EXPIRE_RULE_ID,
            expiration=Expiration(days=expire_after_days),
            noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=NONCURRENT_DAYS),
            abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                days_after_initiation=ABORT_UPLOAD_DAYS
            ),
        ),
        Rule(
            ENABLED,
            rule_filter=Filter(prefix=prefix),
            rule_id=MARKER_RULE_ID,
            expiration=Expiration(expired_object_delete_marker=True),
        ),
    ]


def describe_rule(rule: Rule) -> dict[str, Any]:
    """A rule as plain data (for JSON), with only the parts it has."""
    out: dict[str, Any] = {"id": rule.rule_id, "status": rule.status}
    if rule.rule_filter is not None:
        if rule.rule_filter.prefix is not None:
            out["prefix"] = rule.rule_filter.prefix
        if rule.rule_filter.tag is not None or rule.rule_filter.and_operator is not None:
            out["filter"] = "tags or and-operator"
    if rule.expiration is not None:
        expiration: dict[str, Any] = {}
        if rule.expiration.days is not None:
            expiration["days"] = rule.expiration.days
        if rule.expiration.date is not None:
            expiration["date"] = rule.expiration.date.isoformat()
        if rule.expiration.expired_object_delete_marker is not None:
            expiration["expired_object_delete_marker"] = rule.expiration.expired_object_delete_marker
        out["expiration"] = expiration
    if rule.noncurrent_version_expiration is not None:
        out["noncurrent_version_expiration_days"] = rule.noncurrent_version_expiration.noncurrent_days
    if rule.abort_incomplete_multipart_upload is not None:
        out["abort_incomplete_multipart_upload_days"] = (
            rule.abort_incomplete_multipart_upload.days_after_initiation
        )
    if rule.transition is not None or rule.noncurrent_version_transition is not None:
        out["transition"] = True
    return out


@dataclass
class BucketSetup:
    """What ``setup_footage_bucket`` found and did."""

    endpoint: str
    bucket: str
    created: bool = False
    object_lock: bool = False
    default_retention: dict[str, Any] | None = None
    """The bucket's default Object Lock retention, if any (setup sets none: see docs/storage.md)."""
    versioning_found: str | None = None
    """The bucket's versioning status before: "Enabled", "Suspended" or None (never enabled)."""
    versioning_enabled: bool = False
    """Whether setup turned versioning on."""
    lifecycle_found: list[dict[str, Any]] = field(default_factory=list)
    lifecycle_changed: bool = False
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    """The rules as read back from the store afterwards."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "bucket": self.bucket,
            "created": self.created,
            "object_lock": self.object_lock,
            "default_retention": self.default_retention,
            "versioning": {"found": self.versioning_found, "enabled_now": self.versioning_enabled},
            "lifecycle": {
                "found": self.lifecycle_found,
                "changed": self.lifecycle_changed,
                "rules": self.lifecycle,
            },
        }


def object_lock_config(store: S3ObjectStore) -> ObjectLockConfig | None:
    """The bucket's Object Lock configuration; None if it was created without Object Lock."""
    with _translate(f"reading the Object Lock configuration of {store.bucket!r}"):
        try:
            return store.client.get_object_lock_config(store.bucket)
        except S3Error as exc:
            if exc.code in _NO_LOCK_CODES:
                return None
            raise


def object_lock_enabled(store: S3ObjectStore) -> bool:
    """Whether the store's bucket was created with Object Lock."""
    return object_lock_config(store) is not None


def read_lifecycle(store: S3ObjectStore) -> list[Rule]:
    with _translate(f"reading the lifecycle of {store.bucket!r}"):
        config = store.client.get_bucket_lifecycle(store.bucket)
    return list(config.rules) if config is not None else []


def setup_footage_bucket(
    store: S3ObjectStore, *, expire_after_days: int, prefix: str = FOOTAGE_PREFIX
) -> BucketSetup:
    """Make the store's bucket exist with Object Lock and versioning on, and carry exactly the backstop's
    lifecycle rules. Running it again changes nothing and says so.

    ObjectLockMissing if the bucket exists without Object Lock; ForeignLifecycleRules if it has lifecycle
    rules not written here. Nothing is changed in either case.
    """
    wanted = footage_lifecycle_rules(expire_after_days, prefix)
    client = store.client
    report = BucketSetup(endpoint=store.endpoint, bucket=store.bucket)
    with _translate(f"looking for bucket {store.bucket!r}"):
        exists = client.bucket_exists(store.bucket)
    if not exists:
        store.ensure_bucket(object_lock=True)
        report.created = True

    lock = object_lock_config(store)
    report.object_lock = lock is not None
    if lock is not None and lock.mode is not None:
        report.default_retention = {
            "mode": lock.mode,
            str(lock.duration_unit or "days").lower(): lock.duration,
        }
    if not report.object_lock:
        raise ObjectLockMissing(
            f"bucket {store.bucket!r} at {store.endpoint} exists without S3 Object Lock, and most stores turn "
            "Object Lock on only when a bucket is created. Without it the store cannot refuse to delete held "
            "footage, so setup stops here and changes nothing. To move: run 'cctv-gov storage setup --bucket "
            "NEW-NAME' to create a new bucket with Object Lock, stop the service, copy every object to the new "
            "bucket under the same key, set CCTV_GOV_S3_BUCKET=NEW-NAME, start the service, put the legal "
            "holds of held footage on again, check the footage plays, then delete the old bucket and every "
            "version in it."
        )

    found = read_lifecycle(store)
    report.lifecycle_found = [describe_rule(rule) for rule in found]
    foreign = [rule for rule in found if rule.rule_id not in OUR_RULE_IDS]
    if foreign:
        names = ", ".join(repr(rule.rule_id) for rule in foreign)
        raise ForeignLifecycleRules(
            f"bucket {store.bucket!r} has lifecycle rules that cctv-gov did not write ({names}). A lifecycle "
            "configuration is replaced as a whole, and another rule may erase footage before its retention "
            "ends, so setup changes nothing: remove those rules (or keep footage in a bucket of its own) "
            "and run it again."
        )

    with _translate(f"reading the versioning of {store.bucket!r}"):
        report.versioning_found = client.get_bucket_versioning(store.bucket).status
    if report.versioning_found != ENABLED:
        with _translate(f"turning on versioning of {store.bucket!r}"):
            client.set_bucket_versioning(store.bucket, VersioningConfig(ENABLED))
        report.versioning_enabled = True

    if _by_id(found) != _by_id(wanted):
        with _translate(f"putting the lifecycle of {store.bucket!r}"):
            client.set_bucket_lifecycle(store.bucket, LifecycleConfig(wanted))
        report.lifecycle_changed = True
    stored = read_lifecycle(store)
    if _by_id(stored) != _by_id(wanted):
        raise StorageError(
            f"bucket {store.bucket!r}: the store kept other lifecycle rules than were put: "
            f"{[describe_rule(rule) for rule in stored]}"
        )
    report.lifecycle = [describe_rule(rule) for rule in stored]
    return report


def _by_id(rules: list[Rule]) -> dict[str | None, Rule]:
    return {rule.rule_id: rule for rule in rules}
