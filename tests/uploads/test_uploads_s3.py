"""The upload protocol against a real S3 server: presigned PUTs straight to the store, checked by the store
(Content-MD5) and again at completion (size and ETag); a mismatch is quarantined and cleaned up."""

from __future__ import annotations

import base64
import http.client
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cctv_gov.app import create_app
from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.db import Database
from cctv_gov.kit import stream
from cctv_gov.kit.clock import SystemClock
from cctv_gov.kit.storage import S3ObjectStore
from cctv_gov.models import AuditEvent, Segment
from tests.conftest import World
from tests.conftest import world as world
from tests.fixtures import footage
from tests.fixtures.s3 import S3Server, require_enforcement, service_settings


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server, s3_bucket: S3ObjectStore) -> Settings:
    return service_settings(tmp_path, db_url, s3_server, s3_bucket)


@pytest.fixture
def services(settings: Settings, database: Database) -> Services:
    # Presigned URLs are checked by the store against its own clock: the service's clock must be real time.
    return build_services(settings, clock=SystemClock(), db=database)


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(settings, services=services), raise_server_exceptions=False) as c:
        yield c


def put(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        conn.request(
            "PUT",
            f"{parts.path}?{parts.query}",
            body=body,
            headers={**headers, "Content-Length": str(len(body))},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def prepare_and_target(
    client: TestClient, world: World, camera: str, data: bytes
) -> tuple[dict, bytes, dict]:  # type: ignore[type-arg]
    start, end = footage.next_slot(SystemClock().now())
    p = client.post(
        f"/v1/sites/{world.site_a}/uploads",
        json=footage.prepare_body(camera, data, start, end),
        headers=world.auth("agent@a"),
    ).json()
    sealed = b"".join(stream.encrypt(base64.b64decode(p["data_key"]), uuid.UUID(p["segment_id"]), [data]))
    t = client.post(
        f"/v1/sites/{world.site_a}/uploads/{p['upload_id']}/target",
        json={"content_md5": footage.md5_b64(sealed)},
        headers=world.auth("agent@a"),
    ).json()
    return p, sealed, t


def complete(client: TestClient, world: World, upload_id: str) -> object:
    return client.post(
        f"/v1/sites/{world.site_a}/uploads/{upload_id}/complete", headers=world.auth("agent@a")
    )


def test_presigned_put_then_complete_registers(
    client: TestClient, services: Services, world: World, s3_server: S3Server
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-s3").key
    data = os.urandom(300_000)
    p, sealed, t = prepare_and_target(client, world, cam, data)
    assert t["url"].startswith("http://")
    assert "X-Amz-Signature" in t["url"]
    assert "Authorization" not in t["headers"]
    status, _ = put(t["url"], t["headers"], sealed)
    assert status == 200
    done = complete(client, world, p["upload_id"])
    assert done.status_code == 200, done.json()  # type: ignore[attr-defined]
    # The bytes in the store decrypt to the registered evidence hash.
    with services.db.transaction() as s:
        row = s.scalars(select(Segment).where(Segment.upload_id == uuid.UUID(p["upload_id"]))).one()
    stored = b"".join(services.storage.open(row.object_key))
    plain = b"".join(
        stream.decrypt_all(base64.b64decode(p["data_key"]), row.id, stream.Layout(len(data)), [stored])
    )
    assert stream.sha256_of([plain]) == row.sha256.hex()


def test_the_store_refuses_bytes_that_do_not_match(
    client: TestClient, services: Services, world: World, s3_server: S3Server
) -> None:
    require_enforcement(s3_server, "Content-MD5")
    cam = footage.add_camera(services, world.site_a, "cam-md5").key
    data = os.urandom(100_000)
    p, sealed, t = prepare_and_target(client, world, cam, data)
    corrupt = bytearray(sealed)
    corrupt[777] ^= 1
    status, body = put(t["url"], t["headers"], bytes(corrupt))
    assert status == 400
    assert b"BadDigest" in body
    # A URL for one key cannot write another.
    other = t["url"].replace(".cgv", "-x.cgv")
    assert put(other, t["headers"], sealed)[0] == 403
    missing = complete(client, world, p["upload_id"])
    assert missing.json()["error"]["code"] == "object_missing"  # type: ignore[attr-defined]


def test_an_object_that_does_not_match_is_quarantined_audited_and_removed(
    client: TestClient, services: Services, world: World
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-q").key
    data = os.urandom(50_000)
    p, sealed, _ = prepare_and_target(client, world, cam, data)
    with services.db.transaction() as s:
        row = s.scalars(select(Segment).where(Segment.upload_id == uuid.UUID(p["upload_id"]))).one()
    # Someone with store credentials writes other bytes of the same size under the key.
    tampered = bytearray(sealed)
    tampered[100] ^= 1
    services.storage.put(row.object_key, [bytes(tampered)], length=len(tampered))
    refused = complete(client, world, p["upload_id"])
    assert refused.status_code == 422  # type: ignore[attr-defined]
    error = refused.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "upload_quarantined"
    assert error["details"]["reason"] == "digest_mismatch"
    with services.db.transaction() as s:
        row = s.scalars(select(Segment).where(Segment.upload_id == uuid.UUID(p["upload_id"]))).one()
        assert row.state == "quarantined"
        assert row.wrapped_key is None
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "footage:upload:quarantine")).one()
        assert event.outcome == "failed"
        assert event.target_id == str(row.id)
    # Never served, never listed; a second complete says the same.
    assert complete(client, world, p["upload_id"]).json()["error"]["code"] == "upload_quarantined"  # type: ignore[attr-defined]
    listed = client.get(f"/v1/sites/{world.site_a}/segments", headers=world.auth("operator@a")).json()
    assert listed["segments"] == []
    with services.db.transaction() as s:
        counts = services.uploads.expire_and_clean(s)
    assert counts["objects_deleted"] == 1
    assert not services.storage.exists(row.object_key)
    # Preparing the segment again starts a fresh upload.
    start, end = row.start_at, row.end_at
    again = client.post(
        f"/v1/sites/{world.site_a}/uploads",
        json=footage.prepare_body(cam, data, start, end),
        headers=world.auth("agent@a"),
    )
    assert again.status_code == 201
    assert again.json()["upload_id"] != p["upload_id"]


def test_batch_registration_reads_a_listing_and_still_catches_each_fault(
    client: TestClient, services: Services, world: World
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-batch").key
    ids: list[str] = []
    for i in range(30):
        data = os.urandom(2000 + i)
        p, sealed, t = prepare_and_target(client, world, cam, data)
        if i == 3:
            continue  # never uploaded: must be reported missing, not registered
        if i == 7:
            sealed = sealed[:100] + bytes([sealed[100] ^ 1]) + sealed[101:]  # the store keeps other bytes
            with services.db.transaction() as s:
                row = s.scalars(select(Segment).where(Segment.upload_id == uuid.UUID(p["upload_id"]))).one()
            services.storage.put(row.object_key, [sealed], length=len(sealed))
        else:
            assert put(t["url"], t["headers"], sealed)[0] == 200
        ids.append(p["upload_id"])
    with services.db.transaction() as s:
        missing_id = str(
            s.scalars(select(Segment.upload_id).where(Segment.state == "pending", Segment.size == 2003)).one()
        )
    ids.append(missing_id)
    results = client.post(
        f"/v1/sites/{world.site_a}/uploads/batch-complete",
        json={"upload_ids": ids},
        headers=world.auth("agent@a"),
    ).json()["results"]
    codes = {r["upload_id"]: (r["error"] or {}).get("code", "ok") for r in results}
    assert codes[missing_id] == "object_missing"
    assert list(codes.values()).count("upload_quarantined") == 1
    assert list(codes.values()).count("ok") == 28
