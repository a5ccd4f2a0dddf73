"""The durable local spool: one SQLite row per segment file and the state it has reached.

The database runs in WAL mode with ``synchronous=FULL`` and every state change is its own committed
transaction, so after a crash or a power cut each row says exactly which step comes next. Every step is
idempotent on the service (prepare gives the same upload again, the PUT overwrites the same object with
the same bytes, complete answers the same segment again), so repeating the step that was under way when
the agent died never loses or duplicates a segment.

States::

    discovered --hash--> hashed --prepare--> prepared --PUT--> uploaded --complete--> registered [--> deleted]
         |                  |                   |  ^               |
         |                  |                   |  +-object_missing+
         |                  |<--upload_expired/quarantined---------+
         |<-----------repeated digest mismatch--+
    any state before registered --refused for good--> rejected

A row in any state before ``registered`` is "pending". When the file changes (size or modification time)
before its segment is registered, its row is dropped and the file is queued afresh once it settles again.
Rejected rows stay until the agent next starts, which retries them if their file is still there (a
restart is how a configuration change takes effect).

The spool never holds a data key or the token: only paths, times, sizes, hashes and the service's ids.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class State(StrEnum):
    DISCOVERED = "discovered"
    HASHED = "hashed"
    PREPARED = "prepared"
    UPLOADED = "uploaded"
    REGISTERED = "registered"
    DELETED = "deleted"
    REJECTED = "rejected"


PENDING = (State.DISCOVERED, State.HASHED, State.PREPARED, State.UPLOADED)
DONE = (State.REGISTERED, State.DELETED)

# Which state may follow which. Anything else is a bug and raises.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DISCOVERED: frozenset({State.HASHED, State.REGISTERED, State.REJECTED}),
    State.HASHED: frozenset({State.PREPARED, State.REGISTERED, State.REJECTED, State.DISCOVERED}),
    State.PREPARED: frozenset(
        {State.PREPARED, State.UPLOADED, State.HASHED, State.DISCOVERED, State.REGISTERED, State.REJECTED}
    ),
    State.UPLOADED: frozenset({State.REGISTERED, State.PREPARED, State.HASHED, State.REJECTED}),
    State.REGISTERED: frozenset({State.DELETED}),
    State.DELETED: frozenset(),
    State.REJECTED: frozenset(),
}

_SCHEMA = f"""
CREATE TABLE segments (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids stay unique for a run
    path             TEXT    NOT NULL,
    camera           TEXT    NOT NULL,
    start_utc        TEXT,
    end_utc          TEXT,
    container        TEXT,
    codec            TEXT,
    size             INTEGER NOT NULL,
    mtime_ns         INTEGER NOT NULL,
    sha256           TEXT,
    state            TEXT    NOT NULL,
    upload_id        TEXT,
    segment_id       TEXT,
    chunk_size       INTEGER,
    ciphertext_size  INTEGER,
    content_md5      TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    digest_failures  INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL    NOT NULL DEFAULT 0,
    last_error_code  TEXT,
    last_error       TEXT,
    created_at       REAL    NOT NULL,
    updated_at       REAL    NOT NULL,
    registered_at    REAL,
    UNIQUE (path, size, mtime_ns),
    CHECK (state IN ({", ".join(f"'{state.value}'" for state in State)})),
    CHECK (state = 'rejected' OR (start_utc IS NOT NULL AND end_utc IS NOT NULL AND container IS NOT NULL)),
    CHECK (state NOT IN ('hashed', 'prepared', 'uploaded') OR sha256 IS NOT NULL),
    CHECK (state NOT IN ('prepared', 'uploaded') OR (upload_id IS NOT NULL AND segment_id IS NOT NULL))
);
CREATE INDEX segments_due ON segments (state, next_attempt_at);
CREATE INDEX segments_content ON segments (camera, start_utc, sha256);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
PRAGMA user_version = {SCHEMA_VERSION};
"""

_COLUMNS = (
    "id, path, camera, start_utc, end_utc, container, codec, size, mtime_ns, sha256, state, upload_id, "
    "segment_id, chunk_size, ciphertext_size, content_md5, attempts, digest_failures, next_attempt_at, "
    "last_error_code, last_error, created_at, updated_at, registered_at"
)


class SpoolError(Exception):
    """The spool cannot be opened or used (wrong file, newer schema, illegal transition)."""


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    path: str
    camera: str
    start_utc: str | None
    end_utc: str | None
    container: str | None
    codec: str | None
    size: int
    mtime_ns: int
    sha256: str | None
    state: State
    upload_id: str | None
    segment_id: str | None
    chunk_size: int | None
    ciphertext_size: int | None
    content_md5: str | None
    attempts: int
    digest_failures: int
    next_attempt_at: float
    last_error_code: str | None
    last_error: str | None
    created_at: float
    updated_at: float
    registered_at: float | None

    @classmethod
    def from_db(cls, values: Sequence[Any]) -> Row:
        fields = list(values)
        fields[10] = State(fields[10])
        return cls(*fields)


@dataclass(frozen=True, slots=True)
class NewSegment:
    """What the scanner knows of a complete file (times already in RFC 3339 UTC)."""

    path: str
    camera: str
    start_utc: str
    end_utc: str
    container: str
    codec: str | None
    size: int
    mtime_ns: int


class Spool:
    """The spool database. Thread-safe: one connection, each call under a lock, one transaction each."""

    def __init__(self, connection: sqlite3.Connection, path: Path, *, read_only: bool) -> None:
        self._db = connection
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        self._known: dict[str, set[tuple[int, int]]] | None = None

    # -- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Spool:
        """Open (creating when missing) the spool for the agent: WAL, synchronous=FULL, mode 0600."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                # Created here, not by SQLite, so that it is private from the start (SQLite's -wal and -shm
                # files take the database file's permissions).
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
                os.close(fd)
        except OSError as exc:
            raise SpoolError(f"{path}: cannot create the spool: {exc.strerror}") from None
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        except sqlite3.Error as exc:
            raise SpoolError(f"{path}: cannot open the spool: {exc}") from None
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SpoolError(f"{path}: the spool needs WAL mode, SQLite gave {mode}")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise SpoolError(f"{path}: is a SQLite database, but not a cctv-ingest spool")
                db.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            elif version > SCHEMA_VERSION:
                raise SpoolError(
                    f"{path}: the spool was written by a newer cctv-ingest (schema {version}); "
                    "upgrade the agent"
                )
        except sqlite3.DatabaseError as exc:
            db.close()
            raise SpoolError(f"{path}: not a usable spool: {exc}") from None
        except SpoolError:
            db.close()
            raise
        return cls(db, path, read_only=False)

    @classmethod
    def open_read_only(cls, path: Path) -> Spool:
        """Open an existing spool without ever writing to it (for ``cctv-ingest status``)."""
        if not path.is_file():
            raise FileNotFoundError(str(path))
        uri = f"{path.absolute().as_uri()}?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10)
            db.execute("PRAGMA busy_timeout = 10000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise SpoolError(f"{path}: cannot read the spool: {exc}") from None
        if version != SCHEMA_VERSION:
            db.close()
            raise SpoolError(f"{path}: not a cctv-ingest spool this version can read (schema {version})")
        return cls(db, path, read_only=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction (IMMEDIATE: it takes the write lock up front)."""
        if self.read_only:
            raise SpoolError("the spool was opened read-only")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- meta --------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                sorted(values.items()),
            )

    # -- reading -----------------------------------------------------------------------------------------

    def get(self, row_id: int) -> Row:
        with self._lock:
            values = self._db.execute(f"SELECT {_COLUMNS} FROM segments WHERE id = ?", (row_id,)).fetchone()  # noqa: S608
        if values is None:
            raise SpoolError(f"no spool row {row_id}")
        return Row.from_db(values)

    def find(self, row_id: int) -> Row | None:
        try:
            return self.get(row_id)
        except SpoolError:
            return None

    def rows(
        self, where: str = "1", params: Sequence[object] = (), order: str = "id", limit: int | None = None
    ) -> list[Row]:
        """Rows matching a fixed SQL condition written in this package (never user input)."""
        sql = f"SELECT {_COLUMNS} FROM segments WHERE {where} ORDER BY {order}"  # noqa: S608
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            found = self._db.execute(sql, tuple(params)).fetchall()
        return [Row.from_db(values) for values in found]

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """A read-only query written in this package (for status)."""
        with self._lock:
            return [tuple(values) for values in self._db.execute(sql, tuple(params)).fetchall()]

    def due(
        self, now: float, states: Iterable[State], exclude: Iterable[int] = (), limit: int = 100
    ) -> list[int]:
        """Ids of rows in ``states`` whose next attempt is due, oldest first, skipping ``exclude``."""
        wanted = [state.value for state in states]
        skip = set(exclude)
        marks = ", ".join("?" for _ in wanted)
        with self._lock:
            found = self._db.execute(
                f"SELECT id FROM segments WHERE state IN ({marks}) AND next_attempt_at <= ? "  # noqa: S608
                "ORDER BY next_attempt_at, id LIMIT ?",
                (*wanted, now, limit + len(skip)),
            ).fetchall()
        return [row_id for (row_id,) in found if row_id not in skip][:limit]

    def next_due_at(self, states: Iterable[State], exclude: Iterable[int] = ()) -> float | None:
        """When the earliest row in ``states`` (other than ``exclude``) is next due, or None."""
        wanted = [state.value for state in states]
        skip = list(exclude)
        marks = ", ".join("?" for _ in wanted)
        sql = f"SELECT min(next_attempt_at) FROM segments WHERE state IN ({marks})"  # noqa: S608
        if skip:
            sql += f" AND id NOT IN ({', '.join('?' for _ in skip)})"
        with self._lock:
            (value,) = self._db.execute(sql, (*wanted, *skip)).fetchone()
        return None if value is None else float(value)

    def count(self, states: Iterable[State]) -> tuple[int, int]:
        """(rows, bytes) in ``states``."""
        wanted = [state.value for state in states]
        marks = ", ".join("?" for _ in wanted)
        with self._lock:
            rows, size = self._db.execute(
                f"SELECT count(*), coalesce(sum(size), 0) FROM segments WHERE state IN ({marks})",  # noqa: S608
                wanted,
            ).fetchone()
        return int(rows), int(size)

    # -- what the scanner needs ----------------------------------------------------------------------------

    def _known_index(self) -> dict[str, set[tuple[int, int]]]:
        if self._known is None:
            index: dict[str, set[tuple[int, int]]] = {}
            for path, size, mtime_ns in self._db.execute("SELECT path, size, mtime_ns FROM segments"):
                index.setdefault(path, set()).add((size, mtime_ns))
            self._known = index
        return self._known

    def is_known(self, path: str, size: int, mtime_ns: int) -> bool:
        """Whether a row exists for this exact file (path, size and modification time)."""
        with self._lock:
            return (size, mtime_ns) in self._known_index().get(path, ())

    def _index_add(self, path: str, size: int, mtime_ns: int) -> None:
        self._known_index().setdefault(path, set()).add((size, mtime_ns))

    def _index_drop(self, path: str, size: int, mtime_ns: int) -> None:
        entries = self._known_index().get(path)
        if entries is not None:
            entries.discard((size, mtime_ns))
            if not entries:
                del self._known_index()[path]

    def add(self, segment: NewSegment, now: float, busy: Iterable[int] = ()) -> int | None:
        """Queue a complete file as ``discovered``; returns the new row's id.

        A pending or rejected row for the same path with another size or modification time is replaced
        (the file changed before it was registered), unless it is ``busy`` (being worked on; the worker
        sees the change itself). Returns None when nothing was added.
        """
        with self._write() as db:
            if self.is_known(segment.path, segment.size, segment.mtime_ns):
                return None
            skip = set(busy)
            for old_id, size, mtime_ns, state in db.execute(
                "SELECT id, size, mtime_ns, state FROM segments WHERE path = ?", (segment.path,)
            ).fetchall():
                if State(state) in DONE:
                    continue  # a new file at a registered file's path: a new segment, or the same again
                if old_id in skip:
                    return None
                db.execute("DELETE FROM segments WHERE id = ?", (old_id,))
                self._index_drop(segment.path, size, mtime_ns)
            cursor = db.execute(
                "INSERT INTO segments (path, camera, start_utc, end_utc, container, codec, size, mtime_ns, "
                "state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'discovered', ?, ?)",
                (
                    segment.path,
                    segment.camera,
                    segment.start_utc,
                    segment.end_utc,
                    segment.container,
                    segment.codec,
                    segment.size,
                    segment.mtime_ns,
                    now,
                    now,
                ),
            )
            self._index_add(segment.path, segment.size, segment.mtime_ns)
            return cursor.lastrowid

    def add_rejected(
        self, path: str, camera: str, size: int, mtime_ns: int, code: str, message: str, now: float
    ) -> int | None:
        """Record a complete file that cannot be queued (a broken sidecar) as rejected."""
        with self._write() as db:
            if self.is_known(path, size, mtime_ns):
                return None
            for old_id, old_size, old_mtime, state in db.execute(
                "SELECT id, size, mtime_ns, state FROM segments WHERE path = ?", (path,)
            ).fetchall():
                if State(state) not in DONE:
                    db.execute("DELETE FROM segments WHERE id = ?", (old_id,))
                    self._index_drop(path, old_size, old_mtime)
            cursor = db.execute(
                "INSERT INTO segments (path, camera, size, mtime_ns, state, last_error_code, last_error, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 'rejected', ?, ?, ?, ?)",
                (path, camera, size, mtime_ns, code, message, now, now),
            )
            self._index_add(path, size, mtime_ns)
            return cursor.lastrowid

    # -- transitions -------------------------------------------------------------------------------------

    def _move(self, row_id: int, to: State, now: float, **changes: object) -> Row:
        with self._write() as db:
            found = db.execute("SELECT state FROM segments WHERE id = ?", (row_id,)).fetchone()
            if found is None:
                raise SpoolError(f"no spool row {row_id}")
            current = State(found[0])
            if to not in TRANSITIONS[current]:
                raise SpoolError(f"spool row {row_id}: {current} cannot become {to}")
            changes = {"state": to.value, "updated_at": now, **changes}
            assignments = ", ".join(f"{name} = ?" for name in changes)
            db.execute(
                f"UPDATE segments SET {assignments} WHERE id = ?",  # noqa: S608 -- column names are ours
                (*changes.values(), row_id),
            )
        return self.get(row_id)

    def mark_hashed(self, row_id: int, sha256: str, now: float) -> Row:
        return self._move(row_id, State.HASHED, now, sha256=sha256, next_attempt_at=0)

    def mark_prepared(
        self,
        row_id: int,
        *,
        upload_id: str,
        segment_id: str,
        chunk_size: int,
        ciphertext_size: int,
        now: float,
    ) -> Row:
        """The service reserved the upload. A different upload id than before (the old one expired)
        forgets the MD5 computed for the old one."""
        current = self.get(row_id)
        changes: dict[str, object] = {
            "upload_id": upload_id,
            "segment_id": segment_id,
            "chunk_size": chunk_size,
            "ciphertext_size": ciphertext_size,
        }
        if current.upload_id != upload_id or current.chunk_size != chunk_size:
            changes["content_md5"] = None
        return self._move(row_id, State.PREPARED, now, **changes)

    def set_content_md5(self, row_id: int, content_md5: str, now: float) -> Row:
        with self._write() as db:
            db.execute(
                "UPDATE segments SET content_md5 = ?, updated_at = ? WHERE id = ? AND state = 'prepared'",
                (content_md5, now, row_id),
            )
        return self.get(row_id)

    def mark_uploaded(self, row_id: int, now: float) -> Row:
        return self._move(row_id, State.UPLOADED, now, digest_failures=0)

    def mark_registered(self, row_id: int, segment_id: str | None, now: float) -> Row:
        changes: dict[str, object] = {
            "registered_at": now,
            "attempts": 0,
            "digest_failures": 0,
            "next_attempt_at": 0,
            "last_error_code": None,
            "last_error": None,
        }
        if segment_id is not None:
            changes["segment_id"] = segment_id
        return self._move(row_id, State.REGISTERED, now, **changes)

    def mark_deleted(self, row_id: int, now: float) -> Row:
        return self._move(row_id, State.DELETED, now, last_error_code=None, last_error=None)

    def back_to_hashed(self, row_id: int, now: float) -> Row:
        """Prepare again from scratch (the upload expired or was quarantined)."""
        return self._move(
            row_id,
            State.HASHED,
            now,
            upload_id=None,
            content_md5=None,
            digest_failures=0,
            ciphertext_size=None,
        )

    def back_to_prepared(self, row_id: int, now: float) -> Row:
        """PUT again (complete found no object)."""
        return self._move(row_id, State.PREPARED, now)

    def back_to_discovered(self, row_id: int, now: float) -> Row:
        """Hash again (the store kept refusing the body's digest)."""
        return self._move(
            row_id,
            State.DISCOVERED,
            now,
            sha256=None,
            upload_id=None,
            segment_id=None,
            content_md5=None,
            ciphertext_size=None,
            chunk_size=None,
            digest_failures=0,
        )

    def reject(self, row_id: int, code: str, message: str, now: float) -> Row:
        return self._move(
            row_id, State.REJECTED, now, last_error_code=code, last_error=message, next_attempt_at=0
        )

    def defer(
        self,
        row_id: int,
        code: str,
        message: str,
        next_attempt_at: float,
        now: float,
        *,
        digest: bool = False,
    ) -> Row:
        """Record a failed attempt; the row keeps its state and is tried again at ``next_attempt_at``."""
        with self._write() as db:
            db.execute(
                "UPDATE segments SET attempts = attempts + 1, digest_failures = digest_failures + ?, "
                "next_attempt_at = ?, last_error_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (1 if digest else 0, next_attempt_at, code, message, now, row_id),
            )
        return self.get(row_id)

    def note(self, row_id: int, code: str, message: str, now: float) -> None:
        """Record a problem that does not change the row's state (a file that could not be deleted)."""
        with self._write() as db:
            db.execute(
                "UPDATE segments SET last_error_code = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (code, message, now, row_id),
            )

    def forget(self, row_id: int) -> None:
        """Drop a row that is not registered (its file changed); the scanner queues the file afresh."""
        with self._write() as db:
            found = db.execute(
                "SELECT path, size, mtime_ns, state FROM segments WHERE id = ?", (row_id,)
            ).fetchone()
            if found is None:
                return
            path, size, mtime_ns, state = found
            if State(state) in DONE:
                raise SpoolError(f"spool row {row_id} is {state}; a registered segment is never forgotten")
            db.execute("DELETE FROM segments WHERE id = ?", (row_id,))
            self._index_drop(path, size, mtime_ns)

    def registered_twin(self, row: Row) -> Row | None:
        """A registered row for the same content: same camera, start and SHA-256."""
        if row.sha256 is None:
            return None
        twins = self.rows(
            "camera = ? AND start_utc = ? AND sha256 = ? AND state IN ('registered', 'deleted') AND id != ?",
            (row.camera, row.start_utc, row.sha256, row.id),
        )
        return twins[0] if twins else None

    def rejected_rows(self) -> list[Row]:
        return self.rows("state = 'rejected'")
