"""Principals, per-site roles and API tokens."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from cctv_gov.container import Services
from cctv_gov.models import ApiToken
from tests.conftest import World


def test_a_token_is_shown_once_and_stored_only_as_its_hash(
    client: TestClient, services: Services, world: World
) -> None:
    r = client.post(
        f"/v1/principals/{world.principals['operator@a']}/tokens",
        json={"label": "laptop"},
        headers=world.auth("admin@a"),
    )
    assert r.status_code == 201
    secret = r.json()["token"]
    assert secret.startswith("cgv_")
    assert len(secret) > 40
    with services.db.transaction() as s:
        row = s.get(ApiToken, __import__("uuid").UUID(r.json()["id"]))
        assert row is not None
        assert row.token_hash == hashlib.sha256(secret.encode()).digest()
        everything = b"".join((t.token_hash + t.label.encode()) for t in s.scalars(select(ApiToken)).all())
    assert secret.encode() not in everything
    listed = client.get(
        f"/v1/principals/{world.principals['operator@a']}/tokens", headers=world.auth("admin@a")
    )
    assert "token" not in listed.json()[0]
    assert secret not in listed.text


def test_last_used_is_recorded_but_not_on_every_request(
    client: TestClient, services: Services, world: World
) -> None:
    headers = world.auth("operator@a")

    def last_used() -> object:
        with services.db.transaction() as s:
            rows = s.scalars(
                select(ApiToken).where(
                    ApiToken.principal_id == __import__("uuid").UUID(world.principals["operator@a"])
                )
            ).all()
            return rows[0].last_used_at

    assert last_used() is None
    client.get("/v1/me", headers=headers)
    first = last_used()
    assert first == services.clock.now()
    services.clock.advance(timedelta(seconds=30))  # type: ignore[attr-defined]
    client.get("/v1/me", headers=headers)
    assert last_used() == first, "within token_touch_seconds the row is not rewritten"
    services.clock.advance(timedelta(seconds=31))  # type: ignore[attr-defined]
    client.get("/v1/me", headers=headers)
    assert last_used() == services.clock.now()


def test_me_shows_grants_with_site_slugs(client: TestClient, world: World) -> None:
    body = client.get("/v1/me", headers=world.auth("agent@a")).json()
    assert body["principal"]["kind"] == "agent"
    assert body["grants"] == [{"role": "agent", "site_id": world.site_a, "site_slug": "site-a"}]


def test_an_admin_cannot_also_be_a_manager_or_operator(client: TestClient, world: World) -> None:
    r = client.post(
        "/v1/principals",
        json={
            "name": "Both",
            "grants": [
                {"role": "admin", "site_id": world.site_a},
                {"role": "general_manager", "site_id": world.site_a},
            ],
        },
        headers=world.auth("admin@*"),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "separation_of_duties")
    r = client.post(
        f"/v1/principals/{world.principals['admin@a']}/grants",
        json={"role": "operator", "site_id": world.site_a},
        headers=world.auth("admin@*"),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "separation_of_duties")


def test_roles_other_than_admin_and_auditor_are_site_scoped(client: TestClient, world: World) -> None:
    r = client.post(
        "/v1/principals",
        json={"name": "GM", "grants": [{"role": "general_manager"}]},
        headers=world.auth("admin@*"),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "site_required")
    r = client.post(
        "/v1/principals",
        json={"name": "NVR", "grants": [{"role": "agent", "site_id": world.site_a}]},
        headers=world.auth("admin@*"),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "agent_grant")


def test_a_site_admin_manages_only_their_site(client: TestClient, world: World) -> None:
    r = client.post(
        "/v1/principals", json={"name": "X", "grants": [{"role": "auditor"}]}, headers=world.auth("admin@a")
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden_site")
    listed = client.get("/v1/principals", headers=world.auth("admin@a")).json()
    ids = {p["id"] for p in listed}
    assert world.principals["operator@a"] in ids
    assert world.principals["operator@b"] not in ids
    r = client.get(f"/v1/principals/{world.principals['operator@b']}", headers=world.auth("admin@a"))
    assert r.status_code == 403


def test_an_agent_gets_one_token_and_sees_only_its_site(client: TestClient, world: World) -> None:
    r = client.post(
        "/v1/agents", json={"site_id": world.site_a, "name": "nvr-2"}, headers=world.auth("admin@a")
    )
    assert r.status_code == 201
    token = r.json()["token"]["token"]
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert [g["site_id"] for g in me["grants"]] == [world.site_a]
    sites = client.get("/v1/sites", headers={"Authorization": f"Bearer {token}"}).json()
    assert [s["id"] for s in sites] == [world.site_a]
    assert (
        client.get(f"/v1/sites/{world.site_b}", headers={"Authorization": f"Bearer {token}"}).status_code
        == 403
    )


def test_anyone_may_revoke_their_own_token(client: TestClient, world: World) -> None:
    me_tokens = client.get(
        f"/v1/principals/{world.principals['requester@a']}/tokens", headers=world.auth("admin@a")
    ).json()
    r = client.delete(f"/v1/tokens/{me_tokens[0]['id']}", headers=world.auth("requester@a"))
    assert r.status_code == 200
    assert client.get("/v1/me", headers=world.auth("requester@a")).status_code == 401


def test_admin_changes_are_audited(client: TestClient, services: Services, world: World) -> None:
    r = client.post(
        "/v1/agents", json={"site_id": world.site_a, "name": "nvr-3"}, headers=world.auth("admin@a")
    )
    events = client.get(
        f"/v1/audit/events?site_id={world.site_a}&limit=1000", headers=world.auth("auditor@a")
    ).json()
    mine = [e for e in events if e["actor_id"] == world.principals["admin@a"]]
    assert {e["action"] for e in mine} >= {
        "identity:principal:create",
        "identity:grant:create",
        "identity:token:issue",
    }
    assert all(e["actor_role"] == "admin" and e["request_id"] == r.headers["x-request-id"] for e in mine)
    assert r.json()["token"]["token"] not in str(events)


def test_refusals_inside_services_are_audited_too(
    client: TestClient, services: Services, world: World
) -> None:
    from cctv_gov.models import AuditEvent

    r = client.get(f"/v1/principals/{world.principals['operator@b']}", headers=world.auth("admin@a"))
    assert r.status_code == 403
    r = client.post(
        "/v1/principals", json={"name": "X", "grants": [{"role": "auditor"}]}, headers=world.auth("admin@a")
    )
    assert r.status_code == 403
    with services.db.transaction() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "access:route:deny")).all()
    assert [(str(e.actor_id), e.outcome) for e in denied] == [(world.principals["admin@a"], "denied")] * 2
    assert denied[0].site_id is not None
    assert str(denied[0].site_id) == world.site_b
