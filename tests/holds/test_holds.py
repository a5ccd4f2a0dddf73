"""Evidence holds: in force only after a General Manager's signed written approval; they keep footage past
retention (still decryptable when the rest of its day is erased) and release it when they end."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cctv_gov.container import Services
from cctv_gov.kit.clock import FixedClock
from cctv_gov.kit.keystore import KeyDestroyed, unwrap_data_key
from cctv_gov.kit.signed_note import Verifier, verify_note
from cctv_gov.models import AuditEvent, Segment
from tests.conftest import World
from tests.fixtures import footage

STATEMENT = "I approve keeping this footage for the police investigation of incident 42."


def propose(
    client: TestClient, world: World, camera_id: str, start: datetime, end: datetime, **extra: Any
) -> Any:
    body = {
        "camera_ids": [camera_id],
        "start": start.isoformat(),
        "end": end.isoformat(),
        "reason": "A member fell at the front desk; the police asked for the footage",
        "incident_ref": "INC-42",
        **extra,
    }
    return client.post(f"/v1/sites/{world.site_a}/holds", json=body, headers=world.auth("operator@a"))


def decide(
    client: TestClient, world: World, hold_id: str, decision: str = "approve", who: str = "general_manager@a"
) -> Any:
    return client.post(
        f"/v1/sites/{world.site_a}/holds/{hold_id}/decision",
        json={"decision": decision, "statement": STATEMENT},
        headers=world.auth(who),
    )


def day_over(services: Services, segment: Segment) -> datetime:
    """The first instant at which the segment's whole day is past retention (site-a keeps 31 days)."""
    midnight = datetime.combine(segment.key_day + timedelta(days=1), time(), tzinfo=UTC)
    return midnight + timedelta(days=31, seconds=services.settings.max_segment_seconds + 1)


def test_a_hold_takes_effect_only_with_a_signed_written_approval(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-h1")
    now = clock.now()
    proposed = propose(client, world, str(cam.id), now - timedelta(hours=3), now - timedelta(hours=1))
    assert proposed.status_code == 201, proposed.json()
    hold = proposed.json()
    assert hold["state"] == "proposed"
    assert hold["approvals"] == []
    # An operator cannot approve; a General Manager can, in writing.
    assert decide(client, world, hold["id"], who="operator@a").status_code == 403
    approved = decide(client, world, hold["id"])
    assert approved.status_code == 200, approved.json()
    body = approved.json()
    assert body["state"] == "active"
    assert body["ends_at"] == (now + timedelta(days=90)).isoformat().replace("+00:00", "Z")
    [approval] = body["approvals"]
    assert approval["decision"] == "approve"
    assert approval["approver_id"] == world.principals["general_manager@a"]
    # The record is a signed note over canonical JSON: checkable offline with the published key.
    vkey = client.get("/v1/audit/public-keys").json()["current"]
    verified = verify_note(approval["note"], [Verifier.from_vkey(vkey)])
    record = json.loads(verified.text)
    assert record["statement"] == STATEMENT
    assert record["scope"]["camera_ids"] == [str(cam.id)]
    assert record["scope"]["incident_ref"] == "INC-42"
    # Deciding twice is refused.
    assert decide(client, world, hold["id"]).json()["error"]["code"] == "hold_not_proposed"
    with services.db.transaction() as s:
        audited = s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("%hold%"))).all()
    assert "hold:hold:propose" in audited


def test_held_footage_outlives_retention_and_its_day_while_the_rest_of_the_day_is_erased(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    held_cam = footage.add_camera(services, world.site_a, "cam-h2")
    other_cam = footage.add_camera(services, world.site_a, "cam-h3")
    now = clock.now()
    start, end = now - timedelta(hours=2), now - timedelta(hours=2) + timedelta(minutes=1)
    held_data, other_data = os.urandom(4000), os.urandom(4000)
    held = footage.register(services, world.site_a, held_cam.key, held_data, start, end)
    other = footage.register(services, world.site_a, other_cam.key, other_data, start, end)
    assert held.key_day == other.key_day
    stolen = b"".join(services.storage.open(other.object_key))
    assert other.wrapped_key is not None
    other_wrapped = other.wrapped_key
    hold = propose(
        client, world, str(held_cam.id), start - timedelta(minutes=5), end + timedelta(minutes=5)
    ).json()
    assert decide(client, world, hold["id"]).status_code == 200

    clock.set(day_over(services, held))
    report = services.purge.run(services.db)

    assert report.segments_erased == 1
    assert report.keys_destroyed == 1
    assert report.sites[0].held == 1
    with pytest.raises(KeyDestroyed):
        services.key_store.get(other.site_id, other.key_day)
    with pytest.raises(KeyDestroyed):  # the copy taken before the purge is now noise
        unwrap_data_key(services.key_store.get(other.site_id, other.key_day), other_wrapped)
    with services.db.transaction() as s:
        row = s.get(Segment, held.id)
        assert row is not None
        assert row.wrapped_key is None  # re-wrapped under the hold's key
        assert s.get(Segment, other.id) is None
    assert footage.play_bytes(services, row) == held_data
    assert other_data not in stolen


def test_an_ended_hold_returns_its_footage_to_the_purge(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-h4")
    now = clock.now()
    start, end = now - timedelta(hours=3), now - timedelta(hours=3) + timedelta(minutes=1)
    seg = footage.register(services, world.site_a, cam.key, os.urandom(3000), start, end)
    hold = propose(client, world, str(cam.id), start, end).json()
    decide(client, world, hold["id"])

    clock.set(day_over(services, seg))
    assert services.purge.run(services.db).segments_erased == 0  # held
    hold_id = uuid.UUID(hold["id"])
    services.key_store.get_hold_key(hold_id)  # exists: it holds the segment's key

    with services.db.transaction() as s:
        from cctv_gov.authz import SYSTEM_ACTOR

        ended = services.holds.end(
            s, SYSTEM_ACTOR, seg.site_id, hold_id, "The police closed the investigation"
        )
    assert ended.hold.state == "ended"
    report = services.purge.run(services.db)
    assert report.segments_erased == 1
    with pytest.raises(KeyDestroyed):
        services.key_store.get_hold_key(hold_id)
    with services.db.transaction() as s:
        actions = s.scalars(select(AuditEvent.action)).all()
    assert "hold:hold:end" in actions
    assert "retention:holdkey:destroy" in actions


def test_a_hold_ends_by_itself_on_its_end_date(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-h5")
    now = clock.now()
    start, end = now - timedelta(hours=4), now - timedelta(hours=4) + timedelta(minutes=1)
    seg = footage.register(services, world.site_a, cam.key, os.urandom(3000), start, end)
    hold = propose(
        client, world, str(cam.id), start, end, ends_at=(now + timedelta(days=40)).isoformat()
    ).json()
    decide(client, world, hold["id"])
    clock.set(end + timedelta(days=35))
    assert services.purge.run(services.db).segments_erased == 0
    clock.set(now + timedelta(days=40, seconds=1))
    report = services.purge.run(services.db)
    assert report.segments_erased == 1
    with services.db.transaction() as s:
        assert s.get(Segment, seg.id) is None
        expired = s.scalars(select(AuditEvent).where(AuditEvent.action == "hold:hold:expire")).all()
    assert len(expired) == 1


def test_extending_needs_a_new_written_approval_and_reviews_fall_due(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-h6")
    now = clock.now()
    hold = propose(client, world, str(cam.id), now - timedelta(hours=2), now - timedelta(hours=1)).json()
    decide(client, world, hold["id"])
    clock.advance(timedelta(hours=1))
    later = (now + timedelta(days=200)).isoformat()
    gm = world.auth("general_manager@a")
    by_operator = client.post(
        f"/v1/sites/{world.site_a}/holds/{hold['id']}/extend",
        json={"ends_at": later, "statement": STATEMENT},
        headers=world.auth("operator@a"),
    )
    assert by_operator.status_code == 403
    extended = client.post(
        f"/v1/sites/{world.site_a}/holds/{hold['id']}/extend",
        json={"ends_at": later, "statement": STATEMENT},
        headers=gm,
    ).json()
    assert extended["ends_at"].startswith((now + timedelta(days=200)).date().isoformat())
    assert [a["decision"] for a in extended["approvals"]] == ["approve", "approve"]
    assert json.loads(extended["approvals"][1]["scope"])["ends_at"].startswith(later[:10])
    assert extended["review_due"] is False
    # A hold in force is due for review 30 days after its last approval.
    clock.advance(timedelta(days=30, hours=1))
    with services.db.transaction() as s:
        from cctv_gov.authz import SYSTEM_ACTOR

        [view] = services.holds.list(s, SYSTEM_ACTOR, uuid.UUID(world.site_a))
    assert view.review_due is True


def test_refusals_and_bad_input(
    client: TestClient, services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-h7")
    other = footage.add_camera(services, world.site_b, "cam-b7")
    now = clock.now()
    refused = decide(
        client,
        world,
        propose(client, world, str(cam.id), now - timedelta(hours=1), now).json()["id"],
        "refuse",
    )
    assert refused.json()["state"] == "refused"
    assert refused.json()["approvals"][0]["decision"] == "refuse"
    wrong_site = propose(client, world, str(other.id), now - timedelta(hours=1), now)
    assert wrong_site.status_code == 404
    assert wrong_site.json()["error"]["code"] == "camera_not_found"
    backwards = propose(client, world, str(cam.id), now, now - timedelta(hours=1))
    assert backwards.json()["error"]["code"] == "invalid_time_range"
    short = propose(client, world, str(cam.id), now - timedelta(hours=1), now, reason="because")
    assert short.status_code == 422
    past_end = propose(
        client,
        world,
        str(cam.id),
        now - timedelta(hours=1),
        now,
        ends_at=(now - timedelta(days=1)).isoformat(),
    )
    assert past_end.json()["error"]["code"] == "invalid_end"
    held = propose(client, world, str(cam.id), now - timedelta(hours=1), now).json()
    thin = client.post(
        f"/v1/sites/{world.site_a}/holds/{held['id']}/decision",
        json={"decision": "approve", "statement": "ok"},
        headers=world.auth("general_manager@a"),
    )
    assert thin.status_code == 422  # a written approval says what it approves
