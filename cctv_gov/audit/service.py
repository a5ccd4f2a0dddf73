"""Rules of the audit log: what an event holds, who may read which events, and proofs against signed roots."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from cctv_gov.audit.actions import AuditAction, Outcome
from cctv_gov.audit.entry import canonical, check_details, entry_fields
from cctv_gov.audit.repository import AuditRepository, Coord, EventValues
from cctv_gov.authz import Actor, Role
from cctv_gov.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from cctv_gov.kit import merkle
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.context import current_request_id
from cctv_gov.kit.ids import new_id
from cctv_gov.models import AuditCheckpoint, AuditEvent

AUDIT_READERS = (Role.AUDITOR, Role.GENERAL_MANAGER)


@dataclass(frozen=True)
class Proof:
    tree_size: int
    root_hash: bytes
    hashes: list[bytes]


class AuditLog:
    """Appends events in the caller's transaction. It never waits on the sequencer."""

    def __init__(self, clock: Clock, repository: AuditRepository | None = None) -> None:
        self.clock = clock
        self.repo = repository or AuditRepository()

    def record(
        self,
        session: Session,
        actor: Actor,
        action: AuditAction,
        *,
        target_type: str,
        target_id: str | uuid.UUID | None = None,
        site_id: uuid.UUID | None = None,
        purpose: str | None = None,
        outcome: Outcome = Outcome.OK,
        details: dict[str, Any] | None = None,
    ) -> EventValues:
        event = self.event(
            actor,
            action,
            target_type=target_type,
            target_id=target_id,
            site_id=site_id,
            purpose=purpose,
            outcome=outcome,
            details=details,
        )
        self.repo.add_event(session, event)
        return event

    def record_many(self, session: Session, events: Sequence[EventValues]) -> None:
        """Append events built with ``event()`` in one statement (a batch of registrations)."""
        self.repo.add_events(session, events)

    def event(
        self,
        actor: Actor,
        action: AuditAction,
        *,
        target_type: str,
        target_id: str | uuid.UUID | None = None,
        site_id: uuid.UUID | None = None,
        purpose: str | None = None,
        outcome: Outcome = Outcome.OK,
        details: dict[str, Any] | None = None,
    ) -> EventValues:
        event = EventValues(
            event_id=new_id(),
            occurred_at=self.clock.now(),
            actor_id=actor.principal_id,
            actor_kind=actor.kind,
            actor_role=None if actor.acting_role is None else actor.acting_role.value,
            action=action.value,
            target_type=target_type,
            target_id=None if target_id is None else str(target_id),
            site_id=site_id,
            purpose=purpose,
            request_id=current_request_id(),
            outcome=outcome.value,
            details=check_details(dict(details or {})),
        )
        event.entry = canonical(entry_fields(event))
        event.leaf_hash = merkle.leaf_hash(event.entry)
        return event

    # Reading -----------------------------------------------------------------------------------------------

    def latest_checkpoint(self, session: Session) -> AuditCheckpoint:
        head = self.repo.latest_checkpoint(session)
        if head is None:
            raise NotFound("no checkpoint has been signed yet", code="no_checkpoint")
        return head

    def get_event(self, session: Session, actor: Actor, event_id: uuid.UUID) -> AuditEvent:
        """One event, for an auditor or general manager of its site. Reading the log is itself audited."""
        event = self.repo.get_event(session, event_id)
        if event is None:
            raise NotFound("no such audit event", code="audit_event_not_found")
        actor.require(AUDIT_READERS, event.site_id)
        self.record(
            session,
            actor,
            AuditAction.AUDIT_READ,
            target_type="audit_event",
            target_id=event_id,
            site_id=event.site_id,
        )
        return event

    def list_events(
        self,
        session: Session,
        actor: Actor,
        *,
        site_id: uuid.UUID | None,
        action: AuditAction | None,
        after_id: int | None,
        limit: int,
    ) -> Sequence[AuditEvent]:
        if site_id is not None:
            actor.require(AUDIT_READERS, site_id)
        visible = actor.sites_with(AUDIT_READERS)
        events = self.repo.list_events(
            session,
            site_ids=visible,
            site_id=site_id,
            action=None if action is None else action.value,
            after_id=after_id,
            limit=limit,
        )
        self.record(
            session,
            actor,
            AuditAction.AUDIT_READ,
            target_type="audit_events",
            site_id=site_id,
            details={"returned": len(events)},
        )
        return events

    def _head_size(self, session: Session) -> int:
        head = self.repo.latest_checkpoint(session)
        return 0 if head is None else head.tree_size

    def _fetch(self, session: Session) -> merkle.NodeGetter:
        def get(coords: Sequence[Coord]) -> dict[Coord, bytes]:
            found = self.repo.get_nodes(session, coords)
            missing = [c for c in coords if c not in found]
            if missing:
                raise ServiceUnavailable("the audit tree is missing nodes", code="audit_log_corrupt")
            return found

        return get

    def inclusion_proof(self, session: Session, leaf_index: int, tree_size: int | None) -> Proof:
        size = self._head_size(session) if tree_size is None else tree_size
        head = self._head_size(session)
        if size > head:
            raise Conflict(
                f"tree size {size} is beyond the latest checkpoint ({head})", code="tree_size_unknown"
            )
        if not 0 <= leaf_index < size:
            raise InvalidInput("leaf_index must be below tree_size", code="leaf_index_out_of_range")
        get = self._fetch(session)
        hashes = merkle.inclusion_proof(leaf_index, size, get)
        root = merkle.root(size, get)
        leaf = get([(0, leaf_index)])[(0, leaf_index)]
        # A corrupt node table must never yield a proof that looks valid to us but not to a verifier.
        self._check(lambda: merkle.verify_inclusion(leaf, leaf_index, size, hashes, root))
        self._check_signed_root(session, size, root)
        return Proof(size, root, hashes)

    def consistency_proof(self, session: Session, first: int, second: int | None) -> Proof:
        head = self._head_size(session)
        size2 = head if second is None else second
        if size2 > head:
            raise Conflict(
                f"tree size {size2} is beyond the latest checkpoint ({head})", code="tree_size_unknown"
            )
        if not 0 <= first <= size2:
            raise InvalidInput("first must be between 0 and second", code="tree_size_out_of_range")
        get = self._fetch(session)
        hashes = merkle.consistency_proof(first, size2, get) if first > 0 else []
        root2 = merkle.root(size2, get)
        if first > 0:
            root1 = merkle.root(first, get)
            self._check(lambda: merkle.verify_consistency(first, size2, hashes, root1, root2))
            self._check_signed_root(session, first, root1)
        self._check_signed_root(session, size2, root2)
        return Proof(size2, root2, hashes)

    def _check_signed_root(self, session: Session, size: int, root: bytes) -> None:
        checkpoint = self.repo.checkpoint_at(session, size)
        if checkpoint is not None and checkpoint.root_hash != root:
            raise ServiceUnavailable(
                "stored tree disagrees with a signed checkpoint", code="audit_log_corrupt"
            )

    @staticmethod
    def _check(verify: Any) -> None:
        try:
            verify()
        except merkle.ProofError:
            raise ServiceUnavailable("stored tree failed self-check", code="audit_log_corrupt") from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
