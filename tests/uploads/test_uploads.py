"""The upload protocol over HTTP on the embedded backend (local folder), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cctv_gov.container import Services
from cctv_gov.kit import stream
from cctv_gov.kit.clock import FixedClock
from cctv_gov.models import AuditEvent, Segment
from tests.conftest import World
from tests.fixtures import footage


class Agent:
    """Drives the protocol the way the agent does, over HTTP."""

    def __init__(self, client: TestClient, world: World, who: str = "agent@a") -> None:
        self.client = client
        self.site = world.site_a if who.endswith("@a") else world.site_b
        self.headers = world.auth(who)

    def prepare(self, body: dict[str, Any]) -> Any:
        return self.client.post(f"/v1/sites/{self.site}/uploads", json=body, headers=self.headers)

    def target(self, upload_id: str, md5: str) -> Any:
        return self.client.post(
            f"/v1/sites/{self.site}/uploads/{upload_id}/target",
            json={"content_md5": md5},
            headers=self.headers,
        )

    def put(self, url: str, headers: dict[str, str], body: bytes) -> Any:
        return self.client.put(url, content=body, headers={**headers, **self.headers})

    def complete(self, upload_id: str) -> Any:
        return self.client.post(f"/v1/sites/{self.site}/uploads/{upload_id}/complete", headers=self.headers)

    def upload(self, body: dict[str, Any], data: bytes) -> Any:
        prepared = self.prepare(body)
        assert prepared.status_code in (200, 201), prepared.json()
        p = prepared.json()
        sealed = b"".join(stream.encrypt(base64.b64decode(p["data_key"]), uuid.UUID(p["segment_id"]), [data]))
        assert len(sealed) == p["ciphertext_size"]
        target = self.target(p["upload_id"], footage.md5_b64(sealed)).json()
        assert target["url"].startswith("/v1/"), "the local backend receives uploads itself"
        assert self.put(target["url"], target["headers"], sealed).status_code == 204
        return self.complete(p["upload_id"])


@pytest.fixture
def agent(client: TestClient, world: World) -> Agent:
    return Agent(client, world)


@pytest.fixture
def cam(services: Services, world: World) -> str:
    return footage.add_camera(services, world.site_a, "cam-01").key


def count_segments(services: Services) -> int:
    with services.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Segment)) or 0


def test_prepare_upload_complete_then_play_back(
    agent: Agent, cam: str, services: Services, clock: FixedClock, client: TestClient, world: World
) -> None:
    data = os.urandom(200_000)
    start, end = footage.next_slot(clock.now())
    body = footage.prepare_body(cam, data, start, end)
    done = agent.upload(body, data)
    assert done.status_code == 200, done.json()
    seg = done.json()
    assert seg["state"] == "registered"
    assert seg["sha256"] == hashlib.sha256(data).hexdigest()

    # The stored object is ciphertext, not the footage.
    with services.db.transaction() as s:
        row = s.get(Segment, uuid.UUID(seg["id"]))
        assert row is not None
        assert row.wrapped_key is not None
        key = row.object_key
    stored = b"".join(services.storage.open(key))
    assert data[:4096] not in stored

    # A retry of prepare after registration says so and hands out no key.
    again = agent.prepare(body)
    assert again.status_code == 200
    assert again.json()["state"] == "registered"
    assert again.json()["data_key"] is None
    # Completing twice is harmless: same segment, one registration event.
    assert agent.complete(again.json()["upload_id"]).json()["id"] == seg["id"]
    with services.db.transaction() as s:
        registered = s.scalars(
            select(AuditEvent).where(AuditEvent.action == "footage:segment:register")
        ).all()
    assert [e.target_id for e in registered] == [seg["id"]]

    # Playback: a link for a purpose, then ranges.
    op = world.auth("operator@a")
    link = client.post(
        f"/v1/sites/{world.site_a}/segments/{seg['id']}/playback",
        json={"purpose": "Incident 12: reviewing the front desk"},
        headers=op,
    )
    assert link.status_code == 200, link.json()
    url = link.json()["url"]
    whole = client.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=70000-140001"})
    assert part.status_code == 206
    assert part.content == data[70000:140002]
    assert part.headers["content-range"] == f"bytes 70000-140001/{len(data)}"
    assert client.get(url, headers={"Range": "bytes=-10"}).content == data[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    with services.db.transaction() as s:
        play = s.scalars(select(AuditEvent).where(AuditEvent.action == "footage:segment:play")).one()
    assert play.purpose == "Incident 12: reviewing the front desk"
    assert play.target_id == seg["id"]

    # A link is bound to its signature and its lifetime.
    assert client.get(url[:-2] + ("AA" if not url.endswith("AA") else "BB")).status_code == 401
    clock.advance(timedelta(seconds=services.settings.playback_seconds + 1))
    assert client.get(url).json()["error"]["code"] == "link_expired"


def test_prepare_retry_returns_the_same_upload_and_key(agent: Agent, cam: str, clock: FixedClock) -> None:
    start, end = footage.next_slot(clock.now())
    body = footage.prepare_body(cam, b"abc", start, end)
    first, second = agent.prepare(body), agent.prepare(body)
    assert (first.status_code, second.status_code) == (201, 200)
    for field in ("upload_id", "segment_id", "data_key", "ciphertext_size"):
        assert first.json()[field] == second.json()[field]
    assert first.headers["cache-control"] == "no-store"


def _bad(agent: Agent, services: Services, body: dict[str, Any], status: int, code: str) -> None:
    before = count_segments(services)
    response = agent.prepare(body)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert count_segments(services) == before, "a refused prepare stored nothing"


def test_bad_input_is_refused_with_precise_codes(
    agent: Agent, cam: str, services: Services, world: World, clock: FixedClock, client: TestClient
) -> None:
    now = clock.now()
    start, end = footage.next_slot(now)
    good = footage.prepare_body(cam, b"abc", start, end)
    _bad(agent, services, {**good, "camera": "nope"}, 404, "camera_not_found")
    other = footage.add_camera(services, world.site_b, "cam-b")
    _bad(agent, services, {**good, "camera": str(other.id)}, 403, "camera_other_site")
    _bad(agent, services, {**good, "end": good["start"]}, 422, "invalid_time_range")
    _bad(agent, services, {**good, "end": (start + timedelta(hours=2)).isoformat()}, 422, "segment_too_long")
    future = now + timedelta(minutes=10)
    _bad(
        agent,
        services,
        {**good, "start": future.isoformat(), "end": (future + timedelta(minutes=1)).isoformat()},
        422,
        "time_in_future",
    )
    old = now - timedelta(days=31, minutes=5)
    _bad(
        agent,
        services,
        {**good, "start": old.isoformat(), "end": (old + timedelta(minutes=1)).isoformat()},
        422,
        "past_retention",
    )
    _bad(agent, services, {**good, "sha256": "xyz"}, 422, "invalid_sha256")
    _bad(agent, services, {**good, "sha256": "A" * 63}, 422, "invalid_sha256")
    _bad(agent, services, {**good, "container": "exe"}, 422, "invalid_input")
    _bad(agent, services, {**good, "start": "2026-11-01T08:00:00"}, 422, "invalid_input")  # no zone
    _bad(agent, services, {**good, "size": services.settings.max_segment_bytes + 1}, 422, "segment_too_large")
    huge = client.post(
        f"/v1/sites/{world.site_a}/uploads",
        content=b"{" + b" " * (services.settings.max_body_bytes + 1) + b"}",
        headers={**world.auth("agent@a"), "Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "body_too_large"
    # Another site's agent cannot prepare here at all.
    assert (
        Agent(client, world, "agent@b")
        .client.post(f"/v1/sites/{world.site_a}/uploads", json=good, headers=world.auth("agent@b"))
        .status_code
        == 403
    )

    # Overlap with a different segment of the same camera; the same segment again is a retry.
    assert agent.prepare(good).status_code == 201
    shifted = {
        **good,
        "start": (start + timedelta(seconds=30)).isoformat(),
        "end": (end + timedelta(seconds=30)).isoformat(),
    }
    _bad(agent, services, shifted, 409, "segment_overlap")
    _bad(agent, services, {**good, "sha256": "0" * 64}, 409, "segment_overlap")
    # A disabled camera takes nothing.
    camera_id = client.get(f"/v1/sites/{world.site_a}/cameras", headers=world.auth("agent@a")).json()[0]["id"]
    disabled = client.patch(
        f"/v1/sites/{world.site_a}/cameras/{camera_id}",
        json={"enabled": False},
        headers=world.auth("admin@a"),
    )
    assert disabled.json()["enabled"] is False
    s2, e2 = footage.next_slot(now)
    _bad(agent, services, footage.prepare_body(cam, b"abc", s2, e2), 409, "camera_disabled")


def test_bytes_that_do_not_match_are_refused_and_nothing_is_registered(
    agent: Agent, cam: str, services: Services, clock: FixedClock
) -> None:
    data = os.urandom(100_000)
    start, end = footage.next_slot(clock.now())
    p = agent.prepare(footage.prepare_body(cam, data, start, end)).json()
    sealed = b"".join(stream.encrypt(base64.b64decode(p["data_key"]), uuid.UUID(p["segment_id"]), [data]))
    target = agent.target(p["upload_id"], footage.md5_b64(sealed)).json()
    corrupt = bytearray(sealed)
    corrupt[5000] ^= 0xFF
    refused = agent.put(target["url"], target["headers"], bytes(corrupt))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "digest_mismatch"
    short = agent.put(target["url"], target["headers"], sealed[:-1])
    assert short.json()["error"]["code"] in ("size_mismatch", "digest_mismatch")
    wrong_md5 = agent.put(target["url"], {**target["headers"], "Content-MD5": footage.md5_b64(b"x")}, sealed)
    assert wrong_md5.json()["error"]["code"] == "digest_mismatch"
    assert not services.storage.exists(_object_key(services, p["upload_id"]))
    missing = agent.complete(p["upload_id"])
    assert missing.status_code == 409
    assert missing.json()["error"]["code"] == "object_missing"
    # The md5 of an upload cannot change once given.
    changed = agent.target(p["upload_id"], footage.md5_b64(b"other"))
    assert changed.status_code == 409
    assert changed.json()["error"]["code"] == "content_md5_changed"
    # The right bytes still go through.
    assert agent.put(target["url"], target["headers"], sealed).status_code == 204
    assert agent.complete(p["upload_id"]).json()["state"] == "registered"


def _object_key(services: Services, upload_id: str) -> str:
    with services.db.transaction() as s:
        row = s.scalars(select(Segment).where(Segment.upload_id == uuid.UUID(upload_id))).one()
        return row.object_key


def test_expired_or_reused_uploads_are_refused(
    agent: Agent, cam: str, services: Services, clock: FixedClock
) -> None:
    data = b"x" * 1000
    start, end = footage.next_slot(clock.now())
    body = footage.prepare_body(cam, data, start, end)
    p = agent.prepare(body).json()
    clock.advance(timedelta(seconds=services.settings.upload_ttl_seconds + 1))
    for response in (agent.target(p["upload_id"], footage.md5_b64(b"y")), agent.complete(p["upload_id"])):
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "upload_expired"
    # The cleanup job frees the slot; preparing again gives a fresh upload with a fresh key.
    with services.db.transaction() as s:
        counts = services.uploads.expire_and_clean(s)
    assert counts["expired"] == 1
    fresh = agent.prepare(body).json()
    assert fresh["upload_id"] != p["upload_id"]
    assert fresh["data_key"] != p["data_key"]
    # A completed upload cannot be targeted again (a reused upload).
    sealed = b"".join(
        stream.encrypt(base64.b64decode(fresh["data_key"]), uuid.UUID(fresh["segment_id"]), [data])
    )
    t = agent.target(fresh["upload_id"], footage.md5_b64(sealed)).json()
    agent.put(t["url"], t["headers"], sealed)
    assert agent.complete(fresh["upload_id"]).status_code == 200
    reused = agent.target(fresh["upload_id"], footage.md5_b64(sealed))
    assert reused.status_code == 409
    assert reused.json()["error"]["code"] == "upload_completed"
    unknown = agent.complete(str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "upload_not_found"


def test_batch_complete_registers_many_in_one_call(
    agent: Agent, cam: str, services: Services, clock: FixedClock, client: TestClient, world: World
) -> None:
    ids = []
    for i in range(12):
        data = os.urandom(1000 + i)
        start, end = footage.next_slot(clock.now())
        p = agent.prepare(footage.prepare_body(cam, data, start, end)).json()
        sealed = b"".join(stream.encrypt(base64.b64decode(p["data_key"]), uuid.UUID(p["segment_id"]), [data]))
        t = agent.target(p["upload_id"], footage.md5_b64(sealed)).json()
        if i != 5:  # one never uploaded
            assert agent.put(t["url"], t["headers"], sealed).status_code == 204
        ids.append(p["upload_id"])
    ids.append(str(uuid.uuid4()))
    response = client.post(
        f"/v1/sites/{world.site_a}/uploads/batch-complete", json={"upload_ids": ids}, headers=agent.headers
    )
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [i != 5 for i in range(12)] + [False]
    assert results[5]["error"]["code"] == "object_missing"
    assert results[12]["error"]["code"] == "upload_not_found"
    too_many = client.post(
        f"/v1/sites/{world.site_a}/uploads/batch-complete",
        json={"upload_ids": [str(uuid.uuid4()) for _ in range(1001)]},
        headers=agent.headers,
    )
    assert too_many.status_code == 422


def test_listing_and_gaps_are_audited_reads(
    services: Services, world: World, client: TestClient, clock: FixedClock
) -> None:
    camera = footage.add_camera(services, world.site_a, "cam-gaps")
    base = clock.now() - timedelta(hours=3)
    # 10:00-10:05, 10:05-10:10, then a gap, 10:20-10:25 (relative to base).
    for offset in (0, 5, 20):
        s = base + timedelta(minutes=offset)
        footage.register(services, world.site_a, camera.key, os.urandom(500), s, s + timedelta(minutes=5))
    op = world.auth("operator@a")
    page = client.get(
        f"/v1/sites/{world.site_a}/segments",
        params={
            "camera_id": str(camera.id),
            "start": base.isoformat(),
            "end": (base + timedelta(hours=1)).isoformat(),
            "limit": 2,
        },
        headers=op,
    ).json()
    assert len(page["segments"]) == 2
    assert page["next_cursor"]
    rest = client.get(
        f"/v1/sites/{world.site_a}/segments",
        params={"camera_id": str(camera.id), "cursor": page["next_cursor"], "limit": 2},
        headers=op,
    ).json()
    assert len(rest["segments"]) == 1
    assert rest["next_cursor"] is None
    cov = client.get(
        f"/v1/sites/{world.site_a}/cameras/{camera.id}/coverage",
        params={"start": base.isoformat(), "end": (base + timedelta(minutes=30)).isoformat()},
        headers=op,
    ).json()
    assert cov["segments"] == 3
    assert cov["recorded_seconds"] == 15 * 60
    assert [(g["seconds"]) for g in cov["gaps"]] == [600.0, 300.0]
    with services.db.transaction() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("footage:%:%"))).all()
    assert actions.count("footage:segment:list") == 2
    assert actions.count("footage:coverage:read") == 1
    bad = client.get(f"/v1/sites/{world.site_a}/segments", params={"cursor": "garbage!"}, headers=op)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_cursor"


def test_a_destroyed_day_key_makes_footage_unplayable(
    services: Services, world: World, client: TestClient, clock: FixedClock
) -> None:
    camera = footage.add_camera(services, world.site_a, "cam-erase")
    start, end = footage.next_slot(clock.now())
    seg = footage.register(services, world.site_a, camera.key, os.urandom(3000), start, end)
    link = client.post(
        f"/v1/sites/{world.site_a}/segments/{seg.id}/playback",
        json={"purpose": "Incident 3: checking the entrance"},
        headers=world.auth("general_manager@a"),
    ).json()
    assert services.key_store.destroy(seg.site_id, seg.key_day)
    gone = client.get(link["url"])
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "segment_erased"


def test_a_site_names_its_general_managers_and_caps_retention(
    client: TestClient, world: World, services: Services
) -> None:
    site = client.get(f"/v1/sites/{world.site_a}", headers=world.auth("operator@a")).json()
    assert [p["id"] for p in site["general_managers"]] == [world.principals["general_manager@a"]]
    admin = world.auth("admin@a")
    too_long = client.patch(f"/v1/sites/{world.site_a}", json={"retention_days": 32}, headers=admin)
    assert too_long.json()["error"]["code"] == "retention_too_long"
    shorter = client.patch(f"/v1/sites/{world.site_a}", json={"retention_days": 14}, headers=admin)
    assert shorter.json()["retention_days"] == 14


def test_bytes_stored_but_not_recorded_before_a_crash_are_read_back_at_completion(
    agent: Agent, cam: str, services: Services, clock: FixedClock
) -> None:
    data = os.urandom(70_000)
    start, end = footage.next_slot(clock.now())
    p = agent.prepare(footage.prepare_body(cam, data, start, end)).json()
    sealed = b"".join(stream.encrypt(base64.b64decode(p["data_key"]), uuid.UUID(p["segment_id"]), [data]))
    agent.target(p["upload_id"], footage.md5_b64(sealed))
    # The service wrote the object, then died before recording that it had checked it.
    services.storage.put(_object_key(services, p["upload_id"]), [sealed], length=len(sealed))
    done = agent.complete(p["upload_id"])
    assert done.status_code == 200, done.json()
    # Other bytes in the same place are caught the same way.
    start2, end2 = footage.next_slot(clock.now())
    q = agent.prepare(footage.prepare_body(cam, data, start2, end2)).json()
    other = b"".join(stream.encrypt(base64.b64decode(q["data_key"]), uuid.UUID(q["segment_id"]), [data]))
    agent.target(q["upload_id"], footage.md5_b64(other))
    services.storage.put(_object_key(services, q["upload_id"]), [other[:-1] + b"\x00"], length=len(other))
    refused = agent.complete(q["upload_id"])
    assert refused.json()["error"]["code"] == "upload_quarantined"


def test_a_playback_link_dies_with_its_holders_access(
    services: Services, world: World, client: TestClient, clock: FixedClock
) -> None:
    camera = footage.add_camera(services, world.site_a, "cam-revoke")
    start, end = footage.next_slot(clock.now())
    seg = footage.register(services, world.site_a, camera.key, os.urandom(1000), start, end)
    link = client.post(
        f"/v1/sites/{world.site_a}/segments/{seg.id}/playback",
        json={"purpose": "Incident 9: checking the side door"},
        headers=world.auth("operator@a"),
    ).json()["url"]
    assert client.get(link).status_code == 200
    disabled = client.post(
        f"/v1/principals/{world.principals['operator@a']}/disable", headers=world.auth("admin@a")
    )
    assert disabled.status_code == 200, disabled.json()
    refused = client.get(link)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_link"
