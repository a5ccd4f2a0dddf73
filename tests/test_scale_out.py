"""Several service processes against one PostgreSQL: jobs run once at a time, and a dead worker's job moves on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from cctv_gov.audit.verifier import verify_log
from cctv_gov.container import Services
from cctv_gov.db import Database
from cctv_gov.kit.jobs import JobLocks
from tests.conftest import World
from tests.fixtures.live import free_port, wait_healthy

pytestmark = pytest.mark.slow


@pytest.fixture
def db_url(postgres_db_url: str) -> str:
    return postgres_db_url


@pytest.fixture
def two_services(
    tmp_path: Path, db_url: str, services: Services
) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    # Both processes sign with the key the test's own services generated, so one verifier checks everything.
    key = services.settings.default_signing_key_path
    assert key.is_file()
    procs = []
    for i in range(2):
        port = free_port()
        env = {
            **os.environ,
            "CCTV_GOV_DATABASE_URL": db_url,
            "CCTV_GOV_DATA_DIR": str(tmp_path / f"data{i}"),
            "CCTV_GOV_STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
            "CCTV_GOV_SIGNING_KEY_FILE": str(key),
            "CCTV_GOV_AUDIT_ORIGIN": services.settings.audit_origin,
            "CCTV_GOV_SEQUENCER_INTERVAL_SECONDS": "0.05",
        }
        with (tmp_path / f"service{i}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cctv_gov", "serve", "--no-migrate", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append((port, proc))
    try:
        for port, proc in procs:
            wait_healthy(port, proc)
        yield procs
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _hammer(ports: list[int], token: str, n: int) -> list[int]:
    """n audited reads spread over the processes from 4 threads; returns the status codes."""
    codes: list[int] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(k, n, 4):
                port = ports[i % len(ports)]
                r = client.get(
                    f"http://127.0.0.1:{port}/v1/principals", headers={"Authorization": f"Bearer {token}"}
                )
                with lock:
                    codes.append(r.status_code)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return codes


def _sequenced_everything(services: Services, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.db.transaction() as s:
            if services.audit.repo.count_unsequenced(s) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("events were not sequenced by the surviving service")


def test_two_processes_share_one_log_and_survive_a_killed_worker(
    services: Services, world: World, two_services: list[tuple[int, subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    ports = [port for port, _ in two_services]
    token = world.tokens["admin@*"]
    codes = _hammer(ports, token, 120)
    assert codes == [200] * 120
    _sequenced_everything(services)

    # Kill one process outright (no clean shutdown: its locks go with its connections).
    _, victim = two_services[0]
    victim.kill()
    victim.wait(10)
    codes = _hammer(ports[1:], token, 40)
    assert codes == [200] * 40
    _sequenced_everything(services)

    with services.db.transaction() as s:
        report = verify_log(s, origin=services.keys.signer.name, verifiers=services.keys.verifiers)
    assert report.ok, report.problems
    assert report.unsequenced == 0
    logs = "".join((tmp_path / f"service{i}.log").read_text(errors="replace") for i in range(2))
    assert "job audit-sequencer failed" not in logs, "two sequencers ran at once and one hit a conflict"


HOLDER = """
import sys, time
from cctv_gov.db import Database
from cctv_gov.kit.jobs import JobLocks
locks = JobLocks(Database(sys.argv[1]))
with locks.try_hold("audit-sequencer") as held:
    print("held" if held else "busy", flush=True)
    time.sleep(120)
"""


def test_a_crashed_workers_job_lock_is_released_and_taken_over(db_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"held"
        locks = JobLocks(Database(db_url))
        with locks.try_hold("audit-sequencer") as held:
            assert not held, "a second worker must not run a job another worker is running"
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        taken = False
        while time.monotonic() < deadline and not taken:
            with locks.try_hold("audit-sequencer") as held:
                taken = held
            time.sleep(0.05)
        assert taken, "the dead worker's lock was not released"
        locks.db.dispose()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
