"""Object storage behind one interface: ``LocalObjectStore`` (files) and ``S3ObjectStore`` (S3 API)."""

from cctv_gov.kit.storage.base import (
    CHUNK_SIZE,
    IntegrityError,
    InvalidObjectKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    PresignedRequest,
    StorageError,
)
from cctv_gov.kit.storage.keys import validate_key
from cctv_gov.kit.storage.local import LocalObjectStore
from cctv_gov.kit.storage.s3 import S3ObjectStore

__all__ = [
    "CHUNK_SIZE",
    "IntegrityError",
    "InvalidObjectKey",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectStore",
    "PresignedRequest",
    "S3ObjectStore",
    "StorageError",
    "validate_key",
]
