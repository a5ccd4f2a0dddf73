"""Recompute the whole log from the database and check it against every signed checkpoint.

What is checked, and what each catches:
* each stored entry hashes to its stored leaf hash (an edited entry);
* each entry's fields equal the row's columns, and the purpose text matches its hash (an edited column);
* leaf indexes run 0, 1, 2 ... with no gap or repeat (a deleted, inserted or reordered row);
* every checkpoint's signature verifies against a pinned key and its root equals the recomputed root at its
  size (a rewritten history: changing a leaf changes every later root);
* no sequenced event lies beyond the latest checkpoint, and none is missing before it;
* checkpoints kept outside the database (``witnessed``) are consistent with the log (a truncated log that
  deleted its own latest checkpoints too).
"""

from __future__ import annotations

import gc
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from cctv_gov.audit.entry import entry_fields
from cctv_gov.audit.repository import AuditRepository
from cctv_gov.kit import merkle
from cctv_gov.kit.signed_note import Checkpoint, NoteError, Verifier, verify_note

MAX_PROBLEMS = 50


@dataclass
class VerifyReport:
    events: int = 0
    checkpoints: int = 0
    witnessed: int = 0
    unsequenced: int = 0
    tree_size: int = 0
    root_hash: bytes = merkle.EMPTY_ROOT
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


def _open(note: str, origin: str, verifiers: Sequence[Verifier]) -> Checkpoint:
    verified = verify_note(note, verifiers)
    checkpoint = Checkpoint.parse(verified.text)
    if checkpoint.origin != origin:
        raise NoteError(f"origin {checkpoint.origin!r} is not this log's ({origin!r})")
    return checkpoint


def verify_log(
    session: Session, *, origin: str, verifiers: Sequence[Verifier], witnessed: Sequence[str] = ()
) -> VerifyReport:
    started = time.perf_counter()
    repo = AuditRepository()
    report = VerifyReport()
    repo.begin_snapshot(session)
    expected_roots: dict[int, bytes] = {}
    for cp in repo.iter_checkpoints(session):
        report.checkpoints += 1
        try:
            parsed = _open(cp.note, origin, verifiers)
        except (NoteError, ValueError) as exc:
            report.problem(f"checkpoint at size {cp.tree_size}: signature or format invalid ({exc})")
            continue
        if parsed.size != cp.tree_size or parsed.root_hash != cp.root_hash:
            report.problem(f"checkpoint at size {cp.tree_size}: row disagrees with its signed note")
        expected_roots[parsed.size] = parsed.root_hash
    for note in witnessed:
        report.witnessed += 1
        try:
            parsed = _open(note, origin, verifiers)
        except (NoteError, ValueError) as exc:
            report.problem(f"witnessed checkpoint: signature or format invalid ({exc})")
            continue
        known = expected_roots.get(parsed.size)
        if known is not None and known != parsed.root_hash:
            report.problem(f"witnessed checkpoint at size {parsed.size} differs from the stored one (a fork)")
        expected_roots[parsed.size] = parsed.root_hash

    # On PostgreSQL the database re-hashes every entry and compares it with the row's columns, in C and in
    # parallel, and Python builds the tree from the checked leaf hashes. Elsewhere, or if that check cannot
    # run (an entry that is not UTF-8 JSON), Python does it all: several times slower, same verdicts.
    checked_in_database = False
    if repo.supports_database_check(session):
        mismatched = repo.entry_mismatches(session, MAX_PROBLEMS)
        if mismatched is not None:
            checked_in_database = True
            for leaf_index, hash_ok, columns_ok in mismatched:
                if not hash_ok:
                    report.problem(f"leaf {leaf_index}: stored leaf hash does not match its entry")
                if not columns_ok:
                    report.problem(f"leaf {leaf_index}: columns differ from the signed entry")
    leaves = repo.iter_leaf_hashes(session) if checked_in_database else _python_checked(repo, session, report)
    compact = merkle.CompactRange()
    index = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived rows: the collector would add a third to the run for nothing
    try:
        for leaf_index, leaf in leaves:
            if leaf_index != index:
                report.problem(
                    f"leaf index {leaf_index} found where {index} was expected (gap, insert or reorder)"
                )
                index = leaf_index
            compact.append(leaf)
            index += 1
            root = expected_roots.get(index)
            if root is not None and compact.root() != root:
                report.problem(f"root at size {index} differs from the signed checkpoint")
    finally:
        if gc_was_enabled:
            gc.enable()
    report.events = index
    report.tree_size = index
    report.root_hash = compact.root()

    latest = max((s for s in expected_roots), default=0)
    if latest > index:
        report.problem(f"a signed checkpoint covers {latest} events but the log holds only {index}")
    stored_latest = repo.latest_checkpoint(session)
    stored_size = 0 if stored_latest is None else stored_latest.tree_size
    if index > stored_size:
        report.problem(
            f"{index - stored_size} sequenced events lie beyond the latest checkpoint ({stored_size})"
        )
    report.unsequenced = repo.count_unsequenced(session)
    report.seconds = time.perf_counter() - started
    return report


def _python_checked(
    repo: AuditRepository, session: Session, report: VerifyReport
) -> Iterator[tuple[int, bytes]]:
    """Every event re-hashed and compared with its columns in Python; yields (leaf_index, recomputed leaf)."""
    sha256 = hashlib.sha256
    loads = json.loads
    for row in repo.iter_sequenced(session):
        leaf = sha256(b"\x00" + row.entry).digest()
        if leaf != row.leaf_hash:
            report.problem(f"leaf {row.leaf_index}: stored leaf hash does not match its entry")
        try:
            parsed_entry = loads(row.entry)
        except ValueError:
            parsed_entry = None
        if parsed_entry != entry_fields(row):
            report.problem(
                f"leaf {row.leaf_index}: columns differ from the signed entry (event {row.event_id})"
            )
        yield row.leaf_index, leaf
