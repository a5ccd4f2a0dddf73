"""Audit log benchmark: append throughput through the service layer, against plain inserts measured in the same
run, and the time `cctv-gov audit verify` takes on a 1,000,000-event log.

    .venv/bin/python bench/audit.py [--events N] [--writers 8] [--verify-events 1000000] [--quick]

It finds a PostgreSQL server the way the tests do (``CCTV_GOV_TEST_POSTGRES_URL``, else ``postgres`` on
127.0.0.1:5432, else the ``pgserver`` wheel), creates its own database ``cctv_gov_bench_<random>``, migrates
it with Alembic and drops it at the end, also on error. The last line of output is one JSON object holding
every figure and its target.

Phases:
1. service: `writers` threads, each looping over one ``Database.transaction()`` with one ``AuditLog.record``
   (one audited action per request), while the job runner runs the sequencer as in production. The figure is
   events / (time until every event is sequenced and covered by a signed checkpoint).
2. baseline: the same rows (entry bytes and leaf hash precomputed) inserted with SQLAlchemy Core, one row per
   transaction, same number of threads; no service layer, no canonical JSON, no sequencing.
3. verify: a log of `verify_events` events built in bulk: entries made by ``cctv_gov.audit.entry`` in worker
   processes and loaded with COPY; the first nine tenths get their leaf index, the nodes
   ``merkle.CompactRange`` reports and a checkpoint signed every sequencer batch, as the sequencer would write
   them; the last tenth (at most 100,000) is integrated by the real sequencer job, which first checks that
   the stored tree matches the latest checkpoint. Then ``verify_log`` (what ``cctv-gov audit verify`` runs)
   is timed, and after one byte of one entry is flipped it must report a problem.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from cctv_gov.audit.actions import AuditAction, Outcome
from cctv_gov.audit.entry import canonical, entry_fields
from cctv_gov.audit.tasks import SEQUENCER_JOB
from cctv_gov.audit.verifier import verify_log
from cctv_gov.authz import Actor, Grant, Role
from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.kit import merkle
from cctv_gov.kit.context import request_id_var
from cctv_gov.kit.ids import new_request_id
from cctv_gov.kit.signed_note import Checkpoint
from cctv_gov.migrate import upgrade
from cctv_gov.models import AuditCheckpoint, AuditEvent

TARGET_EVENTS_PER_S = 2000
TARGET_RATIO = 0.25
TARGET_VERIFY_SECONDS = 15.0  # for 1,000,000 events
ONE_MILLION = 1_000_000

LOCAL_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "cctv_gov_bench"
AUDIT_TABLES = "audit_events, audit_tree_nodes, audit_checkpoints"


# PostgreSQL: the same three tiers as tests/fixtures/postgres.py (reproduced so the bench needs no pytest) ----


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(_libpq(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """(admin URL in SQLAlchemy form, which tier) of a server this run may create a database on."""
    configured = os.environ.get("CCTV_GOV_TEST_POSTGRES_URL")
    if configured:
        yield configured, "configured"
        return
    if _reachable(LOCAL_URL):
        yield LOCAL_URL, "local"
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="cctv-gov-bench-pg-") as tmp:
        server = pgserver.get_server(Path(tmp) / "pgdata", cleanup_mode="stop")  # type: ignore[attr-defined]
        try:
            url = make_url(server.get_uri()).set(drivername="postgresql+psycopg")
            yield url.render_as_string(hide_password=False), "pgserver"
        finally:
            server.cleanup()


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A fresh database named by this run; dropped on the way out whatever happened (it is never reused)."""
    name = f"{DB_PREFIX}_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Realistic events ----------------------------------------------------------------------------------------------

# (action, target type, weight): mostly reads, some administration and refused accesses.
ACTIONS: tuple[tuple[AuditAction, str, int], ...] = (
    (AuditAction.AUDIT_READ, "audit_events", 5),
    (AuditAction.PRINCIPAL_READ, "principal", 3),
    (AuditAction.GRANT_CREATE, "role_grant", 1),
    (AuditAction.TOKEN_ISSUE, "api_token", 1),
    (AuditAction.ACCESS_DENY, "route", 1),
)
PURPOSES = (
    "Incident IR-2026-1142: theft reported at the loading bay, review of cameras 3 and 7 from 14:00 to 15:30",
    "Subject access request SAR-0193: locate footage of the requester in the main entrance on 12 November",
    "Police request ref. 44/2026/118 under Schedule 2: vehicle collision in car park B, 08:10-08:40",
    "Quarterly compliance review of retention settings and access grants for this site",
    "Insurance claim CLM-77120: slip reported near the escalators, review before the 31-day purge",
)
T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass(frozen=True)
class World:
    """Sites, staff with one role at one site each, and NVR agents: whom the events are about."""

    sites: tuple[uuid.UUID, ...]
    actors: tuple[Actor, ...]

    @classmethod
    def make(cls, seed: int = 7) -> World:
        rng = random.Random(seed)
        sites = tuple(_uuid(rng) for _ in range(24))
        roles = (Role.OPERATOR, Role.AUDITOR, Role.GENERAL_MANAGER, Role.REQUESTER)
        actors = [
            Actor(
                principal_id=_uuid(rng),
                kind="person",
                name=f"staff-{i:03d}",
                grants=(Grant(_uuid(rng), roles[i % len(roles)], sites[i % len(sites)]),),
                acting_role=roles[i % len(roles)],
            )
            for i in range(96)
        ]
        actors += [
            Actor(
                principal_id=_uuid(rng),
                kind="agent",
                name=f"nvr-{i:02d}",
                grants=(Grant(_uuid(rng), Role.AGENT, site),),
                acting_role=Role.AGENT,
            )
            for i, site in enumerate(sites)
        ]
        return cls(sites, tuple(actors))

    def request(self, rng: random.Random) -> tuple[Actor, dict[str, Any]]:
        """One audited action: the actor and the keyword arguments of ``AuditLog.record``."""
        actor = rng.choice(self.actors)
        action, target_type, _ = rng.choices(ACTIONS, weights=[w for _, _, w in ACTIONS])[0]
        denied = action is AuditAction.ACCESS_DENY
        camera = rng.randrange(1, 33)
        return actor, {
            "action": action,
            "target_type": target_type,
            "target_id": f"GET /v1/sites/{{site_id}}/cameras/{camera}" if denied else _uuid(rng),
            "site_id": actor.grants[0].site_id,
            "purpose": rng.choice(PURPOSES),
            "outcome": Outcome.DENIED if denied else Outcome.OK,
            "details": {
                "camera": f"cam-{camera:02d}",
                "returned": rng.randrange(0, 200),
                "window_minutes": rng.choice((15, 30, 90, 240)),
                "ticket": f"IR-2026-{rng.randrange(1000, 9999)}",
            },
        }

    def row(self, rng: random.Random, occurred_at: datetime) -> dict[str, Any]:
        """The audit_events row ``AuditLog.record`` would write for a request, entry and leaf hash included."""
        actor, kw = self.request(rng)
        assert actor.acting_role is not None
        fields: dict[str, Any] = {
            "event_id": _uuid(rng),
            "occurred_at": occurred_at,
            "actor_id": actor.principal_id,
            "actor_kind": actor.kind,
            "actor_role": actor.acting_role.value,
            "action": kw["action"].value,
            "target_type": kw["target_type"],
            "target_id": str(kw["target_id"]),
            "site_id": kw["site_id"],
            "purpose": kw["purpose"],
            "request_id": rng.randbytes(16).hex(),
            "outcome": kw["outcome"].value,
            "details": kw["details"],
        }
        entry = canonical(entry_fields(SimpleNamespace(**fields)))  # the row, as `record` reads it
        return {**fields, "leaf_index": None, "entry": entry, "leaf_hash": merkle.leaf_hash(entry)}


# Measuring ------------------------------------------------------------------------------------------------------


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


@dataclass
class Run:
    started: float  # perf_counter when the threads were released
    seconds: float  # until the last thread finished
    latencies: list[float]


def run_threads(
    count: int,
    work: Callable[[int, threading.Barrier], list[float]],
    release: Callable[[], object] | None = None,
) -> Run:
    """Start `count` threads that prepare their work and wait on a barrier; time them from its release to the
    last one's end. An exception in any thread is raised here."""
    barrier = threading.Barrier(count + 1)
    latencies: list[list[float]] = [[] for _ in range(count)]
    errors: list[BaseException] = []

    def target(k: int) -> None:
        try:
            latencies[k] = work(k, barrier)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which raises it
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(k,), name=f"bench-writer-{k}") for k in range(count)]
    for thread in threads:
        thread.start()
    if release is not None:
        release()  # in a writer process: wait until every process is ready, so all start together
    with suppress(threading.BrokenBarrierError):  # a thread failed before starting: raised below
        barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Run(started, elapsed, [x for per_thread in latencies for x in per_thread])


def wipe_audit(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {AUDIT_TABLES} RESTART IDENTITY"))


def tree_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.coalesce(func.max(AuditCheckpoint.tree_size), 0))) or 0)


def unsequenced(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).where(AuditEvent.leaf_index.is_(None))) or 0)


def service_writes(
    services: Services, world: World, counts: list[int], release: Callable[[], object] | None = None
) -> Run:
    """Each thread: one request = one transaction = one ``AuditLog.record``."""

    def work(k: int, barrier: threading.Barrier) -> list[float]:
        rng = random.Random(1000 + k)
        requests = [world.request(rng) for _ in range(counts[k])]
        latencies: list[float] = []
        barrier.wait()
        for actor, kw in requests:
            token = request_id_var.set(new_request_id())  # as the request middleware does
            started = time.perf_counter()
            try:
                with services.db.transaction() as session:
                    services.audit.record(session, actor, **kw)
            finally:
                request_id_var.reset(token)
            latencies.append(time.perf_counter() - started)
        return latencies

    return run_threads(len(counts), work, release)


def baseline_writes(
    engine: Engine, rows: list[list[dict[str, Any]]], release: Callable[[], object] | None = None
) -> Run:
    """Each thread: one row per transaction with SQLAlchemy Core, values computed beforehand."""
    stmt = insert(AuditEvent.__table__)  # type: ignore[arg-type]  # a Table; typed as FromClause

    def work(k: int, barrier: threading.Barrier) -> list[float]:
        latencies: list[float] = []
        barrier.wait()
        for row in rows[k]:
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(stmt, row)
            latencies.append(time.perf_counter() - started)
        return latencies

    return run_threads(len(rows), work, release)


WARM_PER_THREAD = 50


def _writer_process(
    kind: str, url: str, settings: Settings, counts: list[int], start: Any, results: Any
) -> None:
    """One writer process, as one service replica: its own engine and services, its share of the threads.
    Prepares and warms up, waits for every process at ``start``, then writes and reports its latencies."""
    world = World.make()
    rng = random.Random(os.getpid())
    if kind == "service":
        services = build_services(settings)
        service_writes(services, world, [WARM_PER_THREAD] * len(counts))  # warm up
        run = service_writes(services, world, counts, release=start.wait)
        services.db.dispose()
    else:
        plain = create_engine(url, pool_size=len(counts), max_overflow=0)
        baseline_writes(
            plain, [[world.row(rng, datetime.now(UTC)) for _ in range(WARM_PER_THREAD)] for _ in counts]
        )
        rows = [[world.row(rng, datetime.now(UTC)) for _ in range(c)] for c in counts]
        run = baseline_writes(plain, rows, release=start.wait)
        plain.dispose()
    results.put(run.latencies)


def run_writer_processes(kind: str, url: str, settings: Settings, counts: list[int], processes: int) -> Run:
    """The writers spread over ``processes`` processes (threads split evenly), timed from the common start to
    the last process's report. Several service processes is how the service runs in production."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    shares = [counts[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(target=_writer_process, args=(kind, url, settings, share, start, results))
        for share in shares
    ]
    for proc in procs:
        proc.start()
    start.wait(timeout=300)
    started = time.perf_counter()
    latencies = [x for _ in procs for x in results.get(timeout=900)]
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join(60)
        if proc.exitcode != 0:
            raise RuntimeError(f"a {kind} writer process exited with {proc.exitcode}")
    return Run(started, elapsed, latencies)


@dataclass
class AppendResult:
    events: int
    append_seconds: float
    sequenced_seconds: float
    service_latencies: list[float]
    baseline_seconds: float
    baseline_latencies: list[float]
    checkpoints: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.sequenced_seconds

    @property
    def append_events_per_s(self) -> float:
        return self.events / self.append_seconds

    @property
    def baseline_per_s(self) -> float:
        return self.events / self.baseline_seconds


def bench_append(services: Services, url: str, events: int, writers: int, processes: int = 1) -> AppendResult:
    world = World.make()
    counts = _split(events, writers)
    engine = services.db.engine
    # A plain engine for the baseline: no pre-ping, no session, nothing of the service's wiring.
    plain = create_engine(url, pool_size=writers, max_overflow=0)
    try:
        rng = random.Random(99)
        rows = [[world.row(rng, datetime.now(UTC)) for _ in range(c)] for c in counts]
        warm = [[world.row(rng, datetime.now(UTC)) for _ in range(c)] for c in _split(400, writers)]

        # Warm both paths (connections, plans, caches), then start from an empty log.
        baseline_writes(plain, warm)
        service_writes(services, world, _split(400, writers))
        wipe_audit(engine)

        print(
            f"baseline: {events} rows, {writers} threads in {processes} process(es), one row per transaction ...",
            flush=True,
        )
        if processes > 1:
            baseline = run_writer_processes("baseline", url, services.settings, counts, processes)
        else:
            baseline = baseline_writes(plain, rows)
        wipe_audit(engine)

        print(f"service: {events} events, {writers} writers + the sequencer job ...", flush=True)
        runner = services.job_runner()
        runner.start()
        try:
            if processes > 1:
                service = run_writer_processes("service", url, services.settings, counts, processes)
                expected = events + WARM_PER_THREAD * writers  # each process warms up after the wipe
            else:
                service = service_writes(services, world, counts)
                expected = events
            deadline = time.perf_counter() + 300
            while tree_size(engine) < expected:
                if time.perf_counter() > deadline:
                    raise RuntimeError("the sequencer did not catch up within 300 s")
                time.sleep(0.005)
            sequenced_seconds = time.perf_counter() - service.started
        finally:
            runner.stop()
        if (left := unsequenced(engine)) or tree_size(engine) != expected:
            raise RuntimeError(f"after the run {left} events are unsequenced, tree size {tree_size(engine)}")
        with engine.connect() as conn:
            checkpoints = int(conn.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0)
        wipe_audit(engine)
    finally:
        plain.dispose()
    return AppendResult(
        events,
        service.seconds,
        sequenced_seconds,
        service.latencies,
        baseline.seconds,
        baseline.latencies,
        checkpoints,
    )


# Verification ---------------------------------------------------------------------------------------------------

COPY_COLUMNS = (
    "event_id",
    "leaf_index",
    "occurred_at",
    "actor_id",
    "actor_kind",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "site_id",
    "purpose",
    "request_id",
    "outcome",
    "details",
    "entry",
    "leaf_hash",
)
CHUNK = 10_000
# The last tenth of the verify log, at most this many events, goes through the sequencer job.
SEQUENCED_BY_JOB = 100_000


def _text(value: Any) -> str:
    """A field in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    s = str(value)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()


def build_chunk(job: tuple[int, int, int]) -> tuple[bytes, list[bytes]]:
    """COPY text and leaf hashes of events [start, start + count), entries made by the real entry code.

    Events below `direct` get their leaf index here (the caller writes their nodes and checkpoints); the rest
    are left for the sequencer. Runs in a worker process."""
    start, count, direct = job
    world = World.make()
    rng = random.Random(start)
    lines = []
    leaves = []
    for i in range(start, start + count):
        r = world.row(rng, T0 + timedelta(milliseconds=2500 * i))
        fields = (
            str(r["event_id"]),
            str(i) if i < direct else "\\N",
            r["occurred_at"].isoformat(),
            _text(r["actor_id"]),
            _text(r["actor_kind"]),
            _text(r["actor_role"]),
            _text(r["action"]),
            _text(r["target_type"]),
            _text(r["target_id"]),
            _text(r["site_id"]),
            _text(r["purpose"]),
            _text(r["request_id"]),
            _text(r["outcome"]),
            _text(json.dumps(r["details"])),
            _bytea(r["entry"]),
            _bytea(r["leaf_hash"]),
        )
        lines.append("\t".join(fields))
        leaves.append(r["leaf_hash"])
    lines.append("")
    return "\n".join(lines).encode(), leaves


@dataclass
class VerifyResult:
    events: int
    direct: int
    build_seconds: float
    sequence_seconds: float
    checkpoints: int
    vacuum_seconds: float
    verify_seconds: float
    ok: bool
    problems: list[str]
    tamper_detected: bool
    tamper_problems: list[str]

    @property
    def sequenced(self) -> int:
        return self.events - self.direct

    @property
    def verify_seconds_1m(self) -> float:
        return self.verify_seconds * ONE_MILLION / self.events


def build_log(services: Services, url: str, events: int, direct: int) -> None:
    """Events [0, direct) sequenced as the sequencer would (leaf index, the nodes `CompactRange` reports, a
    signed checkpoint every batch), written with COPY; events [direct, events) queued for the sequencer."""
    signer = services.keys.signer
    batch = services.sequencer.batch_size
    compact = merkle.CompactRange()
    checkpoints: list[AuditCheckpoint] = []
    jobs = [(s, min(CHUNK, events - s), direct) for s in range(0, events, CHUNK)]
    columns = ", ".join(COPY_COLUMNS)
    with (
        multiprocessing.get_context("spawn").Pool(os.cpu_count() or 2) as pool,
        psycopg.connect(_libpq(url)) as conn,
    ):
        with conn.cursor() as cur, cur.copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
            nodes: list[str] = []
            for data, leaves in pool.imap(build_chunk, jobs):
                copy.write(data)
                for leaf in leaves:
                    if compact.size == direct:
                        break
                    for level, idx, node in compact.append(leaf):
                        nodes.append(f"{level}\t{idx}\t{_bytea(node)}\n")
                    if compact.size % batch == 0 or compact.size == direct:
                        root = compact.root()
                        note = signer.sign(Checkpoint(signer.name, compact.size, root).to_text())
                        when = T0 + timedelta(milliseconds=2500 * compact.size)
                        checkpoints.append(
                            AuditCheckpoint(
                                tree_size=compact.size, root_hash=root, note=note, created_at=when
                            )
                        )
        with conn.cursor() as cur, cur.copy("COPY audit_tree_nodes (level, idx, hash) FROM STDIN") as copy:
            copy.write("".join(nodes).encode())
        conn.commit()
    with services.db.transaction() as session:
        session.add_all(checkpoints)


def bench_verify(services: Services, url: str, events: int) -> VerifyResult:
    engine = services.db.engine
    wipe_audit(engine)
    direct = events - min(SEQUENCED_BY_JOB, events // 10)

    print(f"verify: building a log of {events} events ...", flush=True)
    started = time.perf_counter()
    build_log(services, url, events, direct)
    build_seconds = time.perf_counter() - started

    print(f"verify: the sequencer job integrates the last {events - direct} ...", flush=True)
    runner = services.job_runner()
    started = time.perf_counter()
    while True:
        counts = runner.run_once(SEQUENCER_JOB)
        if counts is None:
            raise RuntimeError("the sequencer lock is held elsewhere")
        if not counts["integrated"]:
            break
    sequence_seconds = time.perf_counter() - started
    if (left := unsequenced(engine)) or tree_size(engine) != events:
        raise RuntimeError(f"{left} events left unsequenced")
    with engine.connect() as c:
        checkpoints = int(c.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0)

    # What autovacuum does after a bulk load and the sequencer's updates, long before a real log is this big.
    started = time.perf_counter()
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) audit_events")
    vacuum_seconds = time.perf_counter() - started

    def verify() -> tuple[float, bool, list[str]]:
        began = time.perf_counter()
        with services.db.transaction() as session:
            report = verify_log(session, origin=services.keys.signer.name, verifiers=services.keys.verifiers)
        if report.events != events:
            raise RuntimeError(f"verify_log saw {report.events} events, expected {events}")
        return time.perf_counter() - began, report.ok, report.problems

    print(f"verify: verify_log on {events} events ...", flush=True)
    verify_seconds, ok, problems = verify()

    # Sanity check (not timed): one flipped byte in one entry in the middle must be reported.
    middle = events // 2
    with engine.begin() as tx:
        tx.execute(
            text(
                "UPDATE audit_events SET entry = set_byte(entry, length(entry) / 2,"
                " get_byte(entry, length(entry) / 2) # 1) WHERE leaf_index = :i"
            ),
            {"i": middle},
        )
    print(f"verify: flipped one byte of leaf {middle}; verify_log again (not timed) ...", flush=True)
    _, tampered_ok, tamper_problems = verify()
    detected = not tampered_ok and any(p.startswith(f"leaf {middle}:") for p in tamper_problems)
    return VerifyResult(
        events,
        direct,
        build_seconds,
        sequence_seconds,
        checkpoints,
        vacuum_seconds,
        verify_seconds,
        ok,
        problems,
        detected,
        tamper_problems,
    )


# Main -----------------------------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: the throwaway database is dropped


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=None, help="events to append (default 16000)")
    parser.add_argument("--writers", type=int, default=8, help="concurrent writer threads (default 8)")
    parser.add_argument("--verify-events", type=int, default=None, help="log size to verify (default 1e6)")
    parser.add_argument(
        "--processes", type=int, default=1, help="spread the writers over this many processes (default 1)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 4000 events, 100,000 to verify")
    args = parser.parse_args()
    events = args.events or (4000 if args.quick else 16_000)
    verify_events = args.verify_events or (100_000 if args.quick else ONE_MILLION)
    writers = args.writers
    signal.signal(signal.SIGTERM, _terminate)

    load_before = os.getloadavg()[0]  # other work on the same cores skews every figure: say so
    wall = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="cctv-gov-bench-") as tmp,
        postgres_server() as (server_url, tier),
        throwaway_database(server_url) as url,
    ):
        upgrade(url)
        settings = Settings(
            data_dir=Path(tmp) / "data",  # the signing key is generated here (embedded mode)
            database_url=url,
            audit_origin="bench.cctv-gov/audit",
            jobs_enabled=True,
        )
        services = build_services(settings)
        try:
            with services.db.engine.connect() as conn:
                server_version = str(conn.scalar(text("SHOW server_version")))
                sync = str(conn.scalar(text("SHOW synchronous_commit")))
            append = bench_append(services, url, events, writers, args.processes)
            verified = bench_verify(services, url, verify_events)
        finally:
            services.db.dispose()
    wall_seconds = time.perf_counter() - wall

    ratio = append.events_per_s / append.baseline_per_s
    checks = {
        "events_per_s": append.events_per_s >= TARGET_EVENTS_PER_S,
        "ratio": ratio >= TARGET_RATIO,
        "verify_seconds_1m": verified.verify_seconds_1m <= TARGET_VERIFY_SECONDS,
        "verify_ok": verified.ok,
        "tamper_detected": verified.tamper_detected,
    }
    passed = all(checks.values())
    lag = append.sequenced_seconds - append.append_seconds
    sequencer_rate = verified.sequenced / verified.sequence_seconds if verified.sequenced else 0.0

    def mark(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    print()
    print(
        f"PostgreSQL {server_version} ({tier} tier), synchronous_commit={sync}; {os.cpu_count()} CPUs,"
        f" load average {load_before:.2f} before the run"
    )
    print(
        f"Append, {writers} writers in {args.processes} process(es), {events} events, one event per transaction:"
    )
    print(
        f"  service, until sequenced+signed {append.events_per_s:9.0f} events/s"
        f"   target >= {TARGET_EVENTS_PER_S}   {mark(checks['events_per_s'])}"
    )
    print(f"  service, append only            {append.append_events_per_s:9.0f} events/s")
    print(
        f"  sequencing lag after last write {lag:9.2f} s   ({append.checkpoints} checkpoints signed,"
        f" one per {append.events / max(1, append.checkpoints):.0f} events)"
    )
    print(f"  baseline Core inserts           {append.baseline_per_s:9.0f} rows/s")
    print(
        f"  ratio service/baseline          {ratio:9.2f}"
        f"            target >= {TARGET_RATIO}   {mark(checks['ratio'])}"
    )
    print(
        f"  latency per transaction p50/p99 service {_ms(append.service_latencies, 0.5)}"
        f"/{_ms(append.service_latencies, 0.99)} ms,"
        f" baseline {_ms(append.baseline_latencies, 0.5)}/{_ms(append.baseline_latencies, 0.99)} ms"
    )
    print(f"Verification of {verified.events} events ({verified.checkpoints} checkpoints):")
    print(
        f"  built by: entry code in {os.cpu_count()} processes + COPY, leaf indexes, nodes and a signed"
        f" checkpoint per {services.sequencer.batch_size} written for the first {verified.direct}"
        f" ({verified.build_seconds:.1f} s); the sequencer job integrated the last {verified.sequenced}"
        f" ({verified.sequence_seconds:.1f} s, {sequencer_rate:.0f} events/s); VACUUM {verified.vacuum_seconds:.1f} s"
    )
    print(
        f"  verify_log                      {verified.verify_seconds:9.2f} s"
        f"   ({verified.verify_seconds_1m:.2f} s per 1M; target <= {TARGET_VERIFY_SECONDS:g})"
        f"   {mark(checks['verify_seconds_1m'])}"
    )
    print(f"  report ok                       {verified.ok!s:>9}   {'; '.join(verified.problems[:3])}")
    print(
        f"  one flipped byte detected       {verified.tamper_detected!s:>9}"
        f"   ({len(verified.tamper_problems)} problems, first: {verified.tamper_problems[:1]})"
    )
    print(f"Wall time {wall_seconds:.0f} s. Overall: {mark(passed)}")

    summary = {
        "bench": "audit",
        "quick": bool(args.quick),
        "events": events,
        "writers": writers,
        "processes": args.processes,
        "events_per_s": round(append.events_per_s, 1),
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "append_events_per_s": round(append.append_events_per_s, 1),
        "sequencing_lag_seconds": round(lag, 3),
        "append_checkpoints": append.checkpoints,
        "baseline_inserts_per_s": round(append.baseline_per_s, 1),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "append_ratio": round(append.append_events_per_s / append.baseline_per_s, 3),
        "service_p50_ms": _ms(append.service_latencies, 0.5),
        "service_p99_ms": _ms(append.service_latencies, 0.99),
        "baseline_p50_ms": _ms(append.baseline_latencies, 0.5),
        "baseline_p99_ms": _ms(append.baseline_latencies, 0.99),
        "verify_events": verified.events,
        "verify_seconds": round(verified.verify_seconds, 2),
        "verify_seconds_1m": round(verified.verify_seconds_1m, 2),
        "target_verify_seconds": TARGET_VERIFY_SECONDS,
        "verify_ok": verified.ok,
        "tamper_detected": verified.tamper_detected,
        "verify_log_built_by": f"direct writes for {verified.direct}, sequencer job for {verified.sequenced}",
        "checkpoints": verified.checkpoints,
        "sequencer_events_per_s": round(sequencer_rate, 1),
        "cpus": os.cpu_count(),
        "postgres_tier": tier,
        "load_average_before": round(load_before, 2),
        "wall_seconds": round(wall_seconds, 1),
        "pass": passed,
    }
    print(json.dumps(summary))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
