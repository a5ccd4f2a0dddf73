"""Purge benchmark: erasures per second of the retention purge on PostgreSQL and a real S3 server, against a plain
batch delete of the same kind of objects and rows measured in the same run.

    .venv/bin/python bench/purge.py [--segments 100000] [--quick] [--plain-bucket]

It starts a throwaway Ceph radosgw (as the tests do; the Debian packages must be installed), finds a PostgreSQL
server the way the tests do and creates its own database (dropped at the end, also on error), migrates it, and
builds the services in this process on PostgreSQL + the S3 store with a fixed clock. Progress and a summary go
to stderr; the last line of stdout is one JSON object holding every figure and its target.

Setup (not timed): one site (retention 31 days, UTC) with 32 cameras; a *set* is `segments` registered
1-minute segments spread over the cameras (about 2.2 days for 100,000), their rows loaded with bulk Core
inserts (5,000 per statement) and their objects (64 bytes each: the purge's cost is per object, not per byte)
PUT by 16 threads on keep-alive connections. The bucket has Object Lock and so versioning, as `cctv-gov storage
setup` creates it (without its lifecycle rules: the test radosgw runs lifecycle every 10 s). Each day's key is
created in the service's key store and every row holds a data key wrapped by it. A second site holds the
baseline sets: the same shape, but recent footage, so the purge neither erases it nor destroys its day keys.
After each load, VACUUM ANALYZE (what autovacuum does after a bulk load).

Phases, each set loaded just before it is used, so each timed step sees one set in the table and the bucket:
1. baseline: a plain batch delete of a baseline set: per 1,000 segments, one S3 multi-object DELETE request
   (the SDK's ``remove_objects``, each object by the version id its PUT returned, nothing listed first) and one
   ``DELETE FROM segments WHERE id IN (...)`` transaction; no claim, no tombstones, no audit events, no key
   destruction.
2. purge: the clock is set 31 days past the purge set's footage, then ``services.purge.run(db, force=True)``
   end to end (forced: the whole site expiring at once trips the safety threshold). Figure: segments erased
   per second; ratio = that rate / the baseline's rate. Checked: every segment erased and tombstoned, one
   audit event each, its day keys destroyed, no delete failure, nothing of the set left in the bucket.
3. baseline again on a fresh baseline set (machines are noisy); the mean of the two is the baseline.

During the purge the bench times the purge's steps (claim, S3 deletes, tombstones, audit events, commits, day
keys) by wrapping them, every SQL statement through SQLAlchemy's cursor events, and the store's S3 listing and
multi-object DELETE requests; and it samples the CPU time of every process on the machine. The wrappers cost
well under 1% of the run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from minio import Minio  # noqa: E402
from minio.deleteobjects import DeleteObject  # noqa: E402
from sqlalchemy import delete, event, func, insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from bench.audit import postgres_server, throwaway_database  # noqa: E402
from cctv_gov.audit.actions import AuditAction  # noqa: E402
from cctv_gov.authz import SYSTEM_ACTOR  # noqa: E402
from cctv_gov.cameras.schemas import CameraCreate  # noqa: E402
from cctv_gov.config import Settings, StorageBackend  # noqa: E402
from cctv_gov.container import Services, build_services  # noqa: E402
from cctv_gov.kit import stream  # noqa: E402
from cctv_gov.kit.clock import FixedClock  # noqa: E402
from cctv_gov.kit.ids import new_id  # noqa: E402
from cctv_gov.kit.keystore import new_data_key, wrap_data_key  # noqa: E402
from cctv_gov.kit.storage.sigv4 import sign_headers, uri_encode  # noqa: E402
from cctv_gov.migrate import upgrade  # noqa: E402
from cctv_gov.models import AuditEvent, Segment, SegmentState, SegmentTombstone  # noqa: E402
from cctv_gov.sites.schemas import SiteCreate  # noqa: E402
from tests.fixtures.radosgw import BINARIES, RadosGW  # noqa: E402

TARGET_ERASURES_PER_S = 2000
CAMERAS = 32
RETENTION_DAYS = 31
PLAINTEXT_BYTES = 16  # a 64-byte object once sealed (32-byte header, 16-byte tag)
ROW_CHUNK = 5000
DELETE_BATCH = 1000
UPLOAD_THREADS = 16
DATA_KEYS_PER_DAY = 4
BUCKET = "cctv-bench-purge"


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: radosgw stopped, the database dropped


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Sets of footage ------------------------------------------------------------------------------------------------


@dataclass
class FootageSet:
    name: str
    site_id: uuid.UUID
    rows: list[dict[str, Any]]
    versions: dict[str, str | None] = field(default_factory=dict)
    """Object key -> the version id the store gave it (None on a bucket without versioning)."""
    load_rows_seconds: float = 0.0
    upload_seconds: float = 0.0

    @property
    def keys(self) -> list[str]:
        return [r["object_key"] for r in self.rows]

    @property
    def days(self) -> list[date]:
        return sorted({r["key_day"] for r in self.rows})


def make_rows(
    services: Services, site_id: uuid.UUID, cameras: list[uuid.UUID], count: int, first: datetime, data: bytes
) -> list[dict[str, Any]]:
    """`count` registered 1-minute segments, segment i on camera i % 32 at minute i // 32 from `first`, as
    ``UploadService`` writes them (object key, key day, a data key wrapped by the site-day key)."""
    layout = stream.Layout(PLAINTEXT_BYTES)
    assert layout.ciphertext_size == len(data)
    md5 = hashlib.md5(data, usedforsecurity=False).digest()
    wrapped: dict[date, list[bytes]] = {}
    rows = []
    for i in range(count):
        camera = cameras[i % len(cameras)]
        start = first + timedelta(minutes=i // len(cameras))
        end = start + timedelta(minutes=1)
        day = start.date()
        if day not in wrapped:
            kek = services.key_store.get_or_create(site_id, day)
            wrapped[day] = [wrap_data_key(kek, new_data_key()) for _ in range(DATA_KEYS_PER_DAY)]
        segment_id = new_id()
        rows.append(
            {
                "id": segment_id,
                "upload_id": new_id(),
                "site_id": site_id,
                "camera_id": camera,
                "state": SegmentState.REGISTERED.value,
                "start_at": start,
                "end_at": end,
                "size": PLAINTEXT_BYTES,
                "sha256": hashlib.sha256(segment_id.bytes).digest(),
                "container": "mp4",
                "codec": "h264",
                "chunk_size": layout.chunk_size,
                "ciphertext_size": layout.ciphertext_size,
                "ciphertext_md5": md5,
                "object_key": f"footage/{site_id}/{camera}/{day:%Y/%m/%d}/{segment_id}.cgv",
                "key_day": day,
                "wrapped_key": wrapped[day][i % DATA_KEYS_PER_DAY],
                "agent_id": None,
                "created_at": start,
                "expires_at": end + timedelta(hours=1),
                "stored_at": None,
                "registered_at": end + timedelta(seconds=30),
                "failure_code": None,
                "object_deleted_at": None,
            }
        )
    return rows


def load_rows(services: Services, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), ROW_CHUNK):
        with services.db.transaction() as session:
            session.execute(insert(Segment), rows[start : start + ROW_CHUNK])
    with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE segments"))


def upload_objects(rgw: RadosGW, keys: list[str], data: bytes, threads: int) -> dict[str, str | None]:
    """PUT every key with `data`: `threads` threads, each on one keep-alive connection (``store.put`` opens a
    connection per object and reads it back with a HEAD: three times slower for setup that is not measured).
    Returns each key's version id."""
    payload_hash = hashlib.sha256(data).hexdigest()
    content_md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    host, _, port = rgw.endpoint.rpartition(":")
    errors: list[BaseException] = []
    versions: dict[str, str | None] = {}

    def work(share: list[str]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            for key in share:
                path = f"/{BUCKET}/{key}"
                headers = sign_headers(
                    method="PUT",
                    host=rgw.endpoint,
                    path=path,
                    query={},
                    headers={"Content-Length": str(len(data)), "Content-MD5": content_md5},
                    payload_hash=payload_hash,
                    access_key=rgw.access_key,
                    secret_key=rgw.secret_key,
                    region=rgw.region,
                    now=datetime.now(UTC),  # the S3 server checks signatures against its own clock
                )
                conn.request("PUT", uri_encode(path, keep_slash=True), body=data, headers=headers)
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    raise RuntimeError(f"PUT {key}: {response.status} {body[:200]!r}")
                versions[key] = response.getheader("x-amz-version-id")
        except BaseException as exc:  # noqa: BLE001 - raised in the main thread below
            errors.append(exc)
        finally:
            conn.close()

    workers = [threading.Thread(target=work, args=(keys[k::threads],)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return versions


def load_set(
    services: Services,
    rgw: RadosGW,
    name: str,
    site_id: uuid.UUID,
    cameras: list[uuid.UUID],
    count: int,
    first: datetime,
    data: bytes,
) -> FootageSet:
    footage = FootageSet(name, site_id, make_rows(services, site_id, cameras, count, first, data))
    began = time.perf_counter()
    load_rows(services, footage.rows)
    footage.load_rows_seconds = time.perf_counter() - began
    began = time.perf_counter()
    footage.versions = upload_objects(rgw, footage.keys, data, UPLOAD_THREADS)
    footage.upload_seconds = time.perf_counter() - began
    say(
        f"  loaded {name}: {count} rows in {footage.load_rows_seconds:.1f} s, {count} objects in"
        f" {footage.upload_seconds:.1f} s ({count / footage.upload_seconds:.0f} PUT/s)"
    )
    return footage


def left_in_bucket(client: Minio, site_id: uuid.UUID) -> int:
    """Objects, noncurrent versions and delete markers left under the site's footage prefix."""
    listing = client.list_objects(BUCKET, prefix=f"footage/{site_id}/", recursive=True, include_version=True)
    return sum(1 for _ in listing)


# The baseline ---------------------------------------------------------------------------------------------------


@dataclass
class Baseline:
    seconds: float
    s3_seconds: float
    cpu: dict[str, float]


def plain_delete(services: Services, client: Minio, footage: FootageSet) -> Baseline:
    """Delete the set's objects and rows, 1,000 at a time, with nothing else: one S3 multi-object DELETE
    (the SDK's ``remove_objects``, nothing listed first: each object by the version id its PUT returned, which
    on a versioned bucket is what erases it) and one DELETE statement per batch."""
    rows = footage.rows
    s3_seconds = 0.0
    cpu = CpuSample.now()
    began = time.perf_counter()
    for start in range(0, len(rows), DELETE_BATCH):
        batch = rows[start : start + DELETE_BATCH]
        s3_began = time.perf_counter()
        # remove_objects is lazy: nothing is deleted until its error iterator is consumed.
        doomed = [DeleteObject(r["object_key"], footage.versions[r["object_key"]]) for r in batch]
        failed = list(client.remove_objects(BUCKET, doomed))
        s3_seconds += time.perf_counter() - s3_began
        if failed:
            raise RuntimeError(f"baseline: {len(failed)} objects could not be deleted: {failed[0]}")
        with services.db.engine.begin() as conn:
            conn.execute(delete(Segment).where(Segment.id.in_([r["id"] for r in batch])))
    seconds = time.perf_counter() - began
    return Baseline(seconds, s3_seconds, CpuSample.now().since(cpu))


# Where the purge's time goes ------------------------------------------------------------------------------------

_STATEMENT = re.compile(r"^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM)\b", re.IGNORECASE)
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)


def statement_label(statement: str) -> str:
    verb = _STATEMENT.match(statement)
    table = _TABLE.search(statement)
    label = f"{verb.group(1).split()[0].upper() if verb else statement.split(None, 1)[0].upper()}"
    label += f" {table.group(1)}" if table else ""
    if "FOR UPDATE" in statement.upper():
        label += " FOR UPDATE"
    return label


@dataclass
class Profile:
    """Wall time of the purge's steps, and of every SQL statement (by kind) within them."""

    phases: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    phase_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    phase_sql: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    sql: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    sql_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    current: str | None = None
    last_in_transaction: str | None = None
    requests: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    request_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    request_items: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.current is not None:  # nested (e.g. an audit event built inside the day-key step)
            yield
            return
        self.current = name
        began = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - began
            self.phase_calls[name] += 1
            self.current = None
            self.last_in_transaction = name

    def wrap(self, owner: Any, attribute: str, name: str) -> Callable[[], None]:
        """Time every call of ``owner.attribute`` as step `name`; returns the function that undoes it."""
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)
        return lambda: delattr(owner, attribute)

    def wrap_lazy(
        self, owner: Any, attribute: str, name: str, count_argument: int | None = None
    ) -> Callable[[], None]:
        """Time the iteration of what ``owner.attribute`` returns (the SDK's lazy listings and deletes, whose
        requests are sent as they are consumed), wherever it is called; count the items, or the length of
        positional argument `count_argument`."""
        original = getattr(owner, attribute)

        def consume(iterator: Iterator[Any]) -> Iterator[Any]:
            while True:
                began = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                finally:
                    self.requests[name] += time.perf_counter() - began
                if count_argument is None:
                    self.request_items[name] += 1
                yield item

        def timed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.request_calls[name] += 1
            if count_argument is not None and len(args) > count_argument:
                self.request_items[name] += len(args[count_argument])
            return consume(iter(original(*args, **kwargs)))

        setattr(owner, attribute, timed)
        return lambda: delattr(owner, attribute)

    def wrap_transactions(self, services: Services) -> Callable[[], None]:
        """Time each commit of ``db.transaction()``, named after the last step run inside the transaction."""
        original = services.db.transaction

        @contextmanager
        def transaction() -> Iterator[Session]:
            outer = self.current is not None
            self.last_in_transaction = None
            with ExitTimer() as timer, original() as session:
                yield session
                timer.start()  # the body is done: from here on it is the commit (and closing the session)
            if not outer:
                name = f"commit after {self.last_in_transaction or 'run record'}"
                self.phases[name] += timer.seconds
                self.phase_calls[name] += 1

        services.db.transaction = transaction  # type: ignore[method-assign]
        return lambda: delattr(services.db, "transaction")

    def listen(self, services: Services) -> Callable[[], None]:
        engine = services.db.engine

        def before(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            conn.info.setdefault("bench_started", []).append(time.perf_counter())

        def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seconds = time.perf_counter() - conn.info["bench_started"].pop()
            label = statement_label(statement)
            self.sql[label] += seconds
            self.sql_calls[label] += 1
            self.phase_sql[self.current or "outside the steps"] += seconds

        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)

        def undo() -> None:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)

        return undo


class ExitTimer:
    """Measures from ``start()`` to the end of the ``with`` block (exits of the contexts entered after it)."""

    def __init__(self) -> None:
        self.began: float | None = None
        self.seconds = 0.0

    def __enter__(self) -> ExitTimer:
        return self

    def start(self) -> None:
        self.began = time.perf_counter()

    def __exit__(self, *_: object) -> None:
        if self.began is not None:
            self.seconds = time.perf_counter() - self.began


def instrument(services: Services, profile: Profile) -> list[Callable[[], None]]:
    """Wrap the purge's steps (those this version of the service has) and its SQL and S3 requests."""
    purge = services.purge
    steps = [
        (purge, "plan", "plan (count expired and held per site)"),
        (purge, "sync_legal_holds", "store legal holds synced"),
        (purge.repo, "claim_expired", "claim (SELECT ... FOR UPDATE SKIP LOCKED, UPDATE state)"),
        (purge.storage, "delete_many", "S3 deletes (delete_many)"),
        (purge.repo, "replace_by_tombstones", "tombstones (SELECT, INSERT, DELETE)"),
        (purge.audit, "event", "audit events built (canonical JSON, leaf hash)"),
        (purge.audit, "record_many", "audit events INSERT"),
        (purge, "_destroy_empty_days", "day keys (check, record, audit, destroy)"),
        (purge, "_destroy_finished_hold_keys", "keys of finished holds"),
    ]
    undo = [profile.wrap(owner, name, label) for owner, name, label in steps if hasattr(owner, name)]
    undo += [profile.wrap_transactions(services), profile.listen(services)]
    sdk = getattr(purge.storage, "_client", None)  # the store's S3 SDK client: its requests are timed too
    if sdk is not None:
        undo += [
            profile.wrap_lazy(sdk, "list_objects", "S3 listing requests (entries listed)"),
            profile.wrap_lazy(sdk, "remove_objects", "S3 multi-object DELETE requests (objects)", 1),
        ]
    return undo


# CPU time of the processes involved ----------------------------------------------------------------------------


def machine_busy() -> float:
    """CPU seconds the whole machine spent not idle (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def every_process_cpu() -> dict[int, tuple[str, float]]:
    """(command name, CPU seconds) of every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                head, tail = (entry / "stat").read_text().rsplit(")", 1)
                fields = tail.split()
                found[int(entry.name)] = (
                    head.split("(", 1)[1],
                    (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"),
                )
    return found


@dataclass
class CpuSample:
    processes: dict[int, tuple[str, float]]
    machine: float

    @classmethod
    def now(cls) -> CpuSample:
        return cls(every_process_cpu(), machine_busy())

    def since(self, earlier: CpuSample) -> dict[str, float]:
        """CPU seconds by command name (this process as "bench"), the largest first, and the machine's."""
        by_name: dict[str, float] = defaultdict(float)
        for pid, (name, seconds) in self.processes.items():
            before = earlier.processes.get(pid)
            used = seconds - before[1] if before else seconds  # or started since
            # A kernel worker's name carries its current work queue: "kworker/0:1-events".
            if name.startswith("kworker"):
                name = "kworker"
            by_name["bench" if pid == os.getpid() else name] += max(0.0, used)
        top = {name: round(s, 2) for name, s in sorted(by_name.items(), key=lambda kv: -kv[1]) if s >= 0.05}
        return {**top, "machine": round(self.machine - earlier.machine, 2)}


# Main -----------------------------------------------------------------------------------------------------------


def count(services: Services, stmt: Any) -> int:
    with services.db.transaction() as session:
        return int(session.scalar(stmt) or 0)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=100_000, help="segments per set (default 100000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 segments per set")
    parser.add_argument(
        "--plain-bucket",
        action="store_true",
        help="a bucket without Object Lock or versioning (by default it has both, as `cctv-gov storage setup`"
        " creates it)",
    )
    args = parser.parse_args()
    segments = 5000 if args.quick and args.segments == 100_000 else args.segments
    if not RadosGW.available():
        missing = [name for name in BINARIES if not any(Path(p, name).exists() for p in os.get_exec_path())]
        say(
            "bench/purge.py needs a real S3 server: Ceph's radosgw, started throwaway as the tests do. Install "
            f"Ceph's packages (ceph-mon, ceph-osd, radosgw; missing here: {', '.join(missing)}) and run again."
        )
        return 2

    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    data = b"\x5a" * stream.Layout(PLAINTEXT_BYTES).ciphertext_size
    purge_at = datetime.now(UTC).replace(second=0, microsecond=0)
    expired_from = datetime.combine(purge_at.date() - timedelta(days=40), datetime.min.time(), tzinfo=UTC)
    recent_from = datetime.combine(purge_at.date() - timedelta(days=4), datetime.min.time(), tzinfo=UTC)
    clock = FixedClock(expired_from - timedelta(days=1))  # the sites exist before their footage
    memstore = (1 << 30) + segments * 16 * 1024
    profile = Profile()

    with (
        tempfile.TemporaryDirectory(prefix="cctv-gov-bench-purge-") as tmp,
        RadosGW(memstore_bytes=memstore) as rgw,
        postgres_server() as (server_url, tier),
        throwaway_database(server_url) as db_url,
    ):
        upgrade(db_url)
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=db_url,
            storage_backend=StorageBackend.S3,
            s3_endpoint=rgw.endpoint,
            s3_bucket=BUCKET,
            s3_access_key=rgw.access_key,
            s3_secret_key=rgw.secret_key,  # type: ignore[arg-type]
            s3_region=rgw.region,
            s3_secure=False,
            jobs_enabled=False,
        )
        services = build_services(settings, clock=clock)
        try:
            # As `cctv-gov storage setup` makes it: Object Lock, so versioning (its lifecycle rules are left
            # out: the test radosgw runs lifecycle every 10 s, as if each were a day).
            services.storage.ensure_bucket(object_lock=not args.plain_bucket)  # type: ignore[attr-defined]
            sdk = Minio(
                rgw.endpoint,
                access_key=rgw.access_key,
                secret_key=rgw.secret_key,
                region=rgw.region,
                secure=False,
            )
            with services.db.engine.connect() as conn:
                server_version = str(conn.scalar(text("SHOW server_version")))
            sites: dict[str, tuple[uuid.UUID, list[uuid.UUID]]] = {}
            with services.db.transaction() as s:
                for slug in ("bench-purge", "bench-baseline"):
                    site = services.sites.create(
                        s,
                        SYSTEM_ACTOR,
                        SiteCreate(slug=slug, name=slug, timezone="UTC", retention_days=RETENTION_DAYS),
                    )
                    cameras = [
                        services.cameras.create(
                            s,
                            SYSTEM_ACTOR,
                            site.id,
                            CameraCreate(
                                key=f"cam-{c:02d}",
                                name=f"Camera {c}",
                                location="bench",
                                purpose="Benchmarking the purge",
                            ),
                        ).id
                        for c in range(1, CAMERAS + 1)
                    ]
                    sites[slug] = (site.id, cameras)
            purge_site, purge_cameras = sites["bench-purge"]
            base_site, base_cameras = sites["bench-baseline"]

            def baseline_round(n: int) -> tuple[FootageSet, Baseline]:
                footage = load_set(
                    services, rgw, f"baseline set {n}", base_site, base_cameras, segments, recent_from, data
                )
                run = plain_delete(services, sdk, footage)
                left = left_in_bucket(sdk, base_site)
                rgw.collect_garbage()
                if left or count(services, select(func.count()).select_from(Segment)):
                    raise RuntimeError(f"baseline {n}: {left} objects or some rows left")
                say(
                    f"  baseline {n}: {segments / run.seconds:.0f} erasures/s ({run.seconds:.1f} s, of which S3"
                    f" deletes {run.s3_seconds:.1f} s); CPU s: {run.cpu}"
                )
                return footage, run

            bucket = "plain" if args.plain_bucket else "with Object Lock and versioning"
            say(
                f"{segments} segments per set, {CAMERAS} cameras, objects of {len(data)} bytes, bucket {bucket}"
            )
            say("1. baseline: plain batch delete")
            first, base1 = baseline_round(1)

            say("2. purge")
            target = load_set(
                services, rgw, "purge set", purge_site, purge_cameras, segments, expired_from, data
            )
            clock.set(purge_at)
            undo = instrument(services, profile)
            cpu0 = CpuSample.now()
            began = time.perf_counter()
            try:
                report = services.purge.run(services.db, force=True)
            finally:
                purge_seconds = time.perf_counter() - began
                cpu = CpuSample.now().since(cpu0)
                for step in reversed(undo):
                    step()
            left = left_in_bucket(sdk, purge_site)
            tombstones = count(
                services,
                select(func.count())
                .select_from(SegmentTombstone)
                .where(SegmentTombstone.purge_run_id == report.run_id),
            )
            erase_events = count(
                services,
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == AuditAction.SEGMENT_ERASE.value),
            )
            key_events = count(
                services,
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == AuditAction.DAY_KEY_DESTROY.value),
            )
            rows_left = count(services, select(func.count()).where(Segment.site_id == purge_site))
            keys_left = len(services.key_store.days(purge_site))
            rgw.collect_garbage()
            rate = report.segments_erased / purge_seconds
            say(f"  purge: {rate:.0f} erasures/s ({purge_seconds:.1f} s), outcome {report.outcome}")

            say("3. baseline again")
            second, base2 = baseline_round(2)
        finally:
            services.db.dispose()

    baseline_seconds = (base1.seconds + base2.seconds) / 2
    baseline_rate = segments / baseline_seconds
    ratio = rate / baseline_rate
    checks = {
        "erasures_per_s": rate >= TARGET_ERASURES_PER_S,
        "all_erased": report.segments_erased == segments and rows_left == 0,
        "no_delete_failures": report.delete_failures == 0 and report.outcome == "ok",
        "tombstones": tombstones == segments,
        "audit_events": erase_events == segments,
        "day_keys_destroyed": report.keys_destroyed == len(target.days) and keys_left == 0,
        "bucket_empty": left == 0,
    }
    passed = all(checks.values())
    accounted = sum(profile.phases.values())
    phases = {name: round(seconds, 3) for name, seconds in profile.phases.items()}
    phases["other (Python between the steps)"] = round(purge_seconds - accounted, 3)

    def mark(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    say("")
    say(
        f"PostgreSQL {server_version} ({tier}), radosgw (memstore), {os.cpu_count()} CPUs, load average"
        f" {load_before:.2f} before the run"
    )
    say(f"Purge of {segments} expired segments ({CAMERAS} cameras, {len(target.days)} days), forced:")
    say(
        f"  purge, end to end              {rate:9.0f} erasures/s  ({purge_seconds:.1f} s)"
        f"   target >= {TARGET_ERASURES_PER_S}   {mark(checks['erasures_per_s'])}"
    )
    say(
        f"  baseline: plain batch delete   {baseline_rate:9.0f} erasures/s  (runs {base1.seconds:.1f} s and {base2.seconds:.1f} s)"
    )
    say(f"  ratio purge / baseline         {ratio:9.2f}")
    say(
        f"  erased {report.segments_erased}, tombstones {tombstones}, audit events {erase_events},"
        f" day keys destroyed {report.keys_destroyed} ({key_events} audited), delete failures"
        f" {report.delete_failures}, objects left {left}, outcome {report.outcome}"
    )
    say("  where the purge's time goes (wall seconds; of which SQL round trips):")
    for name, seconds in sorted(profile.phases.items(), key=lambda kv: -kv[1]):
        sql = profile.phase_sql.get(name, 0.0)
        say(
            f"    {seconds:7.2f} s  {100 * seconds / purge_seconds:5.1f}%  {name}"
            f"  [{profile.phase_calls[name]} calls{f', SQL {sql:.2f} s' if sql else ''}]"
        )
    say(
        f"    {purge_seconds - accounted:7.2f} s  {100 * (purge_seconds - accounted) / purge_seconds:5.1f}%  other"
    )
    for name, seconds in profile.requests.items():
        say(
            f"    inside: {seconds:7.2f} s  {name}: {profile.request_calls[name]} calls,"
            f" {profile.request_items[name]} {'objects' if 'DELETE' in name else 'entries'}"
        )
    say("  SQL statements (wall seconds, calls):")
    for label, seconds in sorted(profile.sql.items(), key=lambda kv: -kv[1]):
        say(f"    {seconds:7.2f} s  {profile.sql_calls[label]:6d}  {label}")
    say(f"  CPU seconds during the purge: {', '.join(f'{k} {v}' for k, v in cpu.items())}")
    say(
        f"  setup (not timed): rows {target.load_rows_seconds:.1f} s, objects {target.upload_seconds:.1f} s per"
        f" set ({segments / target.upload_seconds:.0f} PUT/s)"
    )
    wall_seconds = time.perf_counter() - wall
    say(f"Wall time {wall_seconds:.0f} s. Overall: {mark(passed)}")

    summary = {
        "bench": "purge",
        "quick": bool(args.quick),
        "segments": segments,
        "cameras": CAMERAS,
        "days": len(target.days),
        "object_bytes": len(data),
        "bucket": "plain" if args.plain_bucket else "object lock + versioning",
        "purge_batch_size": settings.purge_batch_size,
        "forced": True,
        "threshold_reason": report.reason,
        "erasures_per_s": round(rate, 1),
        "target_erasures_per_s": TARGET_ERASURES_PER_S,
        "purge_seconds": round(purge_seconds, 2),
        "baseline_per_s": round(baseline_rate, 1),
        "baseline_seconds": [round(base1.seconds, 2), round(base2.seconds, 2)],
        "baseline_s3_seconds": [round(base1.s3_seconds, 2), round(base2.s3_seconds, 2)],
        "baseline_cpu_seconds": [base1.cpu, base2.cpu],
        "ratio": round(ratio, 3),
        "target_ratio": None,
        "segments_erased": report.segments_erased,
        "keys_destroyed": report.keys_destroyed,
        "delete_failures": report.delete_failures,
        "outcome": report.outcome,
        "tombstones": tombstones,
        "audit_erase_events": erase_events,
        "audit_day_key_events": key_events,
        "objects_left": left,
        "phases_seconds": phases,
        "s3_seconds": {name: round(seconds, 3) for name, seconds in profile.requests.items()},
        "s3_items": dict(profile.request_items),
        "sql_seconds": {label: round(seconds, 3) for label, seconds in profile.sql.items()},
        "cpu_seconds": cpu,
        "setup_rows_seconds": [round(f.load_rows_seconds, 1) for f in (first, target, second)],
        "setup_upload_seconds": [round(f.upload_seconds, 1) for f in (first, target, second)],
        "checks": checks,
        "postgres": server_version,
        "postgres_tier": tier,
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "wall_seconds": round(wall_seconds, 1),
        "pass": passed,
    }
    print(json.dumps(summary))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
