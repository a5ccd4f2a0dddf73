"""Objects in an S3-compatible bucket (Ceph radosgw, MinIO, AWS S3).

Reads, listing, deletes, stat and presigned GETs go through the minio SDK. Uploads and presigned PUTs use a
small AWS Signature V4 implementation below, for two reasons the SDK cannot meet:

* a put must stream: the SDK holds each part (up to 16 MiB, several in parallel) in memory even when the
  length is known, and sends Content-MD5 for the whole object only when the object fits in one part;
* a presigned PUT must bind ``Content-MD5`` into the signature, so the store itself refuses other bytes
  (the SDK signs only ``host``).

How a put is sent:

* length known (up to 5 GiB): one PUT whose body is streamed from the source; ``Content-MD5`` is sent when
  given, so the store refuses a mismatch (400 BadDigest) and never creates the object. Without it the
  store's ETag (the MD5 of what it stored) is compared with the MD5 of what was sent.
* length unknown (or over 5 GiB): the source is cut into parts held in memory one at a time. If it ends
  within the first part, that part is sent as one PUT with Content-MD5. Otherwise a multipart upload: each
  part carries its own Content-MD5, and the whole-object MD5 is compared with ``content_md5`` *before*
  CompleteMultipartUpload; on any mismatch or error the upload is aborted, so no object appears.

radosgw answers CompleteMultipartUpload with an empty ETag, so a put always ends with a HEAD (stat).

Deletes erase every version. On a versioned bucket (every bucket with Object Lock is one) a plain DELETE only
puts a delete marker on top and keeps the bytes as a noncurrent version, so ``delete_many`` lists the versions
and delete markers of the keys and deletes each by its version id. The store refuses to delete a version under
legal hold; that key is reported as not deleted and stays readable, with no delete marker put over it.
Legal holds are set and read per version through the SDK. Bucket set-up (Object Lock, versioning, lifecycle)
is in ``s3_admin``.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import http.client
import math
import os
import re
import ssl
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import timedelta
from typing import BinaryIO
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import unescape as xml_unescape

import certifi
import urllib3
import urllib3.exceptions
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import MinioException, S3Error
from urllib3.response import BaseHTTPResponse

from cctv_gov.kit.clock import Clock, SystemClock
from cctv_gov.kit.storage.base import (
    CHUNK_SIZE,
    IntegrityError,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    PresignedRequest,
    StorageError,
    check_expiry,
    check_length,
    check_range,
    decode_content_md5,
    empty_reader,
    iter_chunks,
)
from cctv_gov.kit.storage.keys import validate_key, validate_prefix
from cctv_gov.kit.storage.sigv4 import (
    UNSIGNED_PAYLOAD,
    as_utc,
    canonical_query,
    presign_url,
    sign_headers,
    uri_encode,
)

PART_SIZE = 16 * 1024 * 1024
MAX_SINGLE_PUT = 5 * 1024**3
MAX_PARTS = 10_000
DELETE_BATCH = 1000
LIST_FOLDER_FROM = 8
"""delete_many lists the versions of each key on its own, or, when at least this many keys share a folder,
lists that folder once."""
REQUEST_TIMEOUT = 60.0
"""Seconds a single socket operation may stall; a large upload may take much longer in total."""

_INTEGRITY_CODES = frozenset({"BadDigest", "InvalidDigest", "IncompleteBody"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
_GONE_CODES = _NOT_FOUND_CODES | {"NoSuchVersion"}
# What stores answer for an object that never had a legal hold (radosgw: the second).
_NO_HOLD_CODES = frozenset({"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"})
_MD5_HEX = re.compile(r"[0-9a-f]{32}")


# ---------------------------------------------------------------------------------------- helpers


def _error_from_response(status: int, body: bytes, what: str) -> StorageError:
    text = body.decode("utf-8", "replace")
    code_match = re.search(r"<Code>([^<]*)</Code>", text)
    code = xml_unescape(code_match.group(1)) if code_match else f"HTTP {status}"
    message_match = re.search(r"<Message>([^<]*)</Message>", text)
    message = f"{code}: {xml_unescape(message_match.group(1))}" if message_match else code
    return _error_for_code(code, f"{what}: {message}")


def _error_for_code(code: str | None, message: str) -> StorageError:
    if code in _INTEGRITY_CODES:
        return IntegrityError(message)
    if code in _NOT_FOUND_CODES:
        return ObjectNotFound(message)
    return StorageError(message)


@contextlib.contextmanager
def _translate(what: str) -> Iterator[None]:
    """Turn the SDK's and the transport's exceptions into StorageError subclasses."""
    try:
        yield
    except S3Error as exc:
        raise _error_for_code(exc.code, f"{what}: {exc.code}: {exc.message}") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageError(f"{what}: {exc}") from exc


def _exact_length(chunks: Iterator[bytes | bytearray], length: int, key: str) -> Iterator[bytes | bytearray]:
    """Pass the chunks through, refusing a source longer or shorter than ``length``.

    The last chunk is held back until the source is known to end there: once the store has ``length``
    bytes it completes the PUT, so a longer source must be refused before its last declared byte is sent.
    """
    sent = 0
    pending: bytes | bytearray | None = None
    for chunk in chunks:
        if sent + len(chunk) > length:
            raise IntegrityError(f"more than the declared {length} bytes for {key!r}")
        if pending is not None:
            yield pending
        pending = chunk
        sent += len(chunk)
    if sent != length:
        raise IntegrityError(f"got {sent} bytes for {key!r}, declared {length}")
    if pending is not None:
        yield pending


def _split_parts(chunks: Iterator[bytes], part_size: int) -> Iterator[tuple[bytearray, bool]]:
    """Cut the stream into parts of ``part_size`` (the last may be shorter, or empty for an empty
    source), each with a flag saying whether it is the last one. One part is in memory at a time."""
    current: memoryview | None = None

    def next_chunk() -> memoryview | None:
        for chunk in chunks:
            if chunk:
                return memoryview(chunk)
        return None

    current = next_chunk()
    while True:
        part = bytearray()
        while current is not None and len(part) < part_size:
            take = part_size - len(part)
            part += current[:take]
            current = current[take:] if len(current) > take else next_chunk()
        last = current is None
        yield part, last
        if last:
            return


def _http_pool() -> urllib3.PoolManager:
    """The SDK's own defaults, except that a refused connection is retried once, not five times with
    backoff: check() is a readiness probe and must answer "down" within a second, not after six."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=REQUEST_TIMEOUT),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=5, connect=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def _b64_md5(data: bytes | bytearray) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


# ---------------------------------------------------------------------------------------- the store


class S3ObjectStore:
    backend_name = "s3"
    supports_presign = True
    supports_legal_hold = True
    """With a bucket created with Object Lock; on one without, set_legal_hold raises StorageError."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        secure: bool = False,
        signing_clock: Clock | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        if "://" in endpoint or "/" in endpoint:
            raise ValueError("endpoint is host[:port], without a scheme or path")
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 refuses parts smaller than 5 MiB")
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.secure = secure
        self._access_key = access_key
        self._secret_key = secret_key
        # Signatures are checked against the S3 server's own clock, so this is the wall clock: never the
        # fixed clock a test moves for retention. Injectable to test expiry of presigned URLs.
        self._clock = signing_clock if signing_clock is not None else SystemClock()
        self._part_size = part_size
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            secure=secure,
            http_client=_http_pool(),
        )
        host, _, port = (
            endpoint.rpartition(":") if endpoint.rpartition(":")[2].isdigit() else (endpoint, "", "")
        )
        self._host = host
        self._port = int(port) if port else (443 if secure else 80)
        # Clients leave a default port out of the Host header, and the signature covers Host.
        self._host_header = host if self._port == (443 if secure else 80) else f"{host}:{self._port}"

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.endpoint!r}, {self.bucket!r})"

    @property
    def client(self) -> Minio:
        """The SDK client on this store's endpoint and key, for bucket administration (``s3_admin``)."""
        return self._client

    # ------------------------------------------------------------------ raw requests (uploads)

    def _connection(self) -> http.client.HTTPConnection:
        if self.secure:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=REQUEST_TIMEOUT, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=REQUEST_TIMEOUT)

    def _request(
        self,
        method: str,
        key: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Iterable[bytes | bytearray] = (),
        payload_hash: str = UNSIGNED_PAYLOAD,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        path = f"/{self.bucket}/{key}"
        query = query or {}
        signed = sign_headers(
            method=method,
            host=self._host_header,
            path=path,
            query=query,
            headers=headers or {},
            payload_hash=payload_hash,
            access_key=self._access_key,
            secret_key=self._secret_key,
            region=self.region,
            now=self._clock.now(),
        )
        target = uri_encode(path, keep_slash=True) + (f"?{canonical_query(query)}" if query else "")
        # The first piece is taken before anything is sent: a source that fails at once (or is longer than
        # a declared length of 0, which the headers alone would complete) must not reach the store.
        pieces = iter(body)
        first = next(pieces, None)
        connection = self._connection()
        try:
            try:
                connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in signed.items():
                    connection.putheader(name, value)
                connection.endheaders()
            except OSError as exc:
                raise StorageError(f"{method} {key!r}: cannot reach {self.endpoint}: {exc}") from exc
            send_error: OSError | None = None
            try:
                if first is not None:
                    connection.send(first)
                for piece in pieces:
                    connection.send(piece)
            except OSError as exc:
                # The store may refuse early (a bad signature, say) and close; its answer is still readable.
                send_error = exc
            try:
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise StorageError(f"{method} {key!r}: {exc}") from (send_error or exc)
            return response.status, response.headers, data
        finally:
            connection.close()

    def _put_single(
        self, key: str, chunks: Iterator[bytes | bytearray], length: int, content_md5: str | None
    ) -> None:
        digest = hashlib.md5(usedforsecurity=False)

        def body() -> Iterator[bytes | bytearray]:
            for chunk in _exact_length(chunks, length, key):
                digest.update(chunk)
                yield chunk

        headers = {"Content-Length": str(length), "Content-Type": "application/octet-stream"}
        if content_md5 is not None:
            headers["Content-MD5"] = content_md5
        status, response_headers, data = self._request("PUT", key, headers=headers, body=body())
        if status != 200:
            raise _error_from_response(status, data, f"PUT {key!r}")
        if content_md5 is not None and base64.b64encode(digest.digest()).decode() != content_md5:
            # A store that enforces Content-MD5 (radosgw, MinIO, AWS) refused this already; one that does
            # not (moto) stored it, so take it back.
            self._delete_quietly(key, response_headers.get("x-amz-version-id"))
            raise IntegrityError(f"Content-MD5 does not match the bytes sent for {key!r}")
        etag = (response_headers.get("ETag") or "").strip('"')
        if _MD5_HEX.fullmatch(etag) and etag != digest.hexdigest():
            # Only reachable without content_md5: with it the store itself refuses different bytes.
            self._delete_quietly(key, response_headers.get("x-amz-version-id"))
            raise IntegrityError(f"the store received other bytes than were sent for {key!r}")

    def _put_multipart(
        self, key: str, chunks: Iterator[bytes], length: int | None, expected_md5: bytes | None
    ) -> None:
        part_size = self._part_size if length is None else max(self._part_size, math.ceil(length / MAX_PARTS))
        parts = _split_parts(chunks, part_size)
        part, last = next(parts)
        whole = hashlib.md5(usedforsecurity=False)
        whole.update(part)
        if last:
            if length is not None and len(part) != length:
                raise IntegrityError(f"got {len(part)} bytes for {key!r}, declared {length}")
            if expected_md5 is not None and whole.digest() != expected_md5:
                raise IntegrityError(f"Content-MD5 does not match the bytes received for {key!r}")
            self._put_single(key, iter((part,)), len(part), _b64_md5(part))
            return

        upload_id = self._create_multipart(key)
        try:
            etags: list[str] = []
            size = 0
            while True:
                size += len(part)
                if len(etags) == MAX_PARTS:
                    raise StorageError(f"{key!r} needs more than {MAX_PARTS} parts")
                etags.append(self._upload_part(key, upload_id, len(etags) + 1, part))
                if last:
                    break
                del part  # only one part in memory at a time
                part, last = next(parts)
                whole.update(part)
            if length is not None and size != length:
                raise IntegrityError(f"got {size} bytes for {key!r}, declared {length}")
            if expected_md5 is not None and whole.digest() != expected_md5:
                raise IntegrityError(f"Content-MD5 does not match the bytes received for {key!r}")
            self._complete_multipart(key, upload_id, etags)
        except BaseException:
            with contextlib.suppress(StorageError):
                self._request("DELETE", key, query={"uploadId": upload_id})
            raise

    def _create_multipart(self, key: str) -> str:
        status, _, data = self._request(
            "POST", key, query={"uploads": ""}, headers={"Content-Type": "application/octet-stream"}
        )
        match = re.search(rb"<UploadId>([^<]+)</UploadId>", data)
        if status != 200 or match is None:
            raise _error_from_response(status, data, f"starting the upload of {key!r}")
        return xml_unescape(match.group(1).decode())

    def _upload_part(self, key: str, upload_id: str, number: int, part: bytearray) -> str:
        md5 = hashlib.md5(part, usedforsecurity=False)
        status, headers, data = self._request(
            "PUT",
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            headers={
                "Content-Length": str(len(part)),
                "Content-MD5": base64.b64encode(md5.digest()).decode(),
            },
            body=(part,),
        )
        if status != 200:
            raise _error_from_response(status, data, f"uploading part {number} of {key!r}")
        etag = (headers.get("ETag") or "").strip('"')
        if not etag:
            raise StorageError(f"no ETag for part {number} of {key!r}")
        return etag

    def _complete_multipart(self, key: str, upload_id: str, etags: builtins.list[str]) -> None:
        body = (
            "<CompleteMultipartUpload>"
            + "".join(
                f"<Part><PartNumber>{number}</PartNumber><ETag>&quot;{xml_escape(etag)}&quot;</ETag></Part>"
                for number, etag in enumerate(etags, start=1)
            )
            + "</CompleteMultipartUpload>"
        ).encode()
        status, _, data = self._request(
            "POST",
            key,
            query={"uploadId": upload_id},
            headers={"Content-Length": str(len(body)), "Content-Type": "application/xml"},
            body=(body,),
            payload_hash=hashlib.sha256(body).hexdigest(),
        )
        # S3 may answer 200 and still report an error in the body.
        if status != 200 or b"<Error>" in data:
            raise _error_from_response(status, data, f"completing the upload of {key!r}")

    def _delete_quietly(self, key: str, version_id: str | None = None) -> None:
        """Take back an object just stored: by its version id when the store gave one, so a versioned
        bucket keeps neither the bytes nor a delete marker."""
        with contextlib.suppress(MinioException, urllib3.exceptions.HTTPError, OSError):
            self._client.remove_object(self.bucket, key, version_id=version_id)

    # ------------------------------------------------------------------ the interface

    def put(
        self,
        key: str,
        data: BinaryIO | Iterable[bytes],
        *,
        length: int | None = None,
        content_md5: str | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        check_length(length)
        expected_md5 = decode_content_md5(content_md5) if content_md5 is not None else None
        chunks = iter_chunks(data)
        if length is not None and length <= MAX_SINGLE_PUT:
            self._put_single(key, chunks, length, content_md5)
        else:
            self._put_multipart(key, chunks, length, expected_md5)
        return self.stat(key)

    def open(self, key: str, *, offset: int = 0, length: int | None = None) -> ObjectReader:
        validate_key(key)
        check_range(offset, length)
        if length == 0:
            self.stat(key)
            return empty_reader()
        try:
            with _translate(f"reading {key!r}"):
                response = self._client.get_object(self.bucket, key, offset=offset, length=length or 0)
        except StorageError as exc:
            if isinstance(exc.__cause__, S3Error) and exc.__cause__.code == "InvalidRange":
                self.stat(key)  # the range starts at or past the end of an existing object
                return empty_reader()
            raise

        def close() -> None:
            response.close()
            response.release_conn()

        return ObjectReader(_stream(response, key), close)

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with _translate(f"stat {key!r}"):
            obj = self._client.stat_object(self.bucket, key)
        etag = obj.etag.strip('"') if obj.etag else None
        return ObjectInfo(key=key, size=obj.size or 0, etag=etag, last_modified=obj.last_modified)

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete_many(self, keys: Iterable[str]) -> builtins.list[str]:
        keys = [validate_key(key) for key in keys]
        versions = self._versions(keys)
        doomed = [(key, version_id) for key in sorted(versions) for version_id, _ in versions[key]]
        failed: set[str] = set()
        for start in range(0, len(doomed), DELETE_BATCH):
            batch = doomed[start : start + DELETE_BATCH]
            with _translate(f"deleting {len(batch)} object versions"):
                # remove_objects is lazy: nothing is deleted until its error iterator is consumed.
                errors = self._client.remove_objects(
                    self.bucket, [DeleteObject(key, version_id) for key, version_id in batch]
                )
                for error in errors:
                    if error.code in _GONE_CODES:
                        continue
                    # An error that names no object fails the whole batch: nothing is reported as erased
                    # that may not be.
                    failed.update([error.name] if error.name else [key for key, _ in batch])
        return [key for key in dict.fromkeys(keys) if key in failed]

    def _versions(self, keys: Collection[str]) -> dict[str, builtins.list[tuple[str | None, bool]]]:
        """Every stored version of each key that has any: (version id, whether it is a delete marker).

        A version written after the listing is not seen (footage keys are written once)."""
        wanted = set(keys)
        folders: dict[str, list[str]] = {}
        for key in sorted(wanted):
            folders.setdefault(key.rpartition("/")[0], []).append(key)
        prefixes: list[str] = []
        for folder, members in folders.items():
            if len(members) >= LIST_FOLDER_FROM:
                prefixes.append(f"{folder}/" if folder else "")
            else:
                prefixes.extend(members)
        found: dict[str, dict[str | None, bool]] = {}
        for prefix in prefixes:
            with _translate(f"listing the versions of {prefix or '/'!r}"):
                # Not recursive: a key's own listing must not descend into "key/..."; a folder's, into
                # subfolders.
                for obj in self._client.list_objects(
                    self.bucket, prefix=prefix or None, include_version=True
                ):
                    if obj.object_name in wanted and not obj.is_dir:
                        found.setdefault(obj.object_name, {})[obj.version_id] = bool(obj.is_delete_marker)
        return {key: list(by_id.items()) for key, by_id in found.items()}

    def _data_versions(self, key: str) -> builtins.list[str | None]:
        """The version ids of the key's stored bytes (not its delete markers); ObjectNotFound if none."""
        data = [version_id for version_id, marker in self._versions([key]).get(key, []) if not marker]
        if not data:
            raise ObjectNotFound(key)
        return data

    def set_legal_hold(self, key: str, on: bool) -> None:
        validate_key(key)
        what = f"{'setting' if on else 'releasing'} the legal hold on {key!r}"
        for version_id in self._data_versions(key):
            with _translate(what):
                try:
                    if on:
                        self._client.enable_object_legal_hold(self.bucket, key, version_id)
                    else:
                        self._client.disable_object_legal_hold(self.bucket, key, version_id)
                except S3Error as exc:
                    if exc.code != "InvalidRequest":
                        raise
                    raise StorageError(
                        f"{what}: bucket {self.bucket!r} has no S3 Object Lock ({exc.code}: {exc.message}); "
                        "a bucket gets it only when created: see 'cctv-gov storage setup'"
                    ) from exc

    def legal_hold(self, key: str) -> bool:
        validate_key(key)
        for version_id in self._data_versions(key):
            with _translate(f"reading the legal hold of {key!r}"):
                try:
                    if not self._client.is_object_legal_hold_enabled(self.bucket, key, version_id):
                        return False
                except S3Error as exc:
                    if exc.code in _NO_HOLD_CODES:
                        return False  # never held
                    if exc.code == "InvalidRequest":
                        return False  # a bucket without Object Lock holds nothing
                    raise
        return True

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        with _translate(f"listing {prefix!r}"):
            for obj in self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True):
                if obj.object_name is None or obj.is_dir:
                    continue
                yield ObjectInfo(
                    key=obj.object_name,
                    size=obj.size or 0,
                    etag=obj.etag.strip('"') if obj.etag else None,
                    last_modified=obj.last_modified,
                )

    def presigned_put(
        self, key: str, *, expires: timedelta, content_md5: str | None = None
    ) -> PresignedRequest:
        validate_key(key)
        seconds = check_expiry(expires)
        headers: dict[str, str] = {}
        if content_md5 is not None:
            decode_content_md5(content_md5)
            headers["Content-MD5"] = content_md5
        url = presign_url(
            method="PUT",
            scheme="https" if self.secure else "http",
            host=self._host_header,
            path=f"/{self.bucket}/{key}",
            access_key=self._access_key,
            secret_key=self._secret_key,
            region=self.region,
            expires=seconds,
            now=self._clock.now(),
            signed_headers={name.lower(): value for name, value in headers.items()},
        )
        return PresignedRequest(method="PUT", url=url, headers=headers)

    def presigned_get(self, key: str, *, expires: timedelta) -> PresignedRequest:
        validate_key(key)
        check_expiry(expires)
        with _translate(f"presigning GET {key!r}"):
            url = self._client.get_presigned_url(
                "GET", self.bucket, key, expires=expires, request_date=as_utc(self._clock.now())
            )
        return PresignedRequest(method="GET", url=url, headers={})

    def check(self) -> None:
        with _translate(f"checking bucket {self.bucket!r} at {self.endpoint}"):
            found = self._client.bucket_exists(self.bucket)
        if not found:
            raise StorageError(f"bucket {self.bucket!r} does not exist at {self.endpoint}")

    def ensure_bucket(self, object_lock: bool = False) -> None:
        """Create the bucket if it does not exist (with S3 Object Lock, which turns on versioning)."""
        with _translate(f"creating bucket {self.bucket!r}"):
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket, object_lock=object_lock)
            except S3Error:
                if not self._client.bucket_exists(self.bucket):  # else created meanwhile by someone else
                    raise


def _stream(response: BaseHTTPResponse, key: str) -> Iterator[bytes]:
    try:
        yield from response.stream(CHUNK_SIZE)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageError(f"reading {key!r}: {exc}") from exc
