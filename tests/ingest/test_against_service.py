"""The agent's client against the real service over HTTP on loopback (no fake in between)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cctv_ingest.client import ServiceClient, ServiceError

from cctv_gov.app import create_app
from cctv_gov.config import Settings
from cctv_gov.container import Services
from tests.conftest import World
from tests.fixtures.live import serve


@pytest.fixture
def base_url(settings: Settings, services: Services) -> Iterator[str]:
    with serve(create_app(settings, services=services)) as url:
        yield url


def test_the_agent_sees_its_own_site_grant(base_url: str, world: World) -> None:
    client = ServiceClient(base_url, world.tokens["agent@a"], timeout=10)
    assert client.health() == {"status": "ok"}
    me = client.whoami()
    assert me["principal"]["kind"] == "agent"
    assert me["grants"] == [{"role": "agent", "site_id": world.site_a, "site_slug": "site-a"}]


def test_service_errors_reach_the_agent_with_their_code(base_url: str, world: World) -> None:
    client = ServiceClient(base_url, "cgv_not-a-real-token", timeout=10)
    with pytest.raises(ServiceError) as caught:
        client.whoami()
    assert caught.value.status == 401
    assert caught.value.code == "invalid_token"
    assert not caught.value.retryable
    assert caught.value.request_id
    agent = ServiceClient(base_url, world.tokens["agent@a"], timeout=10)
    with pytest.raises(ServiceError) as caught:
        agent.request("GET", f"/v1/sites/{world.site_b}")
    assert (caught.value.status, caught.value.code) == (403, "forbidden_role")
