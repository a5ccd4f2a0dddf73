"""Every route declares who may call it, and the declared rules are what the service enforces.

The policy is written out here by hand (EXPECTED): a rule changed in the code without changing this table fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cctv_gov.api import iter_api_routes
from cctv_gov.authz import RULE_ATTR, SYSTEM_ACTOR, Role, Rule, Scope
from cctv_gov.container import Services
from tests.conftest import World
from tests.fixtures import footage

AT_A = ["general_manager@a", "operator@a", "auditor@a", "requester@a", "admin@a", "agent@a"]
AT_B = ["general_manager@b", "operator@b", "auditor@b", "requester@b", "admin@b", "agent@b"]
GLOBAL = ["admin@*", "auditor@*"]
CALLERS = AT_A + AT_B + GLOBAL
EVERYONE = set(CALLERS)
ADMINS_OF_A = {"admin@a", "admin@*"}
AUDIT_READERS_OF_A = {"auditor@a", "general_manager@a", "auditor@*"}


def rule_of(route: APIRoute) -> Rule | None:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        rule = getattr(dep.call, RULE_ATTR, None)
        if rule is not None:
            return rule  # type: ignore[no-any-return]
        stack.extend(dep.dependencies)
    return None


def api_routes(client: TestClient) -> list[APIRoute]:
    routes = list(iter_api_routes())
    # A router left out of ROUTERS would escape this walk: the served OpenAPI document must list nothing more.
    served = {
        (m.upper(), path) for path, ops in client.get("/openapi.json").json()["paths"].items() for m in ops
    }
    walked = {(m, r.path) for r in routes for m in r.methods}
    assert served <= walked, f"served routes missing from api.ROUTERS: {served - walked}"
    return routes


def test_every_route_declares_a_rule(client: TestClient) -> None:
    missing = [f"{sorted(r.methods)} {r.path}" for r in api_routes(client) if rule_of(r) is None]
    assert missing == [], f"routes without an explicit allow()/public() rule: {missing}"


@dataclass
class Call:
    """How to call one route for one caller: a fresh target each time, so destructive calls do not interfere."""

    allowed: set[str]
    make: Callable[[Services, World], tuple[str, dict[str, Any] | None]]
    public: bool = False


def _fresh_person(services: Services, world: World) -> tuple[str, str, str]:
    with services.db.transaction() as s:
        view = services.identity.create_person(
            s, SYSTEM_ACTOR, name="target", email=None, grants=[(Role.OPERATOR, uuid.UUID(world.site_a))]
        )
        token, _ = services.identity.issue_token(
            s, SYSTEM_ACTOR, view.principal.id, label="x", expires_in_days=1
        )
        return str(view.principal.id), str(view.grants[0].id), str(token.id)


def _event_at_a(services: Services, world: World) -> str:
    from cctv_gov.audit.repository import AuditRepository

    with services.db.transaction() as s:
        events = AuditRepository().list_events(
            s, site_ids=None, site_id=uuid.UUID(world.site_a), action=None, after_id=None, limit=1
        )
        return str(events[0].event_id)


def _camera(services: Services, world: World) -> str:
    return str(footage.add_camera(services, world.site_a).id)


def _prepare_body(services: Services, world: World) -> dict[str, Any]:
    cam = footage.add_camera(services, world.site_a)
    start, end = footage.next_slot(services.clock.now())
    return footage.prepare_body(cam.key, b"footage", start, end)


def _upload(services: Services, world: World) -> str:
    cam = footage.add_camera(services, world.site_a)
    start, end = footage.next_slot(services.clock.now())
    prepared = footage.prepare(services, world.site_a, cam.key, b"footage", start, end)
    return str(prepared.segment.upload_id)


def _targeted_upload(services: Services, world: World) -> str:
    cam = footage.add_camera(services, world.site_a)
    start, end = footage.next_slot(services.clock.now())
    prepared = footage.prepare(services, world.site_a, cam.key, b"footage", start, end)
    with services.db.transaction() as s:
        services.uploads.target(
            s, prepared.segment.site_id, prepared.segment.upload_id, footage.md5_b64(b"x")
        )
    return str(prepared.segment.upload_id)


def _segment(services: Services, world: World) -> str:
    cam = footage.add_camera(services, world.site_a)
    start, end = footage.next_slot(services.clock.now())
    return str(footage.register(services, world.site_a, cam.key, b"footage", start, end).id)


def _playback_url(services: Services, world: World) -> str:
    from cctv_gov.authz import Actor, Grant

    cam = footage.add_camera(services, world.site_a)
    start, end = footage.next_slot(services.clock.now())
    seg = footage.register(services, world.site_a, cam.key, b"footage", start, end)
    operator = Actor(
        uuid.UUID(world.principals["operator@a"]),
        "person",
        "op",
        (Grant(uuid.uuid4(), Role.OPERATOR, seg.site_id),),
    )
    with services.db.transaction() as s:
        url, _, _ = services.footage.playback_link(
            s, operator, seg.site_id, seg.id, "checking the matrix works"
        )
    return url


def _hold(services: Services, world: World, *, approved: bool = False) -> str:
    from cctv_gov.authz import Actor, Grant
    from cctv_gov.holds.schemas import HoldCreate

    cam = footage.add_camera(services, world.site_a)
    site = uuid.UUID(world.site_a)
    gm = Actor(
        uuid.UUID(world.principals["general_manager@a"]),
        "person",
        "gm",
        (Grant(uuid.uuid4(), Role.GENERAL_MANAGER, site),),
    )
    now = services.clock.now()
    with services.db.transaction() as s:
        view = services.holds.propose(
            s,
            gm,
            site,
            HoldCreate(
                camera_ids=[cam.id],
                start=now - timedelta(hours=2),
                end=now - timedelta(hours=1),
                reason="Keeping the fall at the front desk for the insurer",
                incident_ref="INC-1",
            ),
        )
        if approved:
            services.holds.decide(
                s, gm, site, view.hold.id, True, "I approve keeping this for the insurer's claim."
            )
    return str(view.hold.id)


HOLD_BODY = {
    "start": "2026-10-31T10:00:00Z",
    "end": "2026-10-31T11:00:00Z",
    "reason": "Keeping the fall at the front desk for the insurer",
    "incident_ref": "INC-2",
}
STATEMENT = "I approve keeping this footage for the insurer's claim."
HOLD_READERS_OF_A = {"general_manager@a", "operator@a", "auditor@a", "auditor@*"}
PROPOSERS_OF_A = {"general_manager@a", "operator@a"}
REVIEWERS_OF_A = {"general_manager@a", "auditor@a", "admin@a", "admin@*", "auditor@*"}
CAMERA_READERS_OF_A = {
    "general_manager@a",
    "operator@a",
    "auditor@a",
    "admin@a",
    "agent@a",
    "admin@*",
    "auditor@*",
}
FINDERS_OF_A = {"general_manager@a", "operator@a", "auditor@a", "auditor@*"}
VIEWERS_OF_A = {"general_manager@a", "operator@a"}
CAMERA_BODY = {"name": "N", "location": "L", "purpose": "Safety of members and staff", "key": "k"}


def _person_body(world: World) -> dict[str, Any]:
    return {"name": "New Operator", "grants": [{"role": "operator", "site_id": world.site_a}]}


EXPECTED: dict[tuple[str, str], Call] = {
    ("GET", "/healthz"): Call(EVERYONE, lambda s, w: ("/healthz", None), public=True),
    ("GET", "/readyz"): Call(EVERYONE, lambda s, w: ("/readyz", None), public=True),
    ("GET", "/v1/audit/checkpoint"): Call(EVERYONE, lambda s, w: ("/v1/audit/checkpoint", None), public=True),
    ("GET", "/v1/audit/public-keys"): Call(
        EVERYONE, lambda s, w: ("/v1/audit/public-keys", None), public=True
    ),
    ("POST", "/v1/sites"): Call(
        {"admin@*"},
        lambda s, w: ("/v1/sites", {"slug": f"s-{uuid.uuid4().hex[:8]}", "name": "N", "timezone": "UTC"}),
    ),
    ("GET", "/v1/sites"): Call(EVERYONE, lambda s, w: ("/v1/sites", None)),
    ("GET", "/v1/sites/{site_id}"): Call(
        set(AT_A) | set(GLOBAL), lambda s, w: (f"/v1/sites/{w.site_a}", None)
    ),
    ("PATCH", "/v1/sites/{site_id}"): Call(
        ADMINS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}", {"name": "Site A, renamed"})
    ),
    ("GET", "/v1/me"): Call(EVERYONE, lambda s, w: ("/v1/me", None)),
    ("POST", "/v1/sites/{site_id}/cameras"): Call(
        {"general_manager@a", "admin@a", "admin@*"},
        lambda s, w: (f"/v1/sites/{w.site_a}/cameras", {**CAMERA_BODY, "key": f"c-{uuid.uuid4().hex[:8]}"}),
    ),
    ("GET", "/v1/sites/{site_id}/cameras"): Call(
        CAMERA_READERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/cameras", None)
    ),
    ("GET", "/v1/sites/{site_id}/cameras/{camera_id}"): Call(
        CAMERA_READERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/cameras/{_camera(s, w)}", None)
    ),
    ("PATCH", "/v1/sites/{site_id}/cameras/{camera_id}"): Call(
        {"general_manager@a", "admin@a", "admin@*"},
        lambda s, w: (f"/v1/sites/{w.site_a}/cameras/{_camera(s, w)}", {"enabled": False}),
    ),
    ("GET", "/v1/sites/{site_id}/cameras/{camera_id}/coverage"): Call(
        FINDERS_OF_A,
        lambda s, w: (
            f"/v1/sites/{w.site_a}/cameras/{_camera(s, w)}/coverage"
            "?start=2026-10-31T00:00:00Z&end=2026-11-01T00:00:00Z",
            None,
        ),
    ),
    ("POST", "/v1/sites/{site_id}/uploads"): Call(
        {"agent@a"}, lambda s, w: (f"/v1/sites/{w.site_a}/uploads", _prepare_body(s, w))
    ),
    ("POST", "/v1/sites/{site_id}/uploads/batch-complete"): Call(
        {"agent@a"},
        lambda s, w: (f"/v1/sites/{w.site_a}/uploads/batch-complete", {"upload_ids": [_upload(s, w)]}),
    ),
    ("POST", "/v1/sites/{site_id}/uploads/{upload_id}/target"): Call(
        {"agent@a"},
        lambda s, w: (
            f"/v1/sites/{w.site_a}/uploads/{_upload(s, w)}/target",
            {"content_md5": footage.md5_b64(b"x")},
        ),
    ),
    ("PUT", "/v1/sites/{site_id}/uploads/{upload_id}/content"): Call(
        {"agent@a"}, lambda s, w: (f"/v1/sites/{w.site_a}/uploads/{_targeted_upload(s, w)}/content", None)
    ),
    ("POST", "/v1/sites/{site_id}/uploads/{upload_id}/complete"): Call(
        {"agent@a"}, lambda s, w: (f"/v1/sites/{w.site_a}/uploads/{_upload(s, w)}/complete", None)
    ),
    ("GET", "/v1/sites/{site_id}/segments"): Call(
        FINDERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/segments", None)
    ),
    ("POST", "/v1/sites/{site_id}/segments/{segment_id}/playback"): Call(
        VIEWERS_OF_A,
        lambda s, w: (
            f"/v1/sites/{w.site_a}/segments/{_segment(s, w)}/playback",
            {"purpose": "Incident 7: checking the front desk"},
        ),
    ),
    ("POST", "/v1/sites/{site_id}/holds"): Call(
        PROPOSERS_OF_A,
        lambda s, w: (f"/v1/sites/{w.site_a}/holds", {**HOLD_BODY, "camera_ids": [_camera(s, w)]}),
    ),
    ("GET", "/v1/sites/{site_id}/holds"): Call(
        HOLD_READERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/holds", None)
    ),
    ("GET", "/v1/sites/{site_id}/holds/{hold_id}"): Call(
        HOLD_READERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/holds/{_hold(s, w)}", None)
    ),
    ("POST", "/v1/sites/{site_id}/holds/{hold_id}/decision"): Call(
        {"general_manager@a"},
        lambda s, w: (
            f"/v1/sites/{w.site_a}/holds/{_hold(s, w)}/decision",
            {"decision": "approve", "statement": STATEMENT},
        ),
    ),
    ("POST", "/v1/sites/{site_id}/holds/{hold_id}/extend"): Call(
        {"general_manager@a"},
        lambda s, w: (
            f"/v1/sites/{w.site_a}/holds/{_hold(s, w, approved=True)}/extend",
            {"ends_at": "2027-06-01T00:00:00Z", "statement": STATEMENT},
        ),
    ),
    ("POST", "/v1/sites/{site_id}/holds/{hold_id}/end"): Call(
        PROPOSERS_OF_A,
        lambda s, w: (
            f"/v1/sites/{w.site_a}/holds/{_hold(s, w, approved=True)}/end",
            {"statement": "The insurer closed the claim."},
        ),
    ),
    ("GET", "/v1/sites/{site_id}/retention/report"): Call(
        REVIEWERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/retention/report", None)
    ),
    ("GET", "/v1/sites/{site_id}/retention/certificates/{day}"): Call(
        REVIEWERS_OF_A, lambda s, w: (f"/v1/sites/{w.site_a}/retention/certificates/2026-10-30", None)
    ),
    ("GET", "/v1/playback/{ticket}"): Call(EVERYONE, lambda s, w: (_playback_url(s, w), None), public=True),
    ("POST", "/v1/principals"): Call(ADMINS_OF_A, lambda s, w: ("/v1/principals", _person_body(w))),
    ("GET", "/v1/principals"): Call({"admin@a", "admin@b", "admin@*"}, lambda s, w: ("/v1/principals", None)),
    ("GET", "/v1/principals/{principal_id}"): Call(
        ADMINS_OF_A, lambda s, w: (f"/v1/principals/{_fresh_person(s, w)[0]}", None)
    ),
    ("POST", "/v1/principals/{principal_id}/disable"): Call(
        ADMINS_OF_A, lambda s, w: (f"/v1/principals/{_fresh_person(s, w)[0]}/disable", {})
    ),
    ("POST", "/v1/principals/{principal_id}/grants"): Call(
        ADMINS_OF_A,
        lambda s, w: (
            f"/v1/principals/{_fresh_person(s, w)[0]}/grants",
            {"role": "auditor", "site_id": w.site_a},
        ),
    ),
    ("DELETE", "/v1/principals/{principal_id}/grants/{grant_id}"): Call(
        ADMINS_OF_A,
        lambda s, w: ("/v1/principals/{}/grants/{}".format(*_fresh_person(s, w)[:2]), None),
    ),
    ("POST", "/v1/principals/{principal_id}/tokens"): Call(
        ADMINS_OF_A, lambda s, w: (f"/v1/principals/{_fresh_person(s, w)[0]}/tokens", {"label": "laptop"})
    ),
    ("GET", "/v1/principals/{principal_id}/tokens"): Call(
        ADMINS_OF_A, lambda s, w: (f"/v1/principals/{_fresh_person(s, w)[0]}/tokens", None)
    ),
    ("DELETE", "/v1/tokens/{token_id}"): Call(
        ADMINS_OF_A, lambda s, w: (f"/v1/tokens/{_fresh_person(s, w)[2]}", None)
    ),
    ("POST", "/v1/agents"): Call(
        ADMINS_OF_A, lambda s, w: ("/v1/agents", {"site_id": w.site_a, "name": "nvr"})
    ),
    ("GET", "/v1/audit/proofs/inclusion"): Call(
        EVERYONE, lambda s, w: ("/v1/audit/proofs/inclusion?leaf_index=0", None)
    ),
    ("GET", "/v1/audit/proofs/consistency"): Call(
        EVERYONE, lambda s, w: ("/v1/audit/proofs/consistency?first=1", None)
    ),
    ("GET", "/v1/audit/events"): Call(
        AUDIT_READERS_OF_A, lambda s, w: (f"/v1/audit/events?site_id={w.site_a}", None)
    ),
    ("GET", "/v1/audit/events/{event_id}"): Call(
        AUDIT_READERS_OF_A, lambda s, w: (f"/v1/audit/events/{_event_at_a(s, w)}", None)
    ),
    ("GET", "/v1/audit/events/{event_id}/proof"): Call(
        AUDIT_READERS_OF_A, lambda s, w: (f"/v1/audit/events/{_event_at_a(s, w)}/proof", None)
    ),
}


def test_policy_table_covers_every_route(client: TestClient) -> None:
    declared = {(m, r.path) for r in api_routes(client) for m in r.methods if m != "HEAD"}
    assert declared - set(EXPECTED) == set(), "a route has no row in the authorization policy table"
    assert set(EXPECTED) - declared == set(), "the policy table names a route that does not exist"


def test_declared_rules_are_explicit_about_public_routes(client: TestClient) -> None:
    for route in api_routes(client):
        rule = rule_of(route)
        assert rule is not None
        for method in route.methods - {"HEAD"}:
            assert (rule.scope is Scope.PUBLIC) == EXPECTED[(method, route.path)].public, route.path


def test_authorization_matrix(client: TestClient, services: Services, world: World) -> None:
    with services.db.transaction() as s:
        services.sequencer.integrate_all(s)
    failures: list[str] = []
    for (method, _path), call in sorted(EXPECTED.items()):
        for caller in CALLERS:
            url, body = call.make(services, world)
            response = client.request(method, url, json=body, headers=world.auth(caller))
            allowed = caller in call.allowed
            if allowed and response.status_code in (401, 403):
                failures.append(f"{caller} {method} {url}: expected allowed, got {response.status_code}")
            if not allowed and response.status_code != 403:
                failures.append(f"{caller} {method} {url}: expected 403, got {response.status_code}")
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, f"{method} {url}: error shape"
        if not call.public:
            url, body = call.make(services, world)
            response = client.request(method, url, json=body)
            if response.status_code != 401:
                failures.append(f"no token {method} {url}: expected 401, got {response.status_code}")
            assert response.json()["error"]["code"] == "missing_token"
    assert failures == []


@pytest.mark.parametrize("caller", ["operator@b", "general_manager@b", "requester@a"])
def test_denied_access_is_audited(client: TestClient, services: Services, world: World, caller: str) -> None:
    from sqlalchemy import select

    from cctv_gov.models import AuditEvent

    response = client.get(f"/v1/audit/events?site_id={world.site_a}", headers=world.auth(caller))
    assert response.status_code == 403
    with services.db.transaction() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "access:route:deny")).all()
    assert len(denied) == 1
    assert str(denied[0].actor_id) == world.principals[caller]
    assert denied[0].outcome == "denied"
    assert denied[0].target_id == "GET /v1/audit/events"
