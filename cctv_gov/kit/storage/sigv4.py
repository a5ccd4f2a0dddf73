"""AWS Signature Version 4 for the S3 backend: header signing and presigned URLs.

Kept apart from the store because its job is different (pure functions over strings and bytes, checked
against botocore in the tests), and because presigned PUTs must bind Content-MD5 into SignedHeaders, which
the minio SDK's presigning does not do.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


def uri_encode(value: str, *, keep_slash: bool) -> str:
    return quote(value, safe="/-_.~" if keep_slash else "-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    encoded = sorted(
        (uri_encode(name, keep_slash=False), uri_encode(value, keep_slash=False))
        for name, value in params.items()
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """(canonical header block, signed header list) over all of ``headers``."""
    lowered = sorted((name.strip().lower(), " ".join(value.split())) for name, value in headers.items())
    block = "".join(f"{name}:{value}\n" for name, value in lowered)
    return block, ";".join(name for name, _ in lowered)


def _scope(now: datetime, region: str) -> str:
    return f"{now:%Y%m%d}/{region}/s3/aws4_request"


def _signature(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    payload_hash: str,
    secret_key: str,
    region: str,
    now: datetime,
) -> tuple[str, str]:
    """(hex signature, signed header list) for a request; ``headers`` are exactly the signed ones."""
    block, signed = _canonical_headers(headers)
    canonical_request = "\n".join(
        [method, uri_encode(path, keep_slash=True), query, block, signed, payload_hash]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            f"{now:%Y%m%dT%H%M%SZ}",
            _scope(now, region),
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (f"{now:%Y%m%d}", region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest(), signed


def as_utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("signing needs an aware datetime")
    return now.astimezone(UTC).replace(microsecond=0)


def sign_headers(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    payload_hash: str,
    access_key: str,
    secret_key: str,
    region: str,
    now: datetime,
) -> dict[str, str]:
    """Headers for a request signed in the Authorization header.

    ``path`` is the unencoded path (``/bucket/key``); every header given is signed, plus ``host``,
    ``x-amz-date`` and ``x-amz-content-sha256`` which are added.
    """
    now = as_utc(now)
    signed_headers = {
        **headers,
        "host": host,
        "x-amz-date": f"{now:%Y%m%dT%H%M%SZ}",
        "x-amz-content-sha256": payload_hash,
    }
    signature, signed = _signature(
        method=method,
        path=path,
        query=canonical_query(query),
        headers=signed_headers,
        payload_hash=payload_hash,
        secret_key=secret_key,
        region=region,
        now=now,
    )
    signed_headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{_scope(now, region)}, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    return signed_headers


def presign_url(
    *,
    method: str,
    scheme: str,
    host: str,
    path: str,
    access_key: str,
    secret_key: str,
    region: str,
    expires: int,
    now: datetime,
    signed_headers: Mapping[str, str] | None = None,
) -> str:
    """A query-string presigned URL (SigV4). Every header in ``signed_headers`` is bound into the signature:
    the client must send it with exactly that value, or the store answers 403 SignatureDoesNotMatch."""
    now = as_utc(now)
    headers = {**(signed_headers or {}), "host": host}
    _, signed = _canonical_headers(headers)
    params = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key}/{_scope(now, region)}",
        "X-Amz-Date": f"{now:%Y%m%dT%H%M%SZ}",
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": signed,
    }
    query = canonical_query(params)
    signature, _ = _signature(
        method=method,
        path=path,
        query=query,
        headers=headers,
        payload_hash=UNSIGNED_PAYLOAD,
        secret_key=secret_key,
        region=region,
        now=now,
    )
    return f"{scheme}://{host}{uri_encode(path, keep_slash=True)}?{query}&X-Amz-Signature={signature}"
