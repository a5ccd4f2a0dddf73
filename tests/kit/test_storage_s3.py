"""S3ObjectStore against a real S3 server on loopback (radosgw; moto as a fallback), and its SigV4 signer
against botocore's."""

from __future__ import annotations

import base64
import hashlib
import http.client
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from cctv_gov.kit.clock import FixedClock
from cctv_gov.kit.storage import (
    CHUNK_SIZE,
    IntegrityError,
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
)
from cctv_gov.kit.storage import s3 as s3_module
from cctv_gov.kit.storage.s3 import _exact_length, _split_parts
from cctv_gov.kit.storage.sigv4 import presign_url, sign_headers
from tests.fixtures.radosgw import free_port
from tests.fixtures.s3 import S3Server, incomplete_uploads, remove_bucket, require_enforcement
from tests.kit.test_storage_local import generated, md5_b64, pattern

MiB = 1024 * 1024


def store_like(store: S3ObjectStore, server: S3Server, **kwargs: object) -> S3ObjectStore:
    """The same bucket through another client (a smaller part size, another clock)."""
    return S3ObjectStore(
        server.endpoint,
        store.bucket,
        server.access_key,
        server.secret_key,
        region=server.region,
        **kwargs,  # type: ignore[arg-type]
    )


def send(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One plain HTTP request, exactly as given: what a client holding a presigned URL does."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(
            method, target, body=body, headers={"Content-Length": str(len(body)), **(headers or {})}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def streamed_md5(chunks: Iterator[bytes]) -> tuple[str, int]:
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


# ---------------------------------------------------------------------------------------- signer (no server)


NOW = datetime(2026, 11, 23, 14, 58, 17, tzinfo=UTC)


def botocore_date(value: str) -> datetime:
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("host", "path", "headers"),
    [
        ("127.0.0.1:9000", "/bucket/site-a/cam-01/clip.mp4", {"content-md5": "XrY7u+Ae7tCTyyK7j1rNww=="}),
        ("s3.example.org", "/bucket/a_b-c.d~e", {}),
        ("localhost:7480", "/b/x", {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "content-type": "video/mp4"}),
    ],
)
def test_presigned_url_matches_botocore(host: str, path: str, headers: dict[str, str]) -> None:
    request = AWSRequest(method="PUT", url=f"http://{host}{path}", headers=headers)
    S3SigV4QueryAuth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "eu-west-2", expires=900
    ).add_auth(request)
    expected = request.prepare().url
    signed_at = botocore_date(parse_qs(urlsplit(expected).query)["X-Amz-Date"][0])
    ours = presign_url(
        method="PUT",
        scheme="http",
        host=host,
        path=path,
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="eu-west-2",
        expires=900,
        now=signed_at,
        signed_headers=headers,
    )
    assert ours == expected
    assert parse_qs(urlsplit(ours).query)["X-Amz-SignedHeaders"] == [";".join(sorted([*headers, "host"]))]


@pytest.mark.parametrize(
    ("query", "body"),
    [
        ({}, b"hello"),
        ({"partNumber": "7", "uploadId": "2~aZ/b+c=d"}, b"part"),
        ({"uploads": ""}, b""),
    ],
)
def test_header_signature_matches_botocore(query: dict[str, str], body: bytes) -> None:
    headers = {
        "Content-MD5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(body)),
    }
    url = "http://127.0.0.1:7480/bucket/site-a/x.mp4"
    if query:
        url += "?" + "&".join(f"{k}={quote(v, safe='')}" if v else k for k, v in query.items())
    request = AWSRequest(method="PUT", url=url, data=body, headers=dict(headers))
    S3SigV4Auth(Credentials("AK", "SK/secret"), "s3", "us-east-1").add_auth(request)
    expected = dict(request.prepare().headers)
    ours = sign_headers(
        method="PUT",
        host="127.0.0.1:7480",
        path="/bucket/site-a/x.mp4",
        query=query,
        headers=headers,
        payload_hash=expected["X-Amz-Content-SHA256"],
        access_key="AK",
        secret_key="SK/secret",
        region="us-east-1",
        now=botocore_date(expected["X-Amz-Date"]),
    )
    assert ours["Authorization"] == expected["Authorization"]


def test_signing_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        presign_url(
            method="GET",
            scheme="http",
            host="h",
            path="/b/k",
            access_key="a",
            secret_key="s",
            region="us-east-1",
            expires=60,
            now=datetime(2026, 1, 1),  # naive on purpose
        )


def test_exact_length_holds_back_the_last_chunk() -> None:
    assert list(_exact_length(iter([b"ab", b"cd"]), 4, "k")) == [b"ab", b"cd"]
    passed = _exact_length(iter([b"ab", b"cd", b"e"]), 4, "k")
    assert next(passed) == b"ab"
    with pytest.raises(IntegrityError, match="more than"):
        next(passed)  # the chunk completing the declared length is not sent when more follows
    with pytest.raises(IntegrityError, match="got 3 bytes"):
        list(_exact_length(iter([b"ab", b"c"]), 4, "k"))


@pytest.mark.parametrize(
    ("chunks", "part_size", "expected"),
    [
        ([], 4, [(b"", True)]),
        ([b"abc"], 4, [(b"abc", True)]),
        ([b"ab", b"cd"], 4, [(b"abcd", True)]),
        ([b"abcd", b""], 4, [(b"abcd", True)]),
        ([b"abcdef"], 4, [(b"abcd", False), (b"ef", True)]),
        ([b"a", b"bcdefgh", b"ijk"], 4, [(b"abcd", False), (b"efgh", False), (b"ijk", True)]),
        ([b"abcdefgh"], 4, [(b"abcd", False), (b"efgh", True)]),
    ],
)
def test_split_parts(chunks: list[bytes], part_size: int, expected: list[tuple[bytes, bool]]) -> None:
    assert [(bytes(p), last) for p, last in _split_parts(iter(chunks), part_size)] == expected


# ---------------------------------------------------------------------------------------- against a server

s3 = pytest.mark.s3


@s3
def test_is_an_object_store(s3_bucket: S3ObjectStore) -> None:
    assert isinstance(s3_bucket, ObjectStore)
    assert s3_bucket.backend_name == "s3"
    assert s3_bucket.supports_presign is True
    s3_bucket.check()


@s3
def test_known_length_put_streams_and_round_trips(s3_bucket: S3ObjectStore) -> None:
    size = 20 * MiB
    tracemalloc.start()
    try:
        info = s3_bucket.put("site-a/cam-1/big.mp4", generated(size), length=size)
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got_md5, got_size = streamed_md5(s3_bucket.open("site-a/cam-1/big.mp4"))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected_md5, _ = streamed_md5(generated(size))
    assert info.size == size
    assert info.etag == expected_md5  # a single PUT: the ETag is the MD5
    assert (got_md5, got_size) == (expected_md5, size)
    assert put_peak < 2 * MiB, f"put held {put_peak / MiB:.1f} MiB for a {size // MiB} MiB object"
    assert read_peak < 2 * MiB, f"read held {read_peak / MiB:.1f} MiB for a {size // MiB} MiB object"


@s3
def test_unknown_length_put_is_multipart_one_part_in_memory(
    s3_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    size = 40 * MiB
    tracemalloc.start()
    try:
        info = s3_bucket.put("site-a/cam-1/unsized.mp4", generated(size))
        _, put_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected_md5, _ = streamed_md5(generated(size))
    assert info.size == size
    assert info.etag is not None
    assert info.etag.endswith("-3"), f"expected 3 parts of 16 MiB, got {info.etag}"
    assert streamed_md5(s3_bucket.open("site-a/cam-1/unsized.mp4")) == (expected_md5, size)
    assert put_peak < 20 * MiB, f"put held {put_peak / MiB:.1f} MiB: more than one 16 MiB part"
    assert incomplete_uploads(s3_server.client(), s3_bucket.bucket) == []


@s3
@pytest.mark.parametrize(
    ("size", "parts"),
    [
        (0, None),
        (1, None),
        (5 * MiB - 1, None),
        (5 * MiB, None),
        (5 * MiB + 1, 2),
        (10 * MiB, 2),
        (11 * MiB, 3),
    ],
)
def test_unknown_length_part_boundaries(
    s3_bucket: S3ObjectStore, s3_server: S3Server, size: int, parts: int | None
) -> None:
    store = store_like(s3_bucket, s3_server, part_size=5 * MiB)
    info = store.put("boundary", generated(size, chunk=1000 * 1000))
    expected_md5, _ = streamed_md5(generated(size))
    assert info.size == size
    if parts is None:
        assert info.etag == expected_md5, "fits in one part: sent as one PUT"
    else:
        assert info.etag is not None
        assert info.etag.endswith(f"-{parts}")
    assert streamed_md5(store.open("boundary")) == (expected_md5, size)


@s3
def test_put_from_a_file_object(s3_bucket: S3ObjectStore) -> None:
    import io

    data = pattern(300_000)
    s3_bucket.put("f1", io.BytesIO(data), length=len(data))
    s3_bucket.put("f2", io.BytesIO(data))
    assert b"".join(s3_bucket.open("f1")) == data
    assert b"".join(s3_bucket.open("f2")) == data


@s3
@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, None),
        (0, 1),
        (1, 10),
        (CHUNK_SIZE - 3, 7),
        (5, 3 * CHUNK_SIZE),
        (200_000, None),
        (299_999, None),
        (299_990, 100),
        (300_000, None),
        (400_000, 10),
        (10, 0),
    ],
)
def test_ranged_reads(s3_bucket: S3ObjectStore, offset: int, length: int | None) -> None:
    data = pattern(300_000)
    s3_bucket.put("ranged", [data], length=len(data))
    chunks = list(s3_bucket.open("ranged", offset=offset, length=length))
    end = None if length is None else offset + length
    assert b"".join(chunks) == data[offset:end]
    assert all(0 < len(c) <= CHUNK_SIZE for c in chunks)


@s3
def test_missing_objects(s3_bucket: S3ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        s3_bucket.open("nope")
    with pytest.raises(ObjectNotFound):
        s3_bucket.open("nope", offset=10)
    with pytest.raises(ObjectNotFound):
        s3_bucket.open("nope", length=0)
    with pytest.raises(ObjectNotFound):
        s3_bucket.stat("nope")
    assert s3_bucket.exists("nope") is False


@s3
def test_stat_and_exists(s3_bucket: S3ObjectStore) -> None:
    s3_bucket.put("a/b", [b"hello ", b"world"], length=11)
    info = s3_bucket.stat("a/b")
    assert (info.key, info.size, info.etag) == (
        "a/b",
        11,
        hashlib.md5(b"hello world", usedforsecurity=False).hexdigest(),
    )
    assert info.last_modified is not None
    assert info.last_modified.tzinfo is not None
    assert s3_bucket.exists("a/b") is True
    assert s3_bucket.exists("a") is False


@s3
def test_list_by_prefix(s3_bucket: S3ObjectStore) -> None:
    keys = [
        "a.x",
        "a/b",
        "a/c/d",
        "a0",
        "site-a/cam-01/2026-11-01.mp4",
        "site-a/cam-01/2026-11-02.mp4",
        "site-a/cam-02/2026-11-01.mp4",
        "site-b/cam-01/2026-11-01.mp4",
    ]
    for key in keys:
        s3_bucket.put(key, [key.encode()], length=len(key))
    assert [i.key for i in s3_bucket.list()] == sorted(keys)
    assert [i.key for i in s3_bucket.list("site-a/cam-0")] == [
        "site-a/cam-01/2026-11-01.mp4",
        "site-a/cam-01/2026-11-02.mp4",
        "site-a/cam-02/2026-11-01.mp4",
    ]
    assert [i.key for i in s3_bucket.list("a")] == ["a.x", "a/b", "a/c/d", "a0"]
    assert [(i.key, i.size) for i in s3_bucket.list("site-b/")] == [
        ("site-b/cam-01/2026-11-01.mp4", len("site-b/cam-01/2026-11-01.mp4"))
    ]
    assert list(s3_bucket.list("nothing/")) == []
    with pytest.raises(InvalidObjectKey):
        list(s3_bucket.list("../"))


@s3
def test_delete_many(s3_bucket: S3ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 2)  # so five keys take three requests
    for key in ("s/1", "s/2", "s/3", "keep"):
        s3_bucket.put(key, [b"x"], length=1)
    assert s3_bucket.delete_many(iter(["s/1", "never-existed", "s/2", "s/3", "s/1"])) == []
    assert [i.key for i in s3_bucket.list()] == ["keep"]
    with pytest.raises(InvalidObjectKey):
        s3_bucket.delete_many(["keep", "../x"])
    assert s3_bucket.exists("keep"), "a bad key is refused before anything is deleted"


@s3
@pytest.mark.parametrize("key", ["../../etc/passwd", "/abs", "a//b", "a/./b", ".hidden", "a\\b", "a\x00"])
def test_bad_keys_refused(s3_bucket: S3ObjectStore, key: str) -> None:
    for call in (
        lambda: s3_bucket.put(key, [b"x"]),
        lambda: s3_bucket.open(key),
        lambda: s3_bucket.stat(key),
        lambda: s3_bucket.presigned_put(key, expires=timedelta(minutes=1)),
        lambda: s3_bucket.presigned_get(key, expires=timedelta(minutes=1)),
    ):
        with pytest.raises(InvalidObjectKey):
            call()
    assert list(s3_bucket.list()) == []


class Boom(Exception):
    pass


def failing_source(good_chunks: int) -> Iterator[bytes]:
    for _ in range(good_chunks):
        yield b"x" * CHUNK_SIZE
    raise Boom("source failed mid-stream")


@s3
@pytest.mark.parametrize("length", [100 * CHUNK_SIZE, None])
def test_failed_stream_leaves_no_object(
    s3_bucket: S3ObjectStore, s3_server: S3Server, length: int | None
) -> None:
    store = store_like(s3_bucket, s3_server, part_size=5 * MiB)
    with pytest.raises(Boom):
        store.put("clip", failing_source(90), length=length)  # 5.6 MiB: past the first part when unsized
    assert not store.exists("clip")
    assert incomplete_uploads(s3_server.client(), s3_bucket.bucket) == []


@s3
@pytest.mark.parametrize("declared", [9, 11, 0])
def test_length_mismatch_leaves_no_object(s3_bucket: S3ObjectStore, declared: int) -> None:
    with pytest.raises(IntegrityError):
        s3_bucket.put("sized", [b"01234", b"56789"], length=declared)
    assert not s3_bucket.exists("sized"), "a longer source must not leave its first bytes stored"


@s3
def test_content_md5_match(s3_bucket: S3ObjectStore) -> None:
    data = pattern(300_000)
    s3_bucket.put("sized", generated(300_000), length=300_000, content_md5=md5_b64(data))
    s3_bucket.put("unsized", generated(300_000), content_md5=md5_b64(data))
    assert b"".join(s3_bucket.open("sized")) == data
    assert b"".join(s3_bucket.open("unsized")) == data


@s3
def test_content_md5_mismatch_raises_and_leaves_no_object(s3_bucket: S3ObjectStore) -> None:
    data = pattern(300_000)
    wrong = md5_b64(data[:-1] + b"!")
    with pytest.raises(IntegrityError):
        s3_bucket.put("bad", [data], length=len(data), content_md5=wrong)
    assert not s3_bucket.exists("bad")


@s3
def test_wrong_content_md5_is_refused_by_the_store(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    require_enforcement(s3_server, "Content-MD5 (it stores the object; the client can only delete it after)")
    data = pattern(300_000)
    with pytest.raises(IntegrityError, match="BadDigest"):
        s3_bucket.put("bad", [data], length=len(data), content_md5=md5_b64(b"other bytes"))
    assert not s3_bucket.exists("bad")
    # Refused by the store, so the version already there is untouched.
    s3_bucket.put("kept", [b"before"], length=6)
    with pytest.raises(IntegrityError, match="BadDigest"):
        s3_bucket.put("kept", [data], length=len(data), content_md5=md5_b64(b"other bytes"))
    assert b"".join(s3_bucket.open("kept")) == b"before"


@s3
def test_multipart_content_md5_mismatch_is_aborted_before_completion(
    s3_bucket: S3ObjectStore, s3_server: S3Server
) -> None:
    store = store_like(s3_bucket, s3_server, part_size=5 * MiB)
    size = 11 * MiB
    with pytest.raises(IntegrityError, match="Content-MD5"):
        store.put("multi", generated(size), content_md5=md5_b64(b"not these bytes"))
    assert not store.exists("multi")
    assert incomplete_uploads(s3_server.client(), s3_bucket.bucket) == []
    # The right digest of the whole object (not of a part) is accepted.
    expected = hashlib.md5(usedforsecurity=False)
    for chunk in generated(size):
        expected.update(chunk)
    info = store.put("multi", generated(size), content_md5=base64.b64encode(expected.digest()).decode())
    assert info.size == size


# ---------------------------------------------------------------------------------------- presigned URLs


@s3
def test_presigned_put_with_bound_md5_accepts_the_right_bytes(s3_bucket: S3ObjectStore) -> None:
    data = pattern(100_000)
    request = s3_bucket.presigned_put("upload/x.mp4", expires=timedelta(minutes=5), content_md5=md5_b64(data))
    assert request.method == "PUT"
    assert request.headers == {"Content-MD5": md5_b64(data)}
    signed = parse_qs(urlsplit(request.url).query)["X-Amz-SignedHeaders"]
    assert signed == ["content-md5;host"]
    status, body = send("PUT", request.url, data, request.headers)
    assert status == 200, body
    assert b"".join(s3_bucket.open("upload/x.mp4")) == data


@s3
def test_presigned_put_without_md5(s3_bucket: S3ObjectStore) -> None:
    request = s3_bucket.presigned_put("upload/y", expires=timedelta(minutes=5))
    assert request.headers == {}
    status, body = send("PUT", request.url, b"anything")
    assert status == 200, body
    assert b"".join(s3_bucket.open("upload/y")) == b"anything"


@s3
def test_presigned_put_refuses_other_bytes(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    require_enforcement(s3_server, "Content-MD5 or signatures on presigned PUTs")
    data = pattern(100_000)
    other = data[:-1] + b"!"
    request = s3_bucket.presigned_put("upload/x.mp4", expires=timedelta(minutes=5), content_md5=md5_b64(data))
    # Other bytes with the bound header: the digest does not match.
    status, _ = send("PUT", request.url, other, request.headers)
    assert status in (400, 403)
    # Other bytes with their own, correct digest: the signature does not cover that header value.
    status, _ = send("PUT", request.url, other, {"Content-MD5": md5_b64(other)})
    assert status == 403
    # Other bytes with no digest at all: content-md5 is a signed header, so it must be sent.
    status, _ = send("PUT", request.url, other)
    assert status == 403
    assert not s3_bucket.exists("upload/x.mp4")


@s3
def test_presigned_put_tampered_or_moved_is_refused(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    require_enforcement(s3_server, "presigned URL signatures")
    data = b"payload"
    request = s3_bucket.presigned_put("upload/x", expires=timedelta(minutes=5), content_md5=md5_b64(data))
    signature = parse_qs(urlsplit(request.url).query)["X-Amz-Signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    status, _ = send("PUT", request.url.replace(signature, flipped), data, request.headers)
    assert status == 403
    status, _ = send("PUT", request.url.replace("/upload/x?", "/upload/other?"), data, request.headers)
    assert status == 403
    longer = request.url.replace("X-Amz-Expires=300", "X-Amz-Expires=604800")
    assert longer != request.url
    status, _ = send("PUT", longer, data, request.headers)
    assert status == 403
    assert list(s3_bucket.list()) == []
    status, _ = send("PUT", request.url, data, request.headers)
    assert status == 200, "the untampered URL works, so the refusals above were about tampering"


@s3
def test_presigned_put_expires(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    require_enforcement(s3_server, "presigned URL expiry")
    past = store_like(s3_bucket, s3_server, signing_clock=FixedClock(datetime.now(UTC) - timedelta(hours=2)))
    request = past.presigned_put("late", expires=timedelta(hours=1))
    status, _ = send("PUT", request.url, b"x")
    assert status == 403
    assert not s3_bucket.exists("late")


@s3
def test_presigned_get(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    data = pattern(70_000)
    s3_bucket.put("footage/clip", [data], length=len(data))
    request = s3_bucket.presigned_get("footage/clip", expires=timedelta(minutes=5))
    assert (request.method, request.headers) == ("GET", {})
    status, body = send("GET", request.url)
    assert status == 200
    assert body == data


@s3
def test_presigned_get_tampered_is_refused(s3_bucket: S3ObjectStore, s3_server: S3Server) -> None:
    require_enforcement(s3_server, "presigned URL signatures")
    s3_bucket.put("footage/clip", [b"secret"], length=6)
    s3_bucket.put("footage/other", [b"other"], length=5)
    request = s3_bucket.presigned_get("footage/clip", expires=timedelta(minutes=5))
    status, _ = send("GET", request.url.replace("/footage/clip?", "/footage/other?"))
    assert status == 403


@s3
@pytest.mark.parametrize("expires", [timedelta(0), timedelta(days=8)])
def test_presign_expiry_bounds(s3_bucket: S3ObjectStore, expires: timedelta) -> None:
    with pytest.raises(ValueError, match="between"):
        s3_bucket.presigned_put("k", expires=expires)
    with pytest.raises(ValueError, match="between"):
        s3_bucket.presigned_get("k", expires=expires)


@s3
def test_presign_refuses_a_malformed_md5(s3_bucket: S3ObjectStore) -> None:
    with pytest.raises(IntegrityError):
        s3_bucket.presigned_put("k", expires=timedelta(minutes=1), content_md5="nope")


# ---------------------------------------------------------------------------------------- readiness


@s3
def test_check_raises_on_a_missing_bucket(s3_server: S3Server) -> None:
    store = s3_server.store("cctv-gov-test-no-such-bucket")
    with pytest.raises(StorageError, match="does not exist"):
        store.check()
    with pytest.raises(StorageError):
        store.put("k", [b"x"], length=1)


def test_check_raises_when_the_server_is_down() -> None:
    store = S3ObjectStore(f"127.0.0.1:{free_port()}", "bucket", "a", "b")
    started = time.monotonic()
    with pytest.raises(StorageError):
        store.check()
    with pytest.raises(StorageError, match="cannot reach"):
        store.put("k", [b"x"], length=1)
    assert time.monotonic() - started < 30


@s3
def test_ensure_bucket(s3_server: S3Server) -> None:
    store = s3_server.store("cctv-gov-test-ensure")
    try:
        store.ensure_bucket()
        store.ensure_bucket()  # idempotent
        store.check()
    finally:
        remove_bucket(s3_server.client(), "cctv-gov-test-ensure")
    locked = s3_server.store("cctv-gov-test-locked")
    try:
        locked.ensure_bucket(object_lock=True)
        config = s3_server.client().get_object_lock_config("cctv-gov-test-locked")
        assert config is not None
        locked.put("x", [b"x"], length=1)
    finally:
        remove_bucket(s3_server.client(), "cctv-gov-test-locked")
