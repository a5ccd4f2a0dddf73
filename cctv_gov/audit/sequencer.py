"""The single sequencer: gives queued events their leaf index, stores the new subtree nodes, signs a checkpoint.

Writers only insert rows with ``leaf_index`` NULL, so they never contend for the log. Exactly one sequencer
runs at a time (the job runner's lock: a PostgreSQL advisory lock, or an in-process lock on SQLite); the unique
``leaf_index`` and checkpoint ``tree_size`` make a second, concurrent sequencer fail rather than fork the log.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cctv_gov.audit.repository import AuditRepository
from cctv_gov.kit import merkle
from cctv_gov.kit.clock import Clock
from cctv_gov.kit.signed_note import Checkpoint, Signer
from cctv_gov.models import AuditCheckpoint


class Sequencer:
    def __init__(self, signer: Signer, clock: Clock, *, batch_size: int = 5000) -> None:
        self.signer = signer
        self.clock = clock
        self.batch_size = batch_size
        self.repo = AuditRepository()

    def integrate(self, session: Session) -> int:
        """Integrate one batch of queued events; returns how many. Call inside one transaction."""
        pending = self.repo.unsequenced(session, self.batch_size)
        if not pending:
            return 0
        head = self.repo.latest_checkpoint(session)
        size = 0 if head is None else head.tree_size
        edge = merkle.range_nodes(0, size)
        found = self.repo.get_nodes(session, edge)
        compact = merkle.CompactRange(size, [found[c] for c in edge])
        if head is not None and compact.root() != head.root_hash:
            raise RuntimeError(
                "the stored tree does not match the latest checkpoint; run `cctv-gov audit verify`"
            )
        assignments: list[dict[str, int]] = []
        nodes: list[tuple[int, int, bytes]] = []
        for offset, (row_id, leaf) in enumerate(pending):
            assignments.append({"id": row_id, "leaf_index": size + offset})
            nodes.extend(compact.append(leaf))
        self.repo.assign_leaf_indexes(session, assignments)
        self.repo.insert_nodes(session, nodes)
        new_size = size + len(pending)
        root = compact.root()
        note = self.signer.sign(Checkpoint(self.signer.name, new_size, root).to_text())
        self.repo.add_checkpoint(
            session,
            AuditCheckpoint(tree_size=new_size, root_hash=root, note=note, created_at=self.clock.now()),
        )
        return len(pending)

    def integrate_all(self, session: Session) -> int:
        total = 0
        while (n := self.integrate(session)) > 0:
            total += n
        return total
