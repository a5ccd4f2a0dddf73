"""The spool: durable rows, legal transitions only, and what survives closing and reopening."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from cctv_ingest.spool import PENDING, TRANSITIONS, NewSegment, Spool, SpoolError, State

NOW = 1_780_000_000.0


def segment(
    path: str = "/nvr/cam-01/a.mp4", size: int = 100, mtime_ns: int = 5, start: str = "2026-01-05T09:00:00Z"
) -> NewSegment:
    return NewSegment(
        path=path,
        camera="cam-01",
        start_utc=start,
        end_utc="2026-01-05T09:01:00Z",
        container="mp4",
        codec=None,
        size=size,
        mtime_ns=mtime_ns,
    )


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "spool.sqlite3"


def test_a_new_spool_is_private_and_in_wal_mode(spool_path: Path) -> None:
    with Spool.open(spool_path):
        pass

    assert stat.S_IMODE(spool_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(spool_path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(spool_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_every_transition_is_committed_and_survives_reopening(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        row_id = spool.add(segment(), NOW)
        assert row_id is not None
        spool.mark_hashed(row_id, "ab" * 32, NOW + 1)

    with Spool.open(spool_path) as spool:
        row = spool.get(row_id)
        assert (row.state, row.sha256, row.created_at, row.updated_at) == (
            State.HASHED,
            "ab" * 32,
            NOW,
            NOW + 1,
        )
        spool.mark_prepared(
            row_id, upload_id="u-1", segment_id="s-1", chunk_size=65536, ciphertext_size=148, now=NOW + 2
        )
        spool.set_content_md5(row_id, "bWQ1", NOW + 3)

    with Spool.open(spool_path) as spool:
        row = spool.get(row_id)
        assert (row.state, row.upload_id, row.segment_id, row.content_md5) == (
            State.PREPARED,
            "u-1",
            "s-1",
            "bWQ1",
        )
        spool.mark_uploaded(row_id, NOW + 4)

    with Spool.open(spool_path) as spool:
        assert spool.get(row_id).state is State.UPLOADED
        spool.mark_registered(row_id, "s-1", NOW + 5)

    with Spool.open(spool_path) as spool:
        row = spool.get(row_id)
        assert (row.state, row.registered_at) == (State.REGISTERED, NOW + 5)
        spool.mark_deleted(row_id, NOW + 6)

    with Spool.open_read_only(spool_path) as spool:
        assert spool.get(row_id).state is State.DELETED


def test_a_data_key_never_has_a_place_in_the_spool(spool_path: Path) -> None:
    with Spool.open(spool_path):
        pass
    with sqlite3.connect(spool_path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(segments)")}

    assert not any("key" in column for column in columns)


def test_illegal_transitions_raise(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        row_id = spool.add(segment(), NOW)
        assert row_id is not None
        with pytest.raises(SpoolError, match="discovered cannot become uploaded"):
            spool.mark_uploaded(row_id, NOW)
        spool.mark_hashed(row_id, "ab" * 32, NOW)
        spool.mark_registered(row_id, "s-1", NOW)
        with pytest.raises(SpoolError, match="registered cannot become rejected"):
            spool.reject(row_id, "segment_overlap", "no", NOW)
        with pytest.raises(SpoolError, match="never forgotten"):
            spool.forget(row_id)


def test_the_transition_table_never_leaves_a_registered_segment() -> None:
    assert TRANSITIONS[State.REGISTERED] == {State.DELETED}
    assert TRANSITIONS[State.DELETED] == frozenset()
    for state in PENDING:
        assert State.REJECTED in TRANSITIONS[state]


def test_the_database_refuses_rows_that_break_the_state_rules(spool_path: Path) -> None:
    with Spool.open(spool_path):
        pass
    with sqlite3.connect(spool_path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO segments (path, camera, start_utc, end_utc, container, size, mtime_ns, state, "
            "created_at, updated_at) VALUES ('/a', 'c', 's', 'e', 'mp4', 1, 1, 'prepared', 0, 0)"
        )


def test_one_row_per_file_version(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        first = spool.add(segment(), NOW)
        assert spool.add(segment(), NOW) is None  # the same file again
        assert spool.is_known("/nvr/cam-01/a.mp4", 100, 5)
        assert not spool.is_known("/nvr/cam-01/a.mp4", 101, 5)

        # The file changed before it was registered: its row is replaced.
        second = spool.add(segment(size=101, mtime_ns=6), NOW)
        assert second is not None
        assert second != first
        assert spool.find(first or 0) is None
        assert not spool.is_known("/nvr/cam-01/a.mp4", 100, 5)

    with Spool.open(spool_path) as spool:  # the index is rebuilt from the database
        assert spool.is_known("/nvr/cam-01/a.mp4", 101, 5 + 1)


def test_a_busy_row_is_not_replaced_under_its_worker(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        first = spool.add(segment(), NOW)
        assert first is not None

        assert spool.add(segment(size=101, mtime_ns=6), NOW, busy=[first]) is None
        assert spool.get(first).size == 100


def test_a_new_file_at_a_registered_files_path_is_a_new_row(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        first = spool.add(segment(), NOW)
        assert first is not None
        spool.mark_hashed(first, "ab" * 32, NOW)
        spool.mark_registered(first, "s-1", NOW)

        second = spool.add(segment(size=200, mtime_ns=9), NOW)

        assert second is not None
        assert spool.get(first).state is State.REGISTERED
        assert spool.get(second).state is State.DISCOVERED


def test_registered_twin_finds_the_same_content(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        first = spool.add(segment(), NOW)
        assert first is not None
        spool.mark_hashed(first, "ab" * 32, NOW)
        spool.mark_registered(first, "s-1", NOW)
        second = spool.add(segment(mtime_ns=99), NOW)  # touched: same bytes, new mtime
        assert second is not None
        row = spool.mark_hashed(second, "ab" * 32, NOW)

        twin = spool.registered_twin(row)

        assert twin is not None
        assert twin.id == first


def test_defer_keeps_the_state_and_counts_attempts(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        row_id = spool.add(segment(), NOW)
        assert row_id is not None
        spool.mark_hashed(row_id, "ab" * 32, NOW)
        spool.defer(row_id, "unavailable", "503", NOW + 10, NOW)
        row = spool.defer(row_id, "unavailable", "503", NOW + 30, NOW + 1)

        assert (row.state, row.attempts, row.next_attempt_at, row.last_error_code) == (
            State.HASHED,
            2,
            NOW + 30,
            "unavailable",
        )
        assert spool.due(NOW + 29, PENDING) == []
        assert spool.due(NOW + 30, PENDING) == [row_id]
        assert spool.next_due_at(PENDING) == NOW + 30
        assert spool.due(NOW + 30, PENDING, exclude=[row_id]) == []

        registered = spool.mark_registered(row_id, "s-1", NOW + 40)
        assert (registered.attempts, registered.last_error_code) == (0, None)


def test_going_back_clears_what_no_longer_holds(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        row_id = spool.add(segment(), NOW)
        assert row_id is not None
        spool.mark_hashed(row_id, "ab" * 32, NOW)
        spool.mark_prepared(
            row_id, upload_id="u-1", segment_id="s-1", chunk_size=16, ciphertext_size=9, now=NOW
        )
        spool.set_content_md5(row_id, "md5", NOW)

        again = spool.mark_prepared(
            row_id, upload_id="u-1", segment_id="s-1", chunk_size=16, ciphertext_size=9, now=NOW
        )
        assert again.content_md5 == "md5"  # same upload: same key, same ciphertext, same MD5
        fresh = spool.mark_prepared(
            row_id, upload_id="u-2", segment_id="s-2", chunk_size=16, ciphertext_size=9, now=NOW
        )
        assert fresh.content_md5 is None

        hashed = spool.back_to_hashed(row_id, NOW)
        assert (hashed.state, hashed.upload_id, hashed.content_md5, hashed.sha256) == (
            State.HASHED,
            None,
            None,
            "ab" * 32,
        )
        spool.mark_prepared(
            row_id, upload_id="u-3", segment_id="s-3", chunk_size=16, ciphertext_size=9, now=NOW
        )
        discovered = spool.back_to_discovered(row_id, NOW)
        assert (discovered.state, discovered.sha256, discovered.upload_id) == (State.DISCOVERED, None, None)


def test_rejected_rows_and_counts(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        kept = spool.add(segment(), NOW)
        refused = spool.add(segment(path="/nvr/cam-01/b.mp4", size=50), NOW)
        broken = spool.add_rejected("/nvr/cam-01/c.mp4", "cam-01", 7, 1, "invalid_sidecar", "bad JSON", NOW)
        assert kept is not None
        assert refused is not None
        assert broken is not None
        spool.reject(refused, "segment_overlap", "taken", NOW)

        assert spool.count(PENDING) == (1, 100)
        assert spool.count([State.REJECTED]) == (2, 57)
        assert {row.id for row in spool.rejected_rows()} == {refused, broken}
        spool.forget(broken)
        assert not spool.is_known("/nvr/cam-01/c.mp4", 7, 1)


def test_meta_values(spool_path: Path) -> None:
    with Spool.open(spool_path) as spool:
        assert spool.get_meta("site_id") is None
        spool.set_meta({"site_id": "s-1", "site_slug": "gym"})
        spool.set_meta({"site_id": "s-2"})
    with Spool.open(spool_path) as spool:
        assert (spool.get_meta("site_id"), spool.get_meta("site_slug")) == ("s-2", "gym")


def test_read_only_spool_refuses_writes(spool_path: Path) -> None:
    with Spool.open(spool_path):
        pass
    with Spool.open_read_only(spool_path) as spool, pytest.raises(SpoolError, match="read-only"):
        spool.add(segment(), NOW)
    with pytest.raises(FileNotFoundError):
        Spool.open_read_only(spool_path.parent / "none.sqlite3")


def test_another_database_or_a_newer_spool_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x)")
    with pytest.raises(SpoolError, match="not a cctv-ingest spool"):
        Spool.open(other)

    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(SpoolError, match="newer cctv-ingest"):
        Spool.open(newer)

    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(SpoolError):
        Spool.open(garbage)


def test_a_spool_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(SpoolError, match="cannot create the spool"):
        Spool.open(blocker / "spool.sqlite3")


def test_status_can_read_while_the_agent_writes(spool_path: Path) -> None:
    with Spool.open(spool_path) as writer:
        row_id = writer.add(segment(), NOW)
        assert row_id is not None
        with Spool.open_read_only(spool_path) as reader:
            assert reader.get(row_id).state is State.DISCOVERED
            writer.mark_hashed(row_id, "ab" * 32, NOW)
            assert reader.get(row_id).state is State.HASHED
