"""Builds the long-lived parts from Settings: database, object store, signing keys and the domain services.

Used by the app's lifespan, the CLI and the job worker alike, so every entry point wires things the same way.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.orm import Session

from cctv_gov.approvals.service import ApprovalService
from cctv_gov.audit.actions import AuditAction, Outcome
from cctv_gov.audit.keys import AuditKeys, load_audit_keys
from cctv_gov.audit.sequencer import Sequencer
from cctv_gov.audit.service import AuditLog
from cctv_gov.audit.tasks import sequencer_job
from cctv_gov.authz import Actor, Denial
from cctv_gov.cameras.service import CameraService
from cctv_gov.config import Settings, StorageBackend
from cctv_gov.db import Database
from cctv_gov.errors import Forbidden, Unauthenticated
from cctv_gov.footage.keys import build_key_store, derive_secret, load_master_key
from cctv_gov.footage.service import FootageService
from cctv_gov.holds.service import HoldService
from cctv_gov.identity.service import IdentityService
from cctv_gov.kit.clock import Clock, SystemClock
from cctv_gov.kit.jobs import Job, JobRunner
from cctv_gov.kit.keystore import KeyStore
from cctv_gov.kit.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from cctv_gov.retention.certificates import CertificateService
from cctv_gov.retention.compliance import ComplianceService
from cctv_gov.retention.reconcile import ReconcileService
from cctv_gov.retention.service import PurgeService
from cctv_gov.retention.tasks import legal_hold_job, purge_job, reconcile_job
from cctv_gov.sites.service import SiteService
from cctv_gov.uploads.service import UploadService
from cctv_gov.uploads.tasks import cleanup_job

CLEANUP_INTERVAL_SECONDS = 60.0
LEGAL_HOLD_INTERVAL_SECONDS = 60.0

log = logging.getLogger("cctv_gov")


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    storage: ObjectStore
    keys: AuditKeys
    audit: AuditLog
    sequencer: Sequencer
    identity: IdentityService
    sites: SiteService
    key_store: KeyStore
    cameras: CameraService
    uploads: UploadService
    footage: FootageService
    approvals: ApprovalService
    holds: HoldService
    purge: PurgeService
    certificates: CertificateService
    compliance: ComplianceService
    reconcile: ReconcileService

    def jobs(self) -> list[Job]:
        return [
            sequencer_job(self.sequencer, self.settings.sequencer_interval_seconds),
            cleanup_job(self.uploads, CLEANUP_INTERVAL_SECONDS),
            purge_job(self.purge, self.db, self.settings.purge_interval_seconds),
            reconcile_job(self.reconcile, self.db, self.settings.reconcile_interval_seconds),
            legal_hold_job(self.purge, self.db, LEGAL_HOLD_INTERVAL_SECONDS),
        ]

    def job_runner(self) -> JobRunner:
        worker = f"{socket.gethostname()}:{os.getpid()}"
        return JobRunner(self.db, self.jobs(), worker_id=worker)

    # Hooks the HTTP layer calls --------------------------------------------------------------------------

    def authenticate(self, session: Session, request: Request) -> Actor:
        header = request.headers.get("authorization")
        if not header:
            raise Unauthenticated(
                "send an API token as 'Authorization: Bearer <token>'", code="missing_token"
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'", code="invalid_token")
        return self.identity.authenticate(session, token.strip())

    def after_rollback(self, request: Request, exc: BaseException) -> None:
        """A refused access is itself an audited event, kept although the request's transaction rolled back."""
        denial = exc.denial if isinstance(exc, Forbidden) else None
        if not isinstance(denial, Denial):
            return
        route = getattr(request.scope.get("route"), "path", None) or request.url.path
        try:
            with self.db.transaction() as session:
                self.audit.record(
                    session,
                    denial.actor,
                    AuditAction.ACCESS_DENY,
                    target_type="route",
                    target_id=f"{request.method} {route}"[:64],
                    site_id=denial.site_id,
                    outcome=Outcome.DENIED,
                    details={
                        "needed": ",".join(denial.needed),
                        "code": exc.code if isinstance(exc, Forbidden) else "",
                    },
                )
        except Exception as err:  # noqa: BLE001 - the refusal itself stands; losing its record is logged loudly
            log.error("could not record a denied access: %s", type(err).__name__)


def build_storage(settings: Settings) -> ObjectStore:
    if settings.storage_backend is StorageBackend.S3:
        return S3ObjectStore(
            settings.s3_endpoint,
            settings.s3_bucket,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            region=settings.s3_region,
            secure=settings.s3_secure,
        )
    settings.local_root.mkdir(parents=True, exist_ok=True)
    return LocalObjectStore(settings.local_root)


def build_services(settings: Settings, *, clock: Clock | None = None, db: Database | None = None) -> Services:
    settings.check_production()
    clock = clock or SystemClock()
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = db or Database(settings.database_url)
    keys = load_audit_keys(settings)
    master_key = load_master_key(settings)
    key_store = build_key_store(settings, master_key)
    storage = build_storage(settings)
    audit = AuditLog(clock)
    sites = SiteService(clock, audit, max_retention_days=settings.max_retention_days)
    cameras = CameraService(clock, audit)
    approvals = ApprovalService(clock, audit, keys.signer)
    holds = HoldService(clock, audit, approvals, cameras)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        storage=storage,
        keys=keys,
        audit=audit,
        sequencer=Sequencer(keys.signer, clock, batch_size=settings.audit_batch_size),
        identity=IdentityService(clock, audit, touch_seconds=settings.token_touch_seconds),
        sites=sites,
        key_store=key_store,
        cameras=cameras,
        uploads=UploadService(clock, audit, settings, storage, key_store, sites, cameras),
        footage=FootageService(
            clock,
            audit,
            settings,
            storage,
            key_store,
            cameras,
            link_secret=derive_secret(master_key, "playback links"),
        ),
        approvals=approvals,
        holds=holds,
        purge=PurgeService(clock, audit, settings, storage, key_store, holds),
        certificates=CertificateService(clock, audit, keys.signer, sites),
        compliance=ComplianceService(clock, audit, settings, sites, cameras, holds),
        reconcile=ReconcileService(clock, audit, settings, storage),
    )
