"""The agent's HTTP client for the cctv-gov service (standard library only).

Every call sends JSON with the agent's bearer token, a ``User-Agent`` naming this version and a fresh
``X-Request-ID``, and verifies TLS. Every failure becomes a :class:`ServiceError` whose ``retryable`` flag
tells the caller whether trying the same call again later can help.

Redirects are never followed: urllib would resend the ``Authorization`` header to wherever the
redirect points, so a redirect is reported as an error instead.

Neither the token nor any request or response body is ever logged.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from cctv_ingest import __version__
from cctv_ingest.config import ServiceConfig, is_loopback_host, normalize_base_url
from cctv_ingest.secret import Secret

logger = logging.getLogger(__name__)

USER_AGENT = f"cctv-ingest/{__version__}"
# JSON answers from the service are small; anything larger is not the service talking.
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
SEND_BUFFER_BYTES = 4 * 1024 * 1024
_TOKEN_CHARS = frozenset(chr(code) for code in range(0x21, 0x7F))
# Header names are RFC 9110 tokens; values are visible ASCII and spaces (no CR or LF to split a header).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e]*")
# What the store answers on a failed PUT is small XML; read at most this much of it.
MAX_STORE_ERROR_BYTES = 64 * 1024
_XML_FIELD = re.compile(r"<(Code|Message|RequestId)>([^<]{0,500})</\1>")


def make_tls_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """Certificates and host names verified, TLS 1.2 or newer; ``ca_file`` adds to the system's CAs."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


class ServiceError(Exception):
    """A call to the service failed.

    ``status`` is the HTTP status, or None when no HTTP answer arrived (connection refused, timeout, TLS).
    ``code`` is the service's stable error code, or one of the agent's own: ``unexpected_response``,
    ``unexpected_redirect``, ``connection_error``, ``timeout``, ``tls_error``.
    ``request_id`` is the service's id for the call when it gave one, else the ``X-Request-ID`` sent.
    ``retryable`` is True for 5xx, 429, connection errors and timeouts; False for other 4xx, redirects and
    failed certificate checks, which need a person to change something first.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str,
        retryable: bool,
        *,
        details: object = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id, retryable)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retryable = retryable
        self.details = details
        self.retry_after = retry_after
        """Seconds the service asked us to wait (``Retry-After``), when it said."""

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no HTTP response"
        return f"{self.code}: {self.message} ({where}, request id {self.request_id})"


class BodyReadError(Exception):
    """Reading the body to upload failed (the local file, not the network); ``__cause__`` says how."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(f"reading the file to upload failed: {cause.strerror or type(cause).__name__}")
        self.cause = cause


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None  # urllib then raises HTTPError with the 3xx status


class ServiceClient:
    """A small JSON-over-HTTPS client for the cctv-gov API; later features build on :meth:`request`."""

    def __init__(
        self,
        base_url: str,
        token: str | Secret,
        *,
        timeout: float,
        ca_file: str | Path | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        self.base_url = normalize_base_url(base_url, allow_insecure_http=allow_insecure_http)
        secret = token if isinstance(token, Secret) else Secret(token)
        value = secret.reveal()
        if not value or not set(value) <= _TOKEN_CHARS:
            raise ValueError("token must be printable ASCII without spaces")
        self._token = secret
        if not timeout > 0:
            raise ValueError("timeout must be more than 0 seconds")
        self.timeout = timeout
        self.allow_insecure_http = allow_insecure_http
        context = make_tls_context(ca_file)
        self._tls = context
        self._uploads: set[http.client.HTTPConnection] = set()
        self._uploads_lock = threading.Lock()
        self._aborting = False
        self._opener = urllib.request.build_opener(
            _RefuseRedirects(), urllib.request.HTTPSHandler(context=context)
        )

    @classmethod
    def from_config(cls, service: ServiceConfig) -> ServiceClient:
        return cls(
            service.url,
            service.token,
            timeout=service.timeout_seconds,
            ca_file=service.ca_file,
            allow_insecure_http=service.allow_insecure_http,
        )

    def __repr__(self) -> str:
        return f"ServiceClient({self.base_url!r}, token=<hidden>, timeout={self.timeout})"

    # -- endpoints -----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """GET /healthz (no authentication)."""
        return self.request("GET", "/healthz", auth=False)

    def whoami(self) -> dict[str, Any]:
        """GET /v1/me, the agent's own identity.

        ``{"principal": {"id", "kind", "name"}, "grants": [{"role", "site_id", "site_slug"}]}``
        """
        return self.request("GET", "/v1/me")

    def site(self, site_id: str) -> dict[str, Any]:
        """GET /v1/sites/{site_id}: ``{"id", "slug", "name", "timezone", ...}``."""
        return self.request("GET", f"/v1/sites/{_segment(site_id)}")

    def prepare_upload(self, site_id: str, body: Mapping[str, object]) -> dict[str, Any]:
        """POST /v1/sites/{site_id}/uploads (step 1): the upload id, segment id and data key, or
        ``state: "registered"`` when the segment is registered already."""
        return self.request("POST", f"/v1/sites/{_segment(site_id)}/uploads", dict(body))

    def upload_target(self, site_id: str, upload_id: str, content_md5: str) -> dict[str, Any]:
        """POST .../uploads/{upload_id}/target (step 2): ``{"method", "url", "headers", "expires_at"}``."""
        return self.request(
            "POST",
            f"/v1/sites/{_segment(site_id)}/uploads/{_segment(upload_id)}/target",
            {"content_md5": content_md5},
        )

    def complete_upload(self, site_id: str, upload_id: str) -> dict[str, Any]:
        """POST .../uploads/{upload_id}/complete (step 4): the registered segment."""
        return self.request("POST", f"/v1/sites/{_segment(site_id)}/uploads/{_segment(upload_id)}/complete")

    def batch_complete(self, site_id: str, upload_ids: list[str]) -> dict[str, Any]:
        """POST .../uploads/batch-complete: ``{"results": [{"upload_id", "ok", "segment" | "error"}]}``."""
        return self.request(
            "POST", f"/v1/sites/{_segment(site_id)}/uploads/batch-complete", {"upload_ids": upload_ids}
        )

    def put_object(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Iterable[bytes],
        length: int,
    ) -> int:
        """Send ``body`` (exactly ``length`` bytes, produced piece by piece) to an upload target (step 3).

        A ``url`` starting with '/' is the service's own endpoint: it is joined to the service URL and
        carries the bearer token. Any other URL is the store's (presigned) and gets exactly ``headers``
        plus Content-Length, never the token. The body is streamed with that Content-Length, not chunked
        (presigned S3 PUTs need the length). Redirects are not followed. Returns the HTTP status (2xx);
        raises ServiceError otherwise, with the store's error code (``BadDigest``...) when it gave one.
        """
        if not method.isascii() or not method.isalpha():
            raise _target_error("the upload target's method is not an HTTP method")
        method = method.upper()
        request_id = uuid.uuid4().hex
        own_endpoint = url.startswith("/") and not url.startswith("//")
        full_url = self.base_url + url if own_endpoint else url
        try:
            parts = urlsplit(full_url)
            port = parts.port
        except ValueError:
            raise _target_error("the upload target's URL is not valid") from None
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("https", "http") or not host or parts.username or parts.password:
            raise _target_error("the upload target's URL must be http(s) with a host")
        if scheme == "http" and not own_endpoint and not (self.allow_insecure_http or is_loopback_host(host)):
            raise _target_error(
                "the upload target is plain http to a host that is not loopback; "
                "set service.allow_insecure_http = true to allow it"
            )
        send: dict[str, str] = {}
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise _target_error("the upload target's headers must be strings")
            if not _HEADER_NAME.fullmatch(name) or not _HEADER_VALUE.fullmatch(value):
                raise _target_error("the upload target gave a header that is not valid HTTP")
            lower = name.lower()
            if lower in ("content-length", "transfer-encoding", "host", "connection"):
                continue  # the agent sets these itself
            if lower == "authorization":
                # Never to a store URL: the token is the service's, and a presigned URL carries its own
                # signature. The service's own endpoint gets the agent's bearer token below.
                raise _target_error("the upload target gave an Authorization header; refusing to send it")
            send[name] = value
        if own_endpoint:
            send["Authorization"] = f"Bearer {self._token.reveal()}"
            send["User-Agent"] = USER_AGENT
            send["X-Request-ID"] = request_id
        send["Content-Length"] = str(length)

        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        where = "service" if own_endpoint else "store"
        started = time.monotonic()
        with self._uploads_lock:
            if self._aborting:
                raise ServiceError(None, "aborted", "the agent is stopping", request_id, retryable=True)
            self._uploads.add(connection)
        try:
            try:
                connection.putrequest(method, target, skip_accept_encoding=True)
                for name, value in send.items():
                    connection.putheader(name, value)
                connection.endheaders()
                if connection.sock is not None:
                    # A deep send buffer keeps the store fed while this thread waits for the GIL behind the
                    # workers that are hashing and encrypting.
                    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
                sent = 0
                pieces = iter(body)
                while True:
                    try:
                        piece = next(pieces)
                    except StopIteration:
                        if sent != length:
                            raise ValueError(
                                f"the body was {sent} bytes, not the {length} announced"
                            ) from None
                        break
                    except OSError as exc:
                        raise BodyReadError(exc) from exc
                    try:
                        connection.send(piece)
                    except (BrokenPipeError, ConnectionResetError):
                        break  # the server may have answered early (a refused signature) and closed: read why
                    sent += len(piece)
                response = connection.getresponse()
                status = response.status
                if 200 <= status < 300:
                    response.read(MAX_STORE_ERROR_BYTES)
                    logger.debug(
                        "%s upload to the %s -> %d in %.0f ms (request %s)",
                        method,
                        where,
                        status,
                        (time.monotonic() - started) * 1000,
                        request_id,
                    )
                    return status
                raw = response.read(MAX_STORE_ERROR_BYTES)
                error_headers = response.msg
            except (OSError, http.client.HTTPException) as exc:
                error = _transport_error(exc, request_id)
                error.message = error.message.replace("the service", f"the {where}")
                raise error from None
        finally:
            with self._uploads_lock:
                self._uploads.discard(connection)
            connection.close()
        if own_endpoint:
            error = _error_from_answer(status, error_headers, raw, request_id)
        else:
            error = _store_error(status, error_headers, raw, request_id)
        logger.debug(
            "%s upload to the %s failed after %.0f ms: %s (request %s)",
            method,
            where,
            (time.monotonic() - started) * 1000,
            error.code,
            error.request_id,
        )
        raise error

    def abort_uploads(self) -> None:
        """Cut every upload in progress short (from another thread, when the agent stops) and refuse new
        ones. The uploads fail with a connection error; the store keeps nothing of a cut-short PUT."""
        with self._uploads_lock:
            self._aborting = True
            connections = list(self._uploads)
        for connection in connections:
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)

    # -- transport -----------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, json_body: object = None, *, auth: bool = True
    ) -> dict[str, Any]:
        """Send one JSON request and return the JSON object answered; raise ServiceError otherwise.

        ``path`` is relative to the base URL and starts with '/' (a query string may follow).
        """
        if not method.isascii() or not method.isalpha():
            raise ValueError("method must be an HTTP method name")
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        method = method.upper()
        request_id = uuid.uuid4().hex
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Request-ID": request_id,
        }
        if auth:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        data = None
        if json_body is not None:
            data = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        # base_url is http(s) only (normalize_base_url) and path starts with '/', so no file: or ftp: URL.
        url = self.base_url + path
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310

        started = time.monotonic()
        try:
            status, response_headers, raw = self._send(req, request_id)
        except ServiceError as exc:
            logger.debug(
                "%s %s failed after %.0f ms: %s (request %s%s)",
                method,
                _path_only(path),
                (time.monotonic() - started) * 1000,
                exc.code,
                request_id,
                "" if exc.request_id == request_id else f", service request {exc.request_id}",
            )
            raise
        logger.debug(
            "%s %s -> %d in %.0f ms (request %s)",
            method,
            _path_only(path),
            status,
            (time.monotonic() - started) * 1000,
            request_id,
        )
        if not raw.strip():
            return {}
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise ServiceError(
                status,
                "unexpected_response",
                f"HTTP {status} answer is not a JSON object ({_content_type(response_headers)})",
                response_headers.get("X-Request-ID") or request_id,
                retryable=False,
            )
        return payload

    def _send(self, req: urllib.request.Request, request_id: str) -> tuple[int, Message, bytes]:
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                return response.status, response.headers, _read_limited(response, request_id)
        except urllib.error.HTTPError as exc:
            with exc:  # the error carries the open response; close it
                try:
                    raw = _read_limited(exc, request_id)
                except ServiceError:
                    raw = b""
                raise _error_from_answer(exc.code, exc.headers, raw, request_id) from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise _transport_error(reason if isinstance(reason, BaseException) else exc, request_id) from None
        except (OSError, http.client.HTTPException) as exc:
            raise _transport_error(exc, request_id) from None


def _segment(value: str) -> str:
    """One path segment of a URL, escaped (ids come from the service's answers)."""
    return quote(value, safe="")


def _target_error(message: str) -> ServiceError:
    return ServiceError(None, "unexpected_response", message, "-", retryable=False)


def _store_error(status: int, headers: Message, raw: bytes, request_id: str) -> ServiceError:
    """An S3-style error answer (``<Error><Code>BadDigest</Code>...``) as a ServiceError."""
    text = raw.decode("utf-8", "replace")
    fields = dict(_XML_FIELD.findall(text))
    store_request_id = headers.get("x-amz-request-id") or fields.get("RequestId") or request_id
    retryable = status >= 500 or status == 429
    if 300 <= status < 400:
        return ServiceError(
            status, "unexpected_redirect", "the store answered with a redirect", store_request_id, False
        )
    code = fields.get("Code") or f"store_http_{status}"
    message = fields.get("Message") or f"the store refused the upload (HTTP {status})"
    return ServiceError(
        status,
        code,
        message,
        store_request_id,
        retryable,
        retry_after=_retry_after(headers.get("Retry-After")),
    )


def _read_limited(response: IO[bytes], request_id: str) -> bytes:
    try:
        raw = response.read(MAX_RESPONSE_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise _transport_error(exc, request_id) from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise ServiceError(
            None, "unexpected_response", f"answer larger than {MAX_RESPONSE_BYTES} bytes", request_id, False
        )
    return raw


def _transport_error(exc: BaseException, request_id: str) -> ServiceError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        # A person has to fix the certificate or ca_file; retrying cannot help.
        return ServiceError(
            None, "tls_error", f"TLS certificate check failed: {exc.verify_message}", request_id, False
        )
    if isinstance(exc, TimeoutError):
        return ServiceError(None, "timeout", "the service did not answer in time", request_id, True)
    detail = getattr(exc, "strerror", None) or type(exc).__name__
    return ServiceError(None, "connection_error", f"cannot reach the service: {detail}", request_id, True)


def _error_from_answer(status: int, headers: Message, raw: bytes, sent_request_id: str) -> ServiceError:
    request_id = headers.get("X-Request-ID") or sent_request_id
    retry_after = _retry_after(headers.get("Retry-After"))
    if 300 <= status < 400:
        return ServiceError(
            status,
            "unexpected_redirect",
            "the service answered with a redirect, which is not followed; check service.url",
            request_id,
            False,
        )
    retryable = status >= 500 or status == 429
    try:
        payload = json.loads(raw)
        error = payload["error"]
        code = error["code"]
        message = error["message"]
        if not isinstance(code, str) or not isinstance(message, str):
            raise TypeError("code and message must be strings")
    except (ValueError, TypeError, KeyError):
        return ServiceError(
            status,
            "unexpected_response",
            f"HTTP {status} answer is not the service's JSON error ({_content_type(headers)})",
            request_id,
            retryable,
            retry_after=retry_after,
        )
    body_request_id = error.get("request_id")
    return ServiceError(
        status,
        code,
        message,
        body_request_id if isinstance(body_request_id, str) and body_request_id else request_id,
        retryable,
        details=error.get("details"),
        retry_after=retry_after,
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _content_type(headers: Mapping[str, str] | Message) -> str:
    return headers.get("Content-Type") or "no content type"


def _path_only(path: str) -> str:
    """The path without its query string, which may carry identifiers not meant for logs."""
    return path.split("?", 1)[0]
