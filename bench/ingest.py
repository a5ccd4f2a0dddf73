"""Ingest benchmark: the real agent against the real service and a real S3 server on loopback.

    .venv/bin/python bench/ingest.py [--segments 200] [--segment-mb 30] [--big-gb 1] [--batch 5000] [--no-pin]
                                     [--quick]

It starts a throwaway Ceph radosgw (as the tests do; the Debian packages must be installed), finds a PostgreSQL
server the way the tests do and creates its own database, starts `cctv-gov serve` as a subprocess on PostgreSQL
+ the S3 store, and runs `cctv-ingest` as a subprocess. The last line of output is one JSON object holding every
figure and its target.

CPU layout: by default the client side (the agent, or the baseline's uploader) runs on CPU 0 and radosgw and the
service on the other CPUs, as the NVR and the store are different machines in production. With --no-pin all
share every CPU: then the agent's hashing and encryption take CPU from the store itself, and the ratio measures
that contention (see docs/benchmarks.md for both figures). PostgreSQL, a system service, is never pinned.

Phases:
1. throughput: `segments` files of `segment_mb` MB each (random bytes, in the page cache). Baseline: a plain
   streaming PUT of the same files to the same server (presigned URLs, no hashing, no encryption), with the
   same number of parallel uploads as the agent. Then `cctv-ingest run --once` over the same files: hash,
   prepare, encrypt (twice: once for the Content-MD5, once while uploading), PUT, complete. The baseline runs
   before and after the agent and the mean is used (these machines are noisy). Figure: agent MB/s ÷ baseline MB/s.
2. memory: `cctv-ingest run --once` over two files of `big_gb` GB; the figure is the agent process's peak
   resident set (from wait4's rusage).
3. registration: `batch` uploads prepared and stored (small objects), then registered with the batch call
   (1,000 per call) over HTTP. Figure: segments registered per second. Reported against the same number of plain
   HEAD requests to the store at the same parallelism plus one plain UPDATE of the rows (the unavoidable work).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2 as httpx  # noqa: E402
from sqlalchemy import text, update  # noqa: E402

from bench.audit import postgres_server, throwaway_database  # noqa: E402
from cctv_gov.authz import SYSTEM_ACTOR  # noqa: E402
from cctv_gov.cameras.schemas import CameraCreate  # noqa: E402
from cctv_gov.config import Settings, StorageBackend  # noqa: E402
from cctv_gov.container import build_services  # noqa: E402
from cctv_gov.kit import stream  # noqa: E402
from cctv_gov.kit.storage import S3ObjectStore  # noqa: E402
from cctv_gov.migrate import upgrade  # noqa: E402
from cctv_gov.models import Segment  # noqa: E402
from cctv_gov.sites.schemas import SiteCreate  # noqa: E402
from tests.fixtures.live import free_port, wait_healthy  # noqa: E402
from tests.fixtures.radosgw import RadosGW  # noqa: E402

TARGET_RATIO = 0.8
TARGET_PEAK_MB = 150
TARGET_REGISTER_PER_S = 1000
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
CLIENT_CPUS: set[int] | None = None
"""With --pin: the CPUs of the client side (the agent, or the baseline's uploader); the store and the service get
the others. The NVR and the store are different machines in production; on a 2-core box this gives each side
its own core instead of letting the client's hashing and encryption take CPU from the store."""
SERVER_CPUS: set[int] | None = None


def pin_tree(pid: int, cpus: set[int] | None) -> None:
    """Pin every thread of a running process (sched_setaffinity acts on one thread)."""
    if cpus is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(ProcessLookupError, OSError):
            os.sched_setaffinity(int(task.name), cpus)


def _pin_client() -> None:
    if CLIENT_CPUS is not None:
        os.sched_setaffinity(0, CLIENT_CPUS)


def _pin_server() -> None:
    if SERVER_CPUS is not None:
        os.sched_setaffinity(0, SERVER_CPUS)


BIN = Path(sys.executable).parent
PATTERN = "cam-01_%Y%m%d-%H%M%S.mp4"


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def write_files(folder: Path, count: int, size: int, start: datetime, step: timedelta) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(1 << 20)
    old = time.time() - 3600
    for i in range(count):
        path = folder / (start + i * step).strftime(PATTERN)
        with path.open("wb") as fh:
            left = size
            salt = i.to_bytes(8, "big")
            while left > 0:
                piece = (salt + block)[: min(left, len(block) + 8)]
                fh.write(piece)
                left -= len(piece)
        os.utime(path, (old, old))
    return count * size


def agent_config(work: Path, url: str, token: str, folder: Path, spool: Path) -> Path:
    token_file = work / f"token-{uuid.uuid4().hex[:6]}"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    config = work / f"agent-{uuid.uuid4().hex[:6]}.toml"
    config.write_text(
        f"""[service]
url = "{url}"
token_file = "{token_file}"
allow_insecure_http = true
timeout_seconds = 120

[agent]
site = "bench"
spool_path = "{spool}"
max_concurrent_uploads = {CONCURRENCY}
settle_seconds = 0
scan_interval_seconds = 0.2
retry_initial_seconds = 0.2
retry_max_seconds = 2

[[cameras]]
id = "cam-01"
folder = "{folder}"
pattern = "{PATTERN}"
segment_seconds = 60
"""
    )
    return config


AGENT_CPU_SECONDS: list[float] = []
SERVER_PIDS: list[int] = []
"""radosgw's daemons and the service: their CPU time shows where a run's time goes."""


def server_cpu_seconds() -> float:
    total = 0
    for pid in SERVER_PIDS:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def run_agent(config: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `cctv-ingest run --once`; its CPU time goes to AGENT_CPU_SECONDS."""
    began = time.perf_counter()
    spy = os.environ.get("BENCH_AGENT_PREFIX", "").replace("{n}", str(len(AGENT_CPU_SECONDS))).split()
    proc = subprocess.Popen(
        [
            *spy,
            str(BIN / "cctv-ingest"),
            *os.environ.get("BENCH_AGENT_ARGS", "").split(),
            "run",
            "--config",
            str(config),
            "--once",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_pin_client,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    AGENT_CPU_SECONDS.append(usage.ru_utime + usage.ru_stime)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.environ.get("BENCH_AGENT_LOG"):
        Path(os.environ["BENCH_AGENT_LOG"].replace("{n}", str(len(AGENT_CPU_SECONDS)))).write_text(err)
    if proc.returncode != 0:
        raise RuntimeError(f"cctv-ingest exited with {proc.returncode}: {err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def plain_puts(store: S3ObjectStore, files: list[Path]) -> float:
    """Seconds to PUT every file as is (streaming, presigned URL), CONCURRENCY at a time."""

    def put(path: Path) -> None:
        request = store.presigned_put(f"baseline/{path.name}", expires=timedelta(minutes=30))
        parts = urlsplit(request.url)
        conn = http.client.HTTPConnection(parts.netloc, timeout=120)
        with path.open("rb") as body:
            conn.request(
                "PUT",
                f"{parts.path}?{parts.query}",
                body=body,
                headers={"Content-Length": str(path.stat().st_size)},
                encode_chunked=False,
            )
            response = conn.getresponse()
            response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"baseline PUT failed: {response.status}")

    began = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY, initializer=_pin_client) as pool:
        list(pool.map(put, files))
    seconds = time.perf_counter() - began
    store.delete_many([f"baseline/{p.name}" for p in files])
    return seconds


@contextmanager
def service(env: dict[str, str], port: int) -> Iterator[str]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [str(BIN / "cctv-gov"), "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=_pin_server,
    )
    SERVER_PIDS.append(proc.pid)
    try:
        wait_healthy(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def bench_registration(
    url: str, token: str, site_id: str, store: S3ObjectStore, services: Any, count: int
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"}
    client = httpx.Client(base_url=url, headers=headers, timeout=120)
    base = datetime.now(UTC) - timedelta(days=3)
    data = b"x" * 1024
    digest = hashlib.sha256(data).hexdigest()
    ids: list[str] = []
    keys: list[str] = []

    def prepare(i: int) -> tuple[str, str]:
        start = base + timedelta(seconds=10 * i)
        body = {
            "camera": "cam-reg",
            "start": start.isoformat(),
            "end": (start + timedelta(seconds=10)).isoformat(),
            "size": len(data),
            "sha256": digest,
            "container": "mp4",
        }
        p = client.post(f"/v1/sites/{site_id}/uploads", json=body).json()
        sealed = b"".join(stream.encrypt(base64.b64decode(p["data_key"]), uuid.UUID(p["segment_id"]), [data]))
        md5 = base64.b64encode(hashlib.md5(sealed).digest()).decode()  # noqa: S324 - Content-MD5 is MD5
        t = client.post(
            f"/v1/sites/{site_id}/uploads/{p['upload_id']}/target", json={"content_md5": md5}
        ).json()
        parts = urlsplit(t["url"])
        conn = http.client.HTTPConnection(parts.netloc, timeout=60)
        conn.request("PUT", f"{parts.path}?{parts.query}", body=sealed, headers=t["headers"])
        conn.getresponse().read()
        conn.close()
        return p["upload_id"], p["segment_id"]

    with ThreadPoolExecutor(8) as pool:
        prepared = list(pool.map(prepare, range(count)))
    ids = [u for u, _ in prepared]
    segment_ids = [uuid.UUID(s) for _, s in prepared]
    with services.db.transaction() as s:
        keys = [row[0] for row in s.execute(text("SELECT object_key FROM segments WHERE state = 'pending'"))]

    began = time.perf_counter()
    registered = 0
    for i in range(0, len(ids), 1000):
        answer = client.post(
            f"/v1/sites/{site_id}/uploads/batch-complete", json={"upload_ids": ids[i : i + 1000]}
        )
        registered += sum(1 for r in answer.json()["results"] if r["ok"])
    batch_seconds = time.perf_counter() - began
    client.close()

    began = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(store.stat, keys))
    with services.db.transaction() as s:
        s.execute(update(Segment).where(Segment.id.in_(segment_ids)).values(failure_code=None))
    baseline_seconds = time.perf_counter() - began
    return {
        "registered": registered,
        "register_per_s": registered / batch_seconds,
        "baseline_per_s": count / baseline_seconds,
    }


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--segment-mb", type=int, default=30)
    parser.add_argument("--big-gb", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4, help="throughput rounds (baseline, agent, baseline)")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="let the client, the store and the service share every CPU (by default the client side gets CPU 0 "
        "and the store and service the others, as on separate machines; see CLIENT_CPUS)",
    )
    args = parser.parse_args()
    if args.quick:
        args.segments, args.segment_mb, args.big_gb, args.batch = 20, 5, 0.2, 1000
    global CLIENT_CPUS, SERVER_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    pinned = not args.no_pin and len(cpus) >= 2
    if pinned:
        CLIENT_CPUS, SERVER_CPUS = {cpus[0]}, set(cpus[1:])
    wall = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="cctv-gov-bench-ingest-"))
    memstore = int(
        args.segments * args.segment_mb * 1.1 * (1 << 20) + 2 * args.big_gb * (1 << 30) + (2 << 30)
    )
    try:
        with (
            RadosGW(memstore_bytes=memstore) as rgw,
            postgres_server() as (server_url, tier),
            throwaway_database(server_url) as db_url,
        ):
            bucket = "cctv-bench"
            for pid in rgw._pids():
                pin_tree(pid, SERVER_CPUS)
                SERVER_PIDS.append(pid)
            store = S3ObjectStore(rgw.endpoint, bucket, rgw.access_key, rgw.secret_key, region=rgw.region)
            store.ensure_bucket()
            env = {
                **os.environ,
                "CCTV_GOV_DATA_DIR": str(work / "data"),
                "CCTV_GOV_DATABASE_URL": db_url,
                "CCTV_GOV_STORAGE_BACKEND": "s3",
                "CCTV_GOV_S3_ENDPOINT": rgw.endpoint,
                "CCTV_GOV_S3_BUCKET": bucket,
                "CCTV_GOV_S3_ACCESS_KEY": rgw.access_key,
                "CCTV_GOV_S3_SECRET_KEY": rgw.secret_key,
                "CCTV_GOV_S3_REGION": rgw.region,
                "CCTV_GOV_S3_SECURE": "false",
                "CCTV_GOV_MAX_SEGMENT_BYTES": str(4 << 30),
            }
            upgrade(db_url)
            settings = Settings(
                data_dir=work / "data",
                database_url=db_url,
                storage_backend=StorageBackend.S3,
                s3_endpoint=rgw.endpoint,
                s3_bucket=bucket,
                s3_access_key=rgw.access_key,
                s3_secret_key=rgw.secret_key,  # type: ignore[arg-type]
                s3_region=rgw.region,
                s3_secure=False,
                jobs_enabled=False,
            )
            services = build_services(settings)
            with services.db.transaction() as s:
                site = services.sites.create(
                    s, SYSTEM_ACTOR, SiteCreate(slug="bench", name="Bench", timezone="UTC")
                )
                for key in ("cam-01", "cam-reg"):
                    services.cameras.create(
                        s,
                        SYSTEM_ACTOR,
                        site.id,
                        CameraCreate(
                            key=key, name=key, location="bench", purpose="Benchmarking the ingest path"
                        ),
                    )
                agent = services.identity.create_agent(s, SYSTEM_ACTOR, site_id=site.id, name="bench-nvr")
                _, token = services.identity.issue_token(
                    s, SYSTEM_ACTOR, agent.principal.id, label="b", expires_in_days=1
                )
            site_id = str(site.id)

            with service(env, free_port()) as url:
                # 1. throughput, in rounds: baseline, agent, baseline over fresh files each round, the
                # store emptied and garbage-collected between runs (memstore keeps data in RAM).
                size = args.segment_mb << 20
                rounds = max(1, min(args.rounds, args.segments))
                first = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=10)
                print(
                    f"throughput: {args.segments} files of {args.segment_mb} MB in {rounds} rounds",
                    file=sys.stderr,
                )
                base_runs: list[float] = []
                server_cpu_baseline = server_cpu_agent = 0.0
                agent_seconds = 0.0
                agent_peak = 0.0
                total = 0
                done_files = 0
                for r in range(rounds):
                    count = args.segments // rounds + (1 if r < args.segments % rounds else 0)
                    folder = work / f"cam-01-r{r}"
                    total += write_files(
                        folder, count, size, first + timedelta(minutes=done_files), timedelta(minutes=1)
                    )
                    done_files += count
                    files = sorted(folder.iterdir())
                    cpu0 = server_cpu_seconds()
                    before = plain_puts(store, files)
                    server_cpu_baseline += server_cpu_seconds() - cpu0
                    rgw.collect_garbage()
                    cpu0 = server_cpu_seconds()
                    seconds, peak = run_agent(agent_config(work, url, token, folder, work / f"spool-r{r}.db"))
                    server_cpu_agent += server_cpu_seconds() - cpu0
                    agent_seconds += seconds
                    agent_peak = max(agent_peak, peak)
                    store.delete_many([o.key for o in store.list("footage/")])
                    rgw.collect_garbage()
                    after = plain_puts(store, files)
                    rgw.collect_garbage()
                    base_runs.append((before + after) / 2)
                    shutil.rmtree(folder)
                baseline_seconds = sum(base_runs)
                base1, base2 = min(base_runs), max(base_runs)
                agent_cpu_ms_per_mb = sum(AGENT_CPU_SECONDS) * 1000 / (total / 1e6)
                agent_mb_s = total / agent_seconds / 1e6
                baseline_mb_s = total / baseline_seconds / 1e6
                with services.db.transaction() as s:
                    registered = s.execute(
                        text("SELECT count(*) FROM segments WHERE state = 'registered'")
                    ).scalar_one()

                # 2. memory with big segments
                big = int(args.big_gb * (1 << 30))
                folder = work / "cam-big"
                write_files(folder, 2, big, first + timedelta(hours=5), timedelta(minutes=1))
                big_cfg = agent_config(work, url, token, folder, work / "spool2.db")
                big_seconds, big_peak = run_agent(big_cfg)
                shutil.rmtree(folder)
                store.delete_many([o.key for o in store.list("footage/")])
                rgw.collect_garbage()

                # 3. registration
                print(f"registration: {args.batch} segments", file=sys.stderr)
                reg = bench_registration(url, token, site_id, store, services, args.batch)
            services.db.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratio = agent_mb_s / baseline_mb_s
    passed = (
        ratio >= TARGET_RATIO
        and big_peak <= TARGET_PEAK_MB
        and reg["register_per_s"] >= TARGET_REGISTER_PER_S
        and registered == args.segments
        and reg["registered"] == args.batch
    )
    summary = {
        "bench": "ingest",
        "quick": bool(args.quick),
        "segments": args.segments,
        "segment_mb": args.segment_mb,
        "concurrency": CONCURRENCY,
        "pinned": pinned,
        "agent_mb_s": round(agent_mb_s, 1),
        "agent_cpu_ms_per_mb": round(agent_cpu_ms_per_mb, 2),
        "server_cpu_ms_per_mb_agent_run": round(server_cpu_agent * 1000 / (total / 1e6), 2),
        "server_cpu_ms_per_mb_baseline_run": round(server_cpu_baseline * 1000 / (total / 1e6), 2),
        "baseline_put_mb_s": round(baseline_mb_s, 1),
        "rounds": rounds,
        "baseline_round_seconds_min_max": [round(base1, 2), round(base2, 2)],
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "registered": registered,
        "agent_peak_mb_small_segments": round(agent_peak, 1),
        "big_segment_gb": args.big_gb,
        "big_segments_seconds": round(big_seconds, 1),
        "agent_peak_mb": round(big_peak, 1),
        "target_peak_mb": TARGET_PEAK_MB,
        "batch_segments": args.batch,
        "register_per_s": round(reg["register_per_s"], 1),
        "target_register_per_s": TARGET_REGISTER_PER_S,
        "register_baseline_per_s": round(reg["baseline_per_s"], 1),
        "register_ratio": round(reg["register_per_s"] / reg["baseline_per_s"], 3),
        "postgres_tier": tier,
        "cpus": os.cpu_count(),
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "pass": passed,
    }
    print(json.dumps(summary))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
