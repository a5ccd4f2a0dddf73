"""create_app(): the FastAPI application. The lifespan owns the engine, the storage client, the signing key and
the job runner; nothing a second process would need lives only here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cctv_gov import __version__
from cctv_gov.api import mount_routers
from cctv_gov.config import Settings, get_settings
from cctv_gov.container import Services, build_services
from cctv_gov.kit.clock import Clock
from cctv_gov.middleware import RedactLinks, RequestContextMiddleware, install_error_handlers
from cctv_gov.uploads.router import CONTENT_PATH

log = logging.getLogger("cctv_gov")

DESCRIPTION = """
CCTV footage governance. Footage is erased after its retention period, every access is logged in a
tamper-evident audit log (an RFC 9162 Merkle tree with signed checkpoints), and nothing is disclosed without
a General Manager's written approval.

Authenticate with `Authorization: Bearer <token>`. Every error has the shape
`{"error": {"code", "message", "details", "request_id"}}`.
"""


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, services: Services | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or build_services(settings, clock=clock)
        app.state.services = built
        app.state.db = built.db
        app.state.storage = built.storage
        app.state.audit_keys = built.keys
        app.state.authenticate = built.authenticate
        app.state.after_rollback = built.after_rollback
        runner = built.job_runner() if settings.jobs_enabled else None
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()
            if services is None:
                built.db.dispose()

    app = FastAPI(
        title="cctv-gov",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        # Ciphertext is the plaintext plus 32 bytes of header and 16 per 64 KiB chunk.
        large_bodies=(CONTENT_PATH, settings.max_segment_bytes + settings.max_segment_bytes // 4096 + 4096),
    )
    logging.getLogger("uvicorn.access").addFilter(RedactLinks())
    mount_routers(app)
    return app
