"""The one place routers are mounted."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from cctv_gov.audit.router import router as audit_router
from cctv_gov.cameras.router import router as cameras_router
from cctv_gov.footage.router import router as footage_router
from cctv_gov.holds.router import router as holds_router
from cctv_gov.identity.router import router as identity_router
from cctv_gov.retention.router import router as retention_router
from cctv_gov.sites.router import router as sites_router
from cctv_gov.system.router import router as system_router
from cctv_gov.uploads.router import router as uploads_router

ROUTERS: tuple[APIRouter, ...] = (
    system_router,
    sites_router,
    cameras_router,
    uploads_router,
    footage_router,
    holds_router,
    retention_router,
    identity_router,
    audit_router,
)


def mount_routers(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)


def iter_api_routes() -> Iterator[APIRoute]:
    """Every API route, with its full path (tests walk these to check each declares an access rule)."""
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route
