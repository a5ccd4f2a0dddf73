"""Health, readiness and the API documentation."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from cctv_gov.config import Settings
from cctv_gov.kit.storage import S3ObjectStore
from tests.fixtures.s3 import S3Server


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "storage": "ok", "keys": "ok"}


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


def test_the_service_runs_on_an_s3_store(
    tmp_path: object, sqlite_db_url: str, s3_server: S3Server, s3_bucket: S3ObjectStore
) -> None:
    """Production wiring: settings name an S3 endpoint and bucket; readiness checks it over HTTP."""
    import io

    from pydantic import SecretStr

    from cctv_gov.app import create_app
    from cctv_gov.config import StorageBackend
    from cctv_gov.container import build_services

    settings = Settings(
        data_dir=tmp_path,
        database_url=sqlite_db_url,
        jobs_enabled=False,  # type: ignore[arg-type]
        storage_backend=StorageBackend.S3,
        s3_endpoint=s3_server.endpoint,
        s3_bucket=s3_bucket.bucket,
        s3_access_key=s3_server.access_key,
        s3_secret_key=SecretStr(s3_server.secret_key),
        s3_secure=False,
    )
    services = build_services(settings)
    services.storage.put("probe/hello.txt", io.BytesIO(b"hello"), length=5)
    assert b"".join(s3_bucket.open("probe/hello.txt")) == b"hello"
    with TestClient(create_app(settings, services=services)) as client:
        assert client.get("/readyz").json()["checks"] == {"database": "ok", "storage": "ok", "keys": "ok"}
    missing = settings.model_copy(update={"s3_bucket": "no-such-bucket-here"})
    with TestClient(create_app(missing, services=build_services(missing))) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["error"]["details"]["storage"].startswith("unavailable")
