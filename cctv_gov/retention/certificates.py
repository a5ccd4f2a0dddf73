"""Erasure certificates: per site and UTC day, what the purge erased (segments by evidence hash), which day keys
it destroyed, and the signed audit checkpoint whose tree contains the events that recorded it.

A certificate is canonical JSON signed by the service as a C2SP signed note, like a checkpoint: anyone with the
service's public key checks it offline (``docs/recipients.md``). It is built from records that never change once
written (tombstones, key destructions, sequenced audit events and signed checkpoints) and Ed25519 signatures are
deterministic, so asking twice gives the same bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.entry import canonical
from cctv_gov.audit.repository import AuditRepository
from cctv_gov.audit.service import AuditLog
from cctv_gov.authz import Actor
from cctv_gov.errors import Conflict, InvalidInput
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.signed_note import Signer
from cctv_gov.retention.repository import RetentionRepository
from cctv_gov.sites.service import SiteService

CERTIFICATE_TYPE = "cctv-gov/erasure-certificate/v1"
ERASURE_ACTIONS = (AuditAction.SEGMENT_ERASE.value, AuditAction.DAY_KEY_DESTROY.value)


@dataclass(frozen=True)
class Certificate:
    body: dict[str, Any]
    note: str


class CertificateService:
    def __init__(self, clock: Clock, audit: AuditLog, signer: Signer, sites: SiteService) -> None:
        self.audit = audit
        self.clock = clock
        self.signer = signer
        self.sites = sites
        self.repo = RetentionRepository()
        self.audit_repo = AuditRepository()

    def issue(self, session: Session, actor: Actor, site_id: uuid.UUID, day: date) -> Certificate:
        """The certificate, its reading recorded in the audit log."""
        cert = self.certificate(session, site_id, day)
        self.audit.record(
            session,
            actor,
            AuditAction.CERTIFICATE_READ,
            target_type="site",
            target_id=site_id,
            site_id=site_id,
            details={"day": day.isoformat(), "segments": len(cert.body["segments"])},
        )
        return cert

    def certificate(self, session: Session, site_id: uuid.UUID, day: date) -> Certificate:
        site = self.sites.get(session, site_id)
        start = datetime.combine(day, time(), tzinfo=UTC)
        end = start + timedelta(days=1)
        if end > self.clock.now():
            raise InvalidInput(
                "a day's certificate is issued once the day is over (UTC)", code="day_not_over"
            )
        total, pending, first, last = self.audit_repo.event_span(
            session, site_id, ERASURE_ACTIONS, start, end
        )
        if pending:
            raise Conflict(
                "some of the day's erasure events are not in the signed log yet; ask again in a moment",
                code="not_yet_sequenced",
            )
        checkpoint = None if last is None else self.audit_repo.first_checkpoint_from(session, last + 1)
        if last is not None and checkpoint is None:
            raise Conflict("no signed checkpoint covers the day's events yet", code="not_yet_sequenced")
        body: dict[str, Any] = {
            "type": CERTIFICATE_TYPE,
            "site_id": str(site.id),
            "site": site.slug,
            "day": day.isoformat(),
            "retention_days": site.retention_days,
            "segments": [
                {
                    "segment_id": str(t.segment_id),
                    "camera_id": str(t.camera_id),
                    "start": t.start_at.isoformat(),
                    "end": t.end_at.isoformat(),
                    "size": t.size,
                    "sha256": t.sha256.hex(),
                    "purged_at": t.purged_at.isoformat(),
                }
                for t in self.repo.tombstones_between(session, site_id, start, end)
            ],
            "day_keys_destroyed": [
                {"day": d.day.isoformat(), "destroyed_at": d.destroyed_at.isoformat()}
                for d in self.repo.destructions_between(session, site_id, start, end)
            ],
            "audit": {
                "events": total,
                "first_leaf_index": first,
                "last_leaf_index": last,
                "checkpoint": None
                if checkpoint is None
                else {
                    "tree_size": checkpoint.tree_size,
                    "root_hash": checkpoint.root_hash.hex(),
                    "note": checkpoint.note,
                },
            },
        }
        note = self.signer.sign(canonical(body).decode() + "\n")
        return Certificate(body, note)
