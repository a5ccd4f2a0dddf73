"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cctv_gov.authz import public
from cctv_gov.db import Database
from cctv_gov.kit.keystore import KeyStoreError
from cctv_gov.kit.storage import ObjectStore, StorageError
from cctv_gov.middleware import error_response

router = APIRouter(tags=["system"])


@router.get("/healthz", dependencies=[public()], summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", dependencies=[public()], summary="The database, the object store and the key store answer"
)
def readyz(request: Request) -> JSONResponse:
    db: Database = request.app.state.db
    store: ObjectStore = request.app.state.storage
    checks: dict[str, str] = {}
    try:
        db.ping()
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; its text may hold a URL, so omit it
        checks["database"] = f"unavailable ({type(exc).__name__})"
    try:
        store.check()
        checks["storage"] = "ok"
    except StorageError as exc:
        checks["storage"] = f"unavailable ({type(exc).__name__})"
    try:
        request.app.state.services.key_store.check()
        checks["keys"] = "ok"
    except KeyStoreError as exc:
        checks["keys"] = f"unavailable ({type(exc).__name__})"
    ready = all(v == "ok" for v in checks.values())
    if ready:
        return JSONResponse({"status": "ready", "checks": checks})
    return error_response(503, "not_ready", "a dependency is unavailable", checks)
