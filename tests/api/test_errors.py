"""Bad input gets the one error shape with a precise code, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cctv_gov.container import Services
from cctv_gov.models import AuditEvent, Principal, Site
from tests.conftest import World


def counts(services: Services) -> tuple[int, int, int]:
    with services.db.transaction() as s:
        return (
            s.scalar(select(func.count()).select_from(Site)) or 0,
            s.scalar(select(func.count()).select_from(Principal)) or 0,
            s.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


SITE = {"slug": "gym-north", "name": "North", "timezone": "Pacific/Auckland"}


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"slug": "gym-north", ', "application/json", 400, "malformed_json"),
        (b'{"slug": 5, "name": "N", "timezone": "UTC"}', "application/json", 422, "invalid_input"),
        (
            b'{"slug": "gym-north", "name": "N", "timezone": "Mars/Olympus"}',
            "application/json",
            422,
            "invalid_input",
        ),
        (
            b'{"slug": "gym-north", "name": "N", "timezone": "UTC", "retention_days": 45}',
            "application/json",
            422,
            "retention_too_long",
        ),
        (
            b'{"slug": "gym-north", "name": "N", "timezone": "UTC", "owner": "me"}',
            "application/json",
            422,
            "unknown_field",
        ),
        (b'{"slug": "../../etc", "name": "N", "timezone": "UTC"}', "application/json", 422, "invalid_input"),
        (b"[]", "application/json", 422, "invalid_input"),
    ],
)
def test_bad_bodies_are_refused_before_anything_is_written(
    client: TestClient,
    services: Services,
    world: World,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    before = counts(services)
    r = client.post(
        "/v1/sites", content=content, headers={**world.auth("admin@*"), "Content-Type": content_type}
    )
    assert_error(r, status, code)
    assert counts(services) == before


def test_validation_errors_say_where(client: TestClient, world: World) -> None:
    r = client.post("/v1/sites", json={**SITE, "retention_days": "many"}, headers=world.auth("admin@*"))
    error = assert_error(r, 422, "invalid_input")
    assert error["details"][0]["loc"] == ["body", "retention_days"]


def test_oversized_bodies_are_refused(client: TestClient, services: Services, world: World) -> None:
    before = counts(services)
    big = b'{"slug": "gym-north", "name": "' + b"x" * 2_000_000 + b'", "timezone": "UTC"}'
    r = client.post(
        "/v1/sites", content=big, headers={**world.auth("admin@*"), "Content-Type": "application/json"}
    )
    assert_error(r, 413, "body_too_large")

    def chunks() -> Any:  # no Content-Length: the limit is counted as the body streams in
        yield b'{"slug": "gym-north", "name": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'", "timezone": "UTC"}'

    r = client.post(
        "/v1/sites", content=chunks(), headers={**world.auth("admin@*"), "Content-Type": "application/json"}
    )
    assert_error(r, 413, "body_too_large")
    assert counts(services) == before


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_token"),
        ("Bearer", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "invalid_token"),
        ("Bearer not-a-token", "invalid_token"),
        ("Bearer cgv_" + "A" * 43, "invalid_token"),
    ],
)
def test_bad_tokens_get_401(
    client: TestClient, services: Services, world: World, header: str | None, code: str
) -> None:
    before = counts(services)
    headers = {} if header is None else {"Authorization": header}
    r = client.post("/v1/sites", json=SITE, headers=headers)
    assert_error(r, 401, code)
    assert counts(services) == before


def test_revoked_and_expired_tokens_and_disabled_principals_are_refused(
    client: TestClient, services: Services, world: World
) -> None:
    token_id = client.get(
        f"/v1/principals/{world.principals['operator@a']}/tokens", headers=world.auth("admin@a")
    ).json()[0]["id"]
    assert client.get("/v1/me", headers=world.auth("operator@a")).status_code == 200
    assert client.delete(f"/v1/tokens/{token_id}", headers=world.auth("admin@a")).status_code == 200
    assert_error(client.get("/v1/me", headers=world.auth("operator@a")), 401, "token_revoked")

    from datetime import timedelta

    services.clock.advance(timedelta(days=31))  # type: ignore[attr-defined]  # world tokens last 30 days
    assert_error(client.get("/v1/me", headers=world.auth("auditor@a")), 401, "token_expired")
    assert (
        client.get("/v1/me", headers=world.auth("agent@a")).status_code == 200
    )  # agent tokens do not expire


def test_disabled_principal_is_refused(client: TestClient, world: World) -> None:
    r = client.post(f"/v1/principals/{world.principals['operator@a']}/disable", headers=world.auth("admin@a"))
    assert r.status_code == 200
    assert_error(client.get("/v1/me", headers=world.auth("operator@a")), 401, "principal_disabled")


def test_a_token_of_another_site_is_refused_and_writes_nothing(
    client: TestClient, services: Services, world: World
) -> None:
    before = counts(services)
    r = client.post(
        "/v1/agents", json={"site_id": world.site_a, "name": "nvr-x"}, headers=world.auth("admin@b")
    )
    assert_error(r, 403, "forbidden_site")
    sites, principals, events = counts(services)
    assert (sites, principals) == before[:2]
    assert events == before[2] + 1, "only the denial itself is recorded"


def test_unknown_routes_methods_and_ids(client: TestClient, world: World) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(client.put("/v1/sites", headers=world.auth("admin@*")), 405, "method_not_allowed")
    assert_error(client.get("/v1/sites/not-a-uuid", headers=world.auth("admin@*")), 422, "invalid_site_id")
    r = client.get("/v1/principals/00000000-0000-0000-0000-000000000000", headers=world.auth("admin@*"))
    assert_error(r, 404, "principal_not_found")


def test_request_ids_are_echoed_only_when_plain(client: TestClient) -> None:
    r = client.get("/v1/me", headers={"X-Request-ID": "trace-12345678"})
    assert r.headers["x-request-id"] == "trace-12345678"
    assert r.json()["error"]["request_id"] == "trace-12345678"
    r = client.get("/v1/me", headers={"X-Request-ID": "bad id <script>"})
    assert r.headers["x-request-id"] != "bad id <script>"
    assert len(r.headers["x-request-id"]) == 32


def test_internal_errors_use_the_shape_and_leak_nothing(
    client: TestClient, services: Services, world: World
) -> None:
    services.db.engine.dispose()
    original = services.identity.repo.token_by_hash

    def boom(*_: Any) -> Any:
        raise RuntimeError("secret detail sk_live_should_not_leak")

    services.identity.repo.token_by_hash = boom  # type: ignore[method-assign]
    try:
        r = client.get("/v1/me", headers=world.auth("operator@a"))
    finally:
        services.identity.repo.token_by_hash = original  # type: ignore[method-assign]
    error = assert_error(r, 500, "internal_error")
    assert "sk_live" not in r.text
    assert error["details"] is None
