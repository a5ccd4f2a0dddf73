"""Periodic jobs that scale out: every service process runs the same schedule, and a lock makes sure only one
of them runs a given job at a time.

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on its own connection for the run.
  If the worker dies, PostgreSQL drops the connection and the lock with it, and the next tick of any other
  worker runs the job again: nothing to clean up, no lease to expire.
* SQLite (embedded, one process): an in-process lock per job.

A job is a function ``(Session) -> dict[str, int]`` of counts; it runs inside ``Database.transaction()``, the
one place that commits. Jobs must be idempotent: a run cut off by a crash is simply run again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from cctv_gov.db import Database

log = logging.getLogger("cctv_gov.jobs")

JobFn = Callable[[Session], dict[str, int]]


@dataclass(frozen=True)
class Job:
    name: str
    interval_seconds: float
    fn: JobFn


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key per job name (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(f"cctv-gov:job:{name}".encode()).digest()[:8], "big", signed=True)


class JobLocks:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._local: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def try_hold(self, name: str) -> Iterator[bool]:
        """Yields True while this process holds the job's lock, False if another worker has it."""
        if self.db.is_postgres:
            with self.db.engine.connect() as conn:
                key = advisory_key(name)
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
                conn.commit()
                try:
                    yield got
                finally:
                    if got:
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.commit()
            return
        with self._guard:
            lock = self._local.setdefault(name, threading.Lock())
        got = lock.acquire(blocking=False)
        try:
            yield got
        finally:
            if got:
                lock.release()


class JobRunner:
    def __init__(self, db: Database, jobs: list[Job], *, worker_id: str) -> None:
        self.db = db
        self.jobs = {job.name: job for job in jobs}
        self.locks = JobLocks(db)
        self.worker_id = worker_id
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run_once(self, name: str) -> dict[str, int] | None:
        """Run one job now if no other worker is running it; None when it was busy elsewhere."""
        job = self.jobs[name]
        with self.locks.try_hold(name) as held:
            if not held:
                return None
            with self.db.transaction() as session:
                counts = job.fn(session)
        if any(counts.values()):
            log.info("job %s on %s: %s", name, self.worker_id, counts)
        return counts

    def start(self) -> None:
        for job in self.jobs.values():
            thread = threading.Thread(target=self._loop, args=(job,), name=f"job-{job.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self, job: Job) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            counts: dict[str, int] | None = None
            try:
                counts = self.run_once(job.name)
            except Exception as exc:  # noqa: BLE001 - a failed run is logged and retried at the next tick
                log.warning("job %s failed on %s: %s", job.name, self.worker_id, type(exc).__name__)
            if counts and counts.get("more"):
                continue  # a backlog: keep going without waiting for the next tick
            elapsed = time.monotonic() - started
            self._stop.wait(max(0.0, job.interval_seconds - elapsed))
