"""A fake cctv-gov ingest API and a fake S3 store on loopback, following docs/ingest-protocol.md.

Good enough to drive the agent end to end in-process or as a subprocess: prepare is idempotent, the upload
target is either the service's own endpoint (a relative URL) or a presigned store URL (absolute), complete
checks the stored object's length and MD5 and decrypts it with the service's reference decryptor to check
the SHA-256, and faults can be injected per route.

The real service and a real S3 server are the other engineer's end-to-end tests; this fake only has to be
faithful to the protocol document.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cctv_ingest.config import AgentConfig, load_config
from cctv_ingest.runner import Runner, RunSummary
from cctv_ingest.spool import Spool

from cctv_gov.kit import stream as reference

from .conftest import TOKEN, dump_toml, write_token

SITE_ID = "5f0e7a52-4a57-4d0c-9a4c-0e8c2b7d6a10"
SITE_SLUG = "gym-central"


@dataclass
class Upload:
    id: str
    segment_id: uuid.UUID
    data_key: bytes
    camera: str
    start: str
    end: str
    size: int
    sha256: str
    container: str
    codec: str | None
    chunk_size: int = reference.DEFAULT_CHUNK_SIZE
    state: str = "prepared"  # prepared, registered, quarantined, expired
    content_md5: str | None = None
    object: bytes | None = None

    @property
    def identity(self) -> tuple[str, str, str, int, str]:
        return (self.camera, self.start, self.end, self.size, self.sha256)

    @property
    def ciphertext_size(self) -> int:
        return reference.Layout(self.size, self.chunk_size).ciphertext_size

    def plaintext(self) -> bytes:
        assert self.object is not None
        layout = reference.Layout(self.size, self.chunk_size)
        return b"".join(reference.decrypt_all(self.data_key, self.segment_id, layout, [self.object]))


@dataclass
class Fault:
    """Answer ``status``/``code`` instead of the real thing, ``times`` times, for matching requests."""

    method: str
    route: str  # a regular expression on the path
    status: int
    code: str
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body_size: int


class FakeIngest:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.timezone = "Europe/Berlin"
        self.cameras = {"cam-entrance", "cam-floor", "cam-01"}
        self.uploads: dict[str, Upload] = {}
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.store_calls: list[Call] = []
        self.use_store = False
        """True: targets are presigned URLs to the fake store; False: the service's own endpoint."""
        self.store_url = ""
        self.url = ""
        self.put_gate: threading.Event | None = None
        self.corrupt_next_put = 0
        self.complete_faults: list[str] = []
        """Codes the next complete calls answer (object_missing, upload_quarantined, upload_expired),
        doing to the upload what the service would."""
        self.chunk_size = reference.DEFAULT_CHUNK_SIZE

    # -- what tests look at ------------------------------------------------------------------------------

    def registered(self) -> list[Upload]:
        with self.lock:
            return [upload for upload in self.uploads.values() if upload.state == "registered"]

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        with self.lock:
            return [
                c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path.split("?")[0])
            ]

    def fail(self, method: str, route: str, status: int, code: str, times: int = 1, **headers: str) -> None:
        with self.lock:
            self.faults.append(Fault(method, route, status, code, times, dict(headers)))

    # -- the API -----------------------------------------------------------------------------------------

    def fault_for(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.fullmatch(fault.route, path):
                    fault.times -= 1
                    return fault
        return None

    def prepare(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        camera = body.get("camera")
        if camera not in self.cameras:
            return 404, _error("camera_not_found", "no such camera at this site")
        start, end = body["start"], body["end"]
        if not (isinstance(start, str) and start.endswith("Z") and isinstance(end, str) and end > start):
            return 422, _error("invalid_time_range", "end must be after start")
        container = body.get("container")
        if container not in ("mp4", "mkv", "ts", "avi", "mov"):
            return 422, _error("invalid_input", "bad container")
        identity = (camera, start, end, body["size"], body["sha256"])
        with self.lock:
            for upload in self.uploads.values():
                if upload.identity == identity and upload.state in ("prepared", "registered"):
                    if upload.state == "registered":
                        return 200, {
                            "upload_id": upload.id,
                            "segment_id": str(upload.segment_id),
                            "state": "registered",
                        }
                    return 200, self._prepared(upload)
                if (
                    upload.camera == camera
                    and upload.start == start
                    and upload.state in ("prepared", "registered")
                ):
                    return 409, _error("segment_overlap", "another segment holds that time")
            upload = Upload(
                id=uuid.uuid4().hex,
                segment_id=uuid.uuid4(),
                data_key=os.urandom(32),
                camera=camera,
                start=start,
                end=end,
                size=body["size"],
                sha256=body["sha256"],
                container=container,
                codec=body.get("codec"),
                chunk_size=self.chunk_size,
            )
            self.uploads[upload.id] = upload
            return 201, self._prepared(upload)

    def _prepared(self, upload: Upload) -> dict[str, Any]:
        return {
            "upload_id": upload.id,
            "segment_id": str(upload.segment_id),
            "state": "prepared",
            "expires_at": "2099-01-01T00:00:00Z",
            "data_key": base64.b64encode(upload.data_key).decode(),
            "stream": {"format": "cgv-stream-1", "chunk_size": upload.chunk_size},
            "ciphertext_size": upload.ciphertext_size,
        }

    def target(self, upload_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            upload = self.uploads.get(upload_id)
            if upload is None:
                return 404, _error("not_found", "no such upload")
            if upload.state == "expired":
                return 410, _error("upload_expired", "the upload expired")
            if upload.state != "prepared":
                return 409, _error("conflict", f"the upload is {upload.state}")
            md5 = body.get("content_md5")
            if upload.content_md5 is not None and md5 != upload.content_md5:
                return 409, _error("content_md5_changed", "the MD5 may not change")
            upload.content_md5 = md5
            headers = {"Content-MD5": md5, "Content-Type": "application/octet-stream"}
            if self.use_store:
                url = f"{self.store_url}/footage/{upload.id}?X-Amz-Signature=fake&X-Amz-Expires=900"
            else:
                url = f"/v1/sites/{SITE_ID}/uploads/{upload.id}/object"
            return 200, {
                "method": "PUT",
                "url": url,
                "headers": headers,
                "expires_at": "2099-01-01T00:00:00Z",
            }

    def receive(self, upload_id: str, md5_header: str | None, body: bytes) -> str | None:
        """Store a PUT body; returns an error code, or None when stored."""
        with self.lock:
            upload = self.uploads.get(upload_id)
            if upload is None:
                return "NoSuchUpload"
            if self.corrupt_next_put > 0:
                self.corrupt_next_put -= 1
                return "BadDigest"
            if (
                md5_header is None
                or base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode() != md5_header
            ):
                return "BadDigest"
            upload.object = body
            return None

    def complete(self, upload_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            upload = self.uploads.get(upload_id)
            if upload is None:
                return 404, _error("not_found", "no such upload")
            if upload.state == "registered":
                return 200, self._segment(upload)
            if self.complete_faults:
                code = self.complete_faults.pop(0)
                if code == "object_missing":
                    upload.object = None
                elif code == "upload_quarantined":
                    upload.state, upload.object = "quarantined", None
                elif code == "upload_expired":
                    upload.state, upload.object = "expired", None
            if upload.state == "expired":
                return 410, _error("upload_expired", "the upload expired")
            if upload.state == "quarantined":
                return 422, _error("upload_quarantined", "the stored object did not match")
            if upload.object is None:
                return 409, _error("object_missing", "nothing was uploaded yet")
            good = (
                len(upload.object) == upload.ciphertext_size
                and base64.b64encode(hashlib.md5(upload.object, usedforsecurity=False).digest()).decode()
                == upload.content_md5
            )
            if good:
                try:
                    good = hashlib.sha256(upload.plaintext()).hexdigest() == upload.sha256
                except reference.StreamError:
                    good = False
            if not good:
                upload.state = "quarantined"
                upload.object = None
                return 422, _error("upload_quarantined", "the stored object did not match")
            upload.state = "registered"
            return 200, self._segment(upload)

    def _segment(self, upload: Upload) -> dict[str, Any]:
        return {
            "id": str(upload.segment_id),
            "camera": upload.camera,
            "start": upload.start,
            "end": upload.end,
            "size": upload.size,
            "sha256": upload.sha256,
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": None, "request_id": "fake"}}


class _Api(BaseHTTPRequestHandler):
    server: _ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with fake.lock:
            fake.calls.append(Call(self.command, self.path, dict(self.headers.items()), len(body)))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._json(401, _error("unauthenticated", "missing or invalid token"))
        if "chunked" in (self.headers.get("Transfer-Encoding") or ""):
            return self._json(411, _error("length_required", "send Content-Length"))
        fault = fake.fault_for(self.command, path)
        if fault is not None:
            return self._json(fault.status, _error(fault.code, "injected"), fault.headers)
        site = f"/v1/sites/{SITE_ID}"
        if self.command == "GET" and path == "/v1/me":
            return self._json(
                200,
                {
                    "principal": {"id": "p-1", "kind": "agent", "name": "nvr"},
                    "grants": [{"role": "agent", "site_id": SITE_ID, "site_slug": SITE_SLUG}],
                },
            )
        if self.command == "GET" and path == site:
            return self._json(200, {"id": SITE_ID, "slug": SITE_SLUG, "timezone": fake.timezone})
        if self.command == "POST" and path == f"{site}/uploads":
            return self._json(*fake.prepare(json.loads(body)))
        if self.command == "POST" and path == f"{site}/uploads/batch-complete":
            ids = json.loads(body)["upload_ids"]
            results = []
            for upload_id in ids:
                status, answer = fake.complete(upload_id)
                if status == 200:
                    results.append({"upload_id": upload_id, "ok": True, "segment": answer})
                else:
                    results.append({"upload_id": upload_id, "ok": False, "error": answer["error"]})
            return self._json(200, {"results": results})
        if m := re.fullmatch(rf"{site}/uploads/([0-9a-f]+)/target", path):
            return self._json(*fake.target(m.group(1), json.loads(body)))
        if m := re.fullmatch(rf"{site}/uploads/([0-9a-f]+)/complete", path):
            return self._json(*fake.complete(m.group(1)))
        if self.command == "PUT" and (m := re.fullmatch(rf"{site}/uploads/([0-9a-f]+)/object", path)):
            if fake.put_gate is not None:
                fake.put_gate.wait(10)
            code = fake.receive(m.group(1), self.headers.get("Content-MD5"), body)
            if code == "BadDigest":
                return self._json(422, _error("digest_mismatch", "the body does not match its Content-MD5"))
            if code is not None:
                return self._json(404, _error("not_found", "no such upload"))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._json(404, _error("not_found", "no such route"))

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)


class _Store(BaseHTTPRequestHandler):
    """An S3-ish bucket: PUT /footage/<upload id>?<presigned query>."""

    server: _ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_PUT(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        with fake.lock:
            fake.store_calls.append(Call(self.command, self.path, dict(self.headers.items()), len(body)))
        if "Authorization" in self.headers or "X-Amz-Signature=" not in self.path:
            return self._xml(403, "AccessDenied", "presigned URLs only")
        if "chunked" in (self.headers.get("Transfer-Encoding") or "") or "Content-Length" not in self.headers:
            return self._xml(411, "MissingContentLength", "send Content-Length")
        fault = fake.fault_for("STORE", path)
        if fault is not None:
            return self._xml(fault.status, fault.code, "injected")
        m = re.fullmatch(r"/footage/([0-9a-f]+)", path)
        if m is None:
            return self._xml(404, "NoSuchKey", "no such key")
        code = fake.receive(m.group(1), self.headers.get("Content-MD5"), body)
        if code is not None:
            return self._xml(400 if code == "BadDigest" else 404, code, "refused")
        self.send_response(200)
        self.send_header("ETag", '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None

    def _xml(self, status: int, code: str, message: str) -> None:
        raw = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
            "<RequestId>store-req-1</RequestId></Error>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-amz-request-id", "store-req-1")
        self.end_headers()
        self.wfile.write(raw)


class _ApiServer(ThreadingHTTPServer):
    fake: FakeIngest
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request (a stopped agent) is expected


def serve_fake_ingest() -> Iterator[FakeIngest]:
    fake = FakeIngest()
    servers: list[tuple[_ApiServer, threading.Thread]] = []
    for handler in (_Api, _Store):
        server = _ApiServer(("127.0.0.1", 0), handler)
        server.fake = fake
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
    fake.url = f"http://127.0.0.1:{servers[0][0].server_address[1]}"
    fake.store_url = f"http://127.0.0.1:{servers[1][0].server_address[1]}"
    try:
        yield fake
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(5)


# -- an NVR box pointed at the fake --------------------------------------------------------------------

# Backfill footage from the past: 10:MM local time in Berlin (winter, UTC+1).
DAY = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@dataclass
class Site:
    """An NVR box: camera folders, agent.toml and the spool, pointed at the fake service."""

    root: Path
    fake: FakeIngest
    data: dict[str, Any]

    @property
    def cam(self) -> Path:
        return Path(self.data["cameras"][0]["folder"])

    @property
    def floor(self) -> Path:
        return Path(self.data["cameras"][1]["folder"])

    @property
    def spool_path(self) -> Path:
        return Path(self.data["agent"]["spool_path"])

    def config(self) -> AgentConfig:
        path = self.root / "agent.toml"
        path.write_text(dump_toml(self.data), encoding="utf-8")
        return load_config(path)

    def segment(self, minute: int, size: int = 1000, *, camera: str = "cam-01") -> Path:
        """A finished 60 s segment starting at 10:MM local time."""
        path = self.cam / f"{camera}_20250106-10{minute:02d}00.mp4"
        path.write_bytes(os.urandom(size))
        stamp = int((DAY + timedelta(minutes=minute, seconds=60)).timestamp() * 1e9)
        os.utime(path, ns=(stamp, stamp))
        return path

    def run_once(self, **options: Any) -> RunSummary:
        options.setdefault("give_up_after", 20)
        return Runner(self.config(), once=True, **options).run()

    def spool(self) -> Spool:
        return Spool.open(self.spool_path)


def registered_by_hash(fake: FakeIngest) -> dict[str, list[Upload]]:
    found: dict[str, list[Upload]] = {}
    for upload in fake.registered():
        found.setdefault(upload.sha256, []).append(upload)
    return found


def assert_registered_once(fake: FakeIngest, *files: Path) -> None:
    """Each file is registered exactly once, and what the store holds decrypts to the file's bytes."""
    registered = registered_by_hash(fake)
    for path in files:
        data = path.read_bytes()
        uploads = registered.get(hashlib.sha256(data).hexdigest(), [])
        assert len(uploads) == 1, f"{path.name}: registered {len(uploads)} times"
        assert uploads[0].plaintext() == data
        assert uploads[0].size == len(data)
    assert len(fake.registered()) == len(files)


def states(site: Site) -> dict[str, str]:
    with site.spool() as spool:
        return {Path(row.path).name: row.state.value for row in spool.rows()}


def make_site(tmp_path: Path, fake: FakeIngest) -> Site:
    """An NVR box with two camera folders (cam-01 by pattern, cam-floor by sidecar) and quick timing."""
    token = write_token(tmp_path / "token", TOKEN + "\n")
    cam = tmp_path / "nvr" / "cam-01"
    floor = tmp_path / "nvr" / "cam-floor"
    cam.mkdir(parents=True)
    floor.mkdir(parents=True)
    data: dict[str, Any] = {
        "service": {"url": fake.url, "token_file": str(token), "timeout_seconds": 10},
        "agent": {
            "site": "gym-central",
            "spool_path": str(tmp_path / "spool" / "spool.sqlite3"),
            "max_concurrent_uploads": 2,
            "settle_seconds": 0,
            "scan_interval_seconds": 0.05,
            "retry_initial_seconds": 0.01,
            "retry_max_seconds": 0.05,
        },
        "cameras": [
            {"id": "cam-01", "folder": str(cam), "pattern": "{camera}_%Y%m%d-%H%M%S.mp4"},
            {"id": "cam-floor", "folder": str(floor), "sidecar": True},
        ],
    }
    return Site(tmp_path, fake, data)


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)
