"""Fixtures for the NVR agent's tests: config files on disk and a fake cctv-gov service on loopback.

The fake service is a real HTTP server in a thread (http.server), answering the way the service does:
every 4xx/5xx as ``{"error": {"code", "message", "details", "request_id"}}``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .fake_ingest import FakeIngest, Site

TOKEN = "cctvtok_9f3b2a7c1d5e4f60"
REQUEST_ID = re.compile(r"[0-9a-f]{32}")

ME = {
    "principal": {"id": "7b1d0c9e", "kind": "agent", "name": "nvr-gym-central"},
    "grants": [{"role": "ingest_agent", "site_id": "s-123", "site_slug": "gym-central"}],
}


# -- config files ---------------------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string of plain text is a valid TOML basic string
    if isinstance(value, list) and all(not isinstance(item, dict) for item in value):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} inline")


def dump_toml(data: dict[str, Any]) -> str:
    """Just enough TOML for agent.toml: scalars, tables and arrays of tables."""
    lines = [f"{key} = {_toml_value(v)}" for key, v in data.items() if not _is_table(v)]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif _is_table(value):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def _is_table(value: object) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)
    )


@dataclass
class AgentFiles:
    """A token file and a valid config dict in a temporary directory; tests change ``data`` then write it."""

    root: Path
    token_file: Path
    data: dict[str, Any]

    def write(self, data: dict[str, Any] | None = None, name: str = "agent.toml") -> Path:
        path = self.root / name
        path.write_text(dump_toml(self.data if data is None else data), encoding="utf-8")
        return path


def write_token(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def agent_files(tmp_path: Path) -> AgentFiles:
    token_file = write_token(tmp_path / "token", TOKEN + "\n")
    data: dict[str, Any] = {
        "service": {
            "url": "https://cctv.example.org/",
            "token_file": str(token_file),
            "ca_file": "",
            "timeout_seconds": 30,
        },
        "agent": {
            "site": "gym-central",
            "spool_path": str(tmp_path / "spool" / "spool.sqlite3"),
            "max_concurrent_uploads": 4,
            "delete_after_upload": True,
        },
        "cameras": [
            {
                "id": "cam-entrance",
                "folder": str(tmp_path / "nvr" / "cam-entrance"),
                "pattern": "{camera}_%Y%m%d_%H%M%S.mp4",
            },
            {"id": "cam-floor", "folder": str(tmp_path / "nvr" / "cam-floor"), "sidecar": True},
        ],
    }
    return AgentFiles(tmp_path, token_file, data)


# -- the fake service -----------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: Message  # case-insensitive, as HTTP header names are (urllib sends "X-request-id")
    body: bytes


@dataclass
class FakeService:
    url: str
    port: int
    requests: list[Seen] = field(default_factory=list)
    me: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(ME)))
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        service = self.server.service
        service.requests.append(Seen(self.command, self.path, self.headers, body))
        sent_id = self.headers.get("X-Request-ID", "")
        route = self.path.split("?", 1)[0]

        if route == "/healthz":
            self._json(200, {"status": "ok"})
        elif route == "/v1/me":
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "unauthenticated", "missing or invalid token")
            elif not REQUEST_ID.fullmatch(sent_id):
                self._error(400, "bad_request_id", "X-Request-ID must be 32 hex digits")
            else:
                self._json(200, service.me)
        elif route == "/v1/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "content_type": self.headers.get("Content-Type"),
                    "body": json.loads(body) if body else None,
                },
            )
        elif m := re.fullmatch(r"/status/(\d+)", route):
            status = int(m.group(1))
            extra = {"Retry-After": "7"} if status == 429 else {}
            self._error(
                status, f"status_{status}", f"answered {status}", details={"n": status}, headers=extra
            )
        elif m := re.fullmatch(r"/status-no-id/(\d+)", route):
            status = int(m.group(1))
            payload = {"error": {"code": "no_id", "message": "no request id here", "details": None}}
            self._send(status, json.dumps(payload).encode(), "application/json", echo_id=False)
        elif m := re.fullmatch(r"/html/(\d+)", route):
            self._send(int(m.group(1)), b"<html><body>Bad Gateway</body></html>", "text/html")
        elif route == "/redirect":
            self._send(302, b"", "text/plain", headers={"Location": "/v1/me"})
        elif route == "/not-json":
            self._send(200, b"all good", "text/plain")
        elif route == "/list":
            self._send(200, b"[1, 2]", "application/json")
        elif route == "/empty":
            self._send(204, b"", "application/json")
        elif route == "/slow":
            service.release.wait(5)
            self._json(200, {"late": True})
        else:
            self._error(404, "not_found", "no such route")

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: object = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        request_id = "srv-" + self.headers.get("X-Request-ID", "none")
        payload = {"error": {"code": code, "message": message, "details": details, "request_id": request_id}}
        self._send(status, json.dumps(payload).encode(), "application/json", headers=headers)

    def _json(self, status: int, payload: object) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        echo_id: bool = True,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if echo_id and "X-Request-ID" in self.headers:
            self.send_header("X-Request-ID", self.headers["X-Request-ID"])
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    service: FakeService

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (the timeout test) makes the late write fail; that is expected


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib honours proxy variables; loopback calls in tests must not go through one."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def _serve(wrap: Callable[[_Server], None] | None = None, scheme: str = "http") -> Iterator[FakeService]:
    server = _Server(("127.0.0.1", 0), _Handler)
    if wrap is not None:
        wrap(server)
    port = server.server_address[1]
    service = FakeService(url=f"{scheme}://127.0.0.1:{port}", port=port)
    server.service = service
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def fake_service() -> Iterator[FakeService]:
    yield from _serve()


@dataclass
class TlsFiles:
    cert: Path
    key: Path


def _self_signed(directory: Path) -> TlsFiles:
    """A certificate for 127.0.0.1 that no system CA bundle trusts."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cctv-ingest test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return _self_signed(tmp_path)


@pytest.fixture
def tls_service(tls_files: TlsFiles) -> Iterator[tuple[FakeService, TlsFiles]]:
    files = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)

    def wrap(server: _Server) -> None:
        server.socket = context.wrap_socket(server.socket, server_side=True)

    for service in _serve(wrap, scheme="https"):
        yield service, files


# -- the fake ingest API (uploads) and an NVR box pointed at it ------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeIngest]:
    from .fake_ingest import serve_fake_ingest  # it imports this module: import it late

    yield from serve_fake_ingest()


@pytest.fixture
def site(tmp_path: Path, fake: FakeIngest) -> Site:
    from .fake_ingest import make_site

    return make_site(tmp_path, fake)
