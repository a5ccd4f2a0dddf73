"""ServiceClient.put_object, the streaming PUT of step 3: exactly the target's headers plus Content-Length,
the token only to the service's own endpoint, no chunked encoding, no redirects, flat memory."""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cctv_ingest import stream
from cctv_ingest.client import BodyReadError, ServiceClient, ServiceError

from .conftest import TOKEN, TlsFiles


@dataclass
class Received:
    method: str
    path: str
    headers: list[tuple[str, str]]
    size: int
    md5: str


@dataclass
class Sink:
    """A server that reads each PUT body in small pieces (keeping only its MD5) and answers ``answer``."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"")
    hold: threading.Event | None = None


class _SinkHandler(BaseHTTPRequestHandler):
    server: _SinkServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        sink = self.server.sink
        remaining = int(self.headers.get("Content-Length") or 0)
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        while remaining:
            piece = self.rfile.read(min(65536, remaining))
            if not piece:
                break
            digest.update(piece)
            size += len(piece)
            remaining -= len(piece)
        sink.received.append(
            Received(self.command, self.path, list(self.headers.items()), size, digest.hexdigest())
        )
        if sink.hold is not None:
            sink.hold.wait(10)
        status, headers, body = sink.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _SinkServer(ThreadingHTTPServer):
    sink: Sink
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _serve(wrap: ssl.SSLContext | None = None, scheme: str = "http") -> Iterator[Sink]:
    server = _SinkServer(("127.0.0.1", 0), _SinkHandler)
    if wrap is not None:
        server.socket = wrap.wrap_socket(server.socket, server_side=True)
    sink = Sink(url=f"{scheme}://127.0.0.1:{server.server_address[1]}")
    server.sink = sink
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        if sink.hold is not None:
            sink.hold.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def sink() -> Iterator[Sink]:
    yield from _serve()


@pytest.fixture
def client(sink: Sink) -> ServiceClient:
    return ServiceClient(sink.url + "/prefix", TOKEN, timeout=5)


def pieces(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def names(received: Received) -> list[str]:
    return sorted(name.lower() for name, _ in received.headers)


def test_a_store_url_gets_exactly_the_targets_headers_and_the_length(
    client: ServiceClient, sink: Sink
) -> None:
    data = b"ciphertext" * 1000
    url = f"{sink.url}/footage/abc?X-Amz-Signature=sig&X-Amz-Expires=900"

    status = client.put_object(
        "PUT",
        url,
        {"Content-MD5": "bWQ1", "Content-Type": "application/octet-stream"},
        pieces(data),
        len(data),
    )

    assert status == 200
    (received,) = sink.received
    assert received.path == "/footage/abc?X-Amz-Signature=sig&X-Amz-Expires=900"
    assert names(received) == ["content-length", "content-md5", "content-type", "host"]
    headers = dict(received.headers)
    assert headers["Content-Length"] == str(len(data))
    assert headers["Content-MD5"] == "bWQ1"
    assert (received.size, received.md5) == (len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())


def test_the_services_own_endpoint_gets_the_token(client: ServiceClient, sink: Sink) -> None:
    data = b"x" * 5000

    client.put_object("PUT", "/v1/sites/s/uploads/u/object", {"Content-MD5": "bWQ1"}, pieces(data), len(data))

    (received,) = sink.received
    assert received.path == "/prefix/v1/sites/s/uploads/u/object"
    headers = dict(received.headers)
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["User-Agent"].startswith("cctv-ingest/")
    assert len(headers["X-Request-ID"]) == 32
    assert "Transfer-Encoding" not in headers


@pytest.mark.parametrize(
    ("url", "headers", "fragment"),
    [
        ("{sink}/x", {"Authorization": "AWS4-HMAC-SHA256 ..."}, "Authorization"),
        ("{sink}/x", {"X-Bad": "a\r\nInjected: yes"}, "not valid HTTP"),
        ("{sink}/x", {"Bad Name": "v"}, "not valid HTTP"),
        ("http://store.example.org/x", {}, "plain http"),
        ("ftp://store.example.org/x", {}, "http(s)"),
        ("//store.example.org/x", {}, "http(s)"),
        ("https://user:pw@store.example.org/x", {}, "http(s)"),
        ("https://store.example.org:notaport/x", {}, "not valid"),
    ],
)
def test_targets_the_agent_refuses(
    client: ServiceClient, sink: Sink, url: str, headers: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        client.put_object("PUT", url.format(sink=sink.url), headers, [b"x"], 1)

    assert caught.value.code == "unexpected_response"
    assert fragment in caught.value.message
    assert sink.received == []


def test_plain_http_to_a_lan_store_needs_the_explicit_flag(sink: Sink) -> None:
    relaxed = ServiceClient("http://nvr-gateway.lan:8080", TOKEN, timeout=5, allow_insecure_http=True)

    # Allowed now; localhost stands in for a LAN host here (the name resolves without a network).
    relaxed.put_object("PUT", sink.url.replace("127.0.0.1", "localhost") + "/x", {}, [b"abc"], 3)

    assert sink.received[0].size == 3


def test_a_store_error_keeps_the_stores_code(client: ServiceClient, sink: Sink) -> None:
    xml = b"<?xml version='1.0'?><Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match</Message><RequestId>R1</RequestId></Error>"
    sink.answer = (400, {"Content-Type": "application/xml", "x-amz-request-id": "amz-1"}, xml)

    with pytest.raises(ServiceError) as caught:
        client.put_object("PUT", sink.url + "/x", {}, [b"abc"], 3)

    error = caught.value
    assert (error.status, error.code, error.request_id, error.retryable) == (400, "BadDigest", "amz-1", False)
    assert "did not match" in error.message


def test_store_5xx_is_retryable_and_redirects_are_not_followed(client: ServiceClient, sink: Sink) -> None:
    sink.answer = (503, {"Retry-After": "3"}, b"")
    with pytest.raises(ServiceError) as caught:
        client.put_object("PUT", sink.url + "/x", {}, [b"abc"], 3)
    assert (caught.value.code, caught.value.retryable, caught.value.retry_after) == (
        "store_http_503",
        True,
        3.0,
    )

    sink.answer = (307, {"Location": "http://elsewhere.example/"}, b"")
    with pytest.raises(ServiceError) as caught:
        client.put_object("PUT", sink.url + "/x", {}, [b"abc"], 3)
    assert caught.value.code == "unexpected_redirect"
    assert len(sink.received) == 2


def test_a_service_error_keeps_the_services_code(client: ServiceClient, sink: Sink) -> None:
    payload = {"error": {"code": "digest_mismatch", "message": "no", "details": None, "request_id": "r-9"}}
    sink.answer = (422, {"Content-Type": "application/json"}, json.dumps(payload).encode())

    with pytest.raises(ServiceError) as caught:
        client.put_object("PUT", "/v1/x", {}, [b"abc"], 3)

    assert (caught.value.code, caught.value.request_id) == ("digest_mismatch", "r-9")


def test_an_unreachable_store_is_a_retryable_connection_error(client: ServiceClient) -> None:
    with pytest.raises(ServiceError) as caught:
        client.put_object("PUT", "http://127.0.0.1:9/x", {}, [b"abc"], 3)

    assert (caught.value.code, caught.value.retryable) == ("connection_error", True)
    assert "the store" in caught.value.message


def test_the_body_must_be_as_long_as_announced(client: ServiceClient, sink: Sink) -> None:
    with pytest.raises(ValueError, match="2 bytes, not the 3 announced"):
        client.put_object("PUT", sink.url + "/x", {}, [b"ab"], 3)


def test_a_failing_read_of_the_file_is_not_a_network_error(client: ServiceClient, sink: Sink) -> None:
    def broken() -> Iterator[bytes]:
        yield b"a"
        raise OSError(5, "Input/output error")

    with pytest.raises(BodyReadError, match="Input/output error"):
        client.put_object("PUT", sink.url + "/x", {}, broken(), 3)


def test_abort_cuts_an_upload_in_flight_short(client: ServiceClient, sink: Sink) -> None:
    sink.hold = threading.Event()  # the server takes the body and then does not answer
    errors: list[ServiceError] = []

    def upload() -> None:
        try:
            client.put_object("PUT", sink.url + "/x", {}, [b"abc"], 3)
        except ServiceError as exc:
            errors.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    deadline = time.monotonic() + 5
    while not sink.received and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    client.abort_uploads()
    thread.join(5)

    assert time.monotonic() - started < 2
    assert isinstance(errors[0], ServiceError)
    assert errors[0].code == "connection_error"
    with pytest.raises(ServiceError, match="stopping"):
        client.put_object("PUT", sink.url + "/x", {}, [b"abc"], 3)


def test_https_store_is_verified(tls_files: TlsFiles) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    for sink in _serve(context, scheme="https"):
        trusting = ServiceClient("https://cctv.example.org", TOKEN, timeout=5, ca_file=tls_files.cert)
        assert trusting.put_object("PUT", sink.url + "/x?sig=1", {}, [b"abc"], 3) == 200

        strict = ServiceClient("https://cctv.example.org", TOKEN, timeout=5)
        with pytest.raises(ServiceError) as caught:
            strict.put_object("PUT", sink.url + "/x?sig=1", {}, [b"abc"], 3)
        assert (caught.value.code, caught.value.retryable) == ("tls_error", False)


def test_uploading_a_big_file_keeps_memory_flat(client: ServiceClient, sink: Sink, tmp_path: Path) -> None:
    path = tmp_path / "big.mp4"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)  # sparse: quick to read, no disk
    info = path.stat()
    identity = stream.FileIdentity(info.st_size, info.st_mtime_ns)
    key, segment = bytes(32), uuid.uuid4()
    length = stream.ciphertext_size(info.st_size)

    tracemalloc.start()
    try:
        body = stream.encrypt_file(path, identity, key, segment)
        client.put_object("PUT", sink.url + "/big", {}, body, length)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    (received,) = sink.received
    assert received.size == length
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
