"""Health, readiness and the API documentation."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from cctv_gov.config import Settings


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok"}


def test_readyz_reports_a_missing_store(client: TestClient, settings: Settings) -> None:
    shutil.rmtree(settings.local_root)
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "not_ready"
    assert r.json()["error"]["details"]["storage"].startswith("unavailable")
    assert r.json()["error"]["details"]["database"] == "ok"


def test_openapi_documents_every_route_with_errors_and_examples(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["info"]["title"] == "cctv-gov"
    assert "/v1/audit/proofs/inclusion" in doc["paths"]
    site_create = doc["components"]["schemas"]["SiteCreate"]
    assert site_create["properties"]["slug"]["examples"] == ["gym-central"]
    assert client.get("/docs").status_code == 200
