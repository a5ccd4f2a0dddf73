"""The real agent (`cctv-ingest` in a subprocess) against the real service over HTTP and a real S3 server, with
real video files written by OpenCV: every segment arrives once, and what is stored decrypts to the registered
evidence hash — also across a SIGKILL of the agent and an outage of the store."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from cctv_gov.app import create_app
from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.db import Database
from cctv_gov.kit.clock import SystemClock
from cctv_gov.kit.storage import S3ObjectStore
from cctv_gov.models import Segment
from tests.conftest import World
from tests.fixtures import footage
from tests.fixtures.live import serve
from tests.fixtures.s3 import S3Server, service_settings

AGENT = [sys.executable, "-m", "cctv_ingest"]
PATTERN = "{camera}_%Y%m%d-%H%M%S.mp4"


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server, s3_bucket: S3ObjectStore) -> Settings:
    return service_settings(tmp_path, db_url, s3_server, s3_bucket)


@pytest.fixture
def services(settings: Settings, database: Database) -> Services:
    return build_services(settings, clock=SystemClock(), db=database)


@pytest.fixture
def base_url(settings: Settings, services: Services) -> Iterator[str]:
    with serve(create_app(settings, services=services)) as url:
        yield url


def write_video(path: Path, seed: int, seconds: float = 1.0, size: tuple[int, int] = (160, 120)) -> None:
    """A real MP4 (MPEG-4 Part 2) of noise, written beside its final name and renamed into place."""
    fps = 10
    temp = path.with_name(f".{path.name}.part.mp4")
    writer = cv2.VideoWriter(str(temp), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    rng = np.random.default_rng(seed)
    for _ in range(int(seconds * fps)):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    temp.rename(path)


def make_segments(
    folder: Path, camera: str, count: int, seconds: float = 1.0, size: tuple[int, int] = (160, 120)
) -> dict[str, str]:
    """``count`` one-minute segment files from an hour ago; returns file name -> SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    first = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    hashes = {}
    for i in range(count):
        name = (first + timedelta(minutes=i)).strftime(PATTERN.replace("{camera}", camera))
        write_video(folder / name, seed=i, seconds=seconds, size=size)
        hashes[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return hashes


def agent_config(
    tmp_path: Path, url: str, token: str, camera: str, folder: Path, concurrency: int = 2
) -> Path:
    token_file = tmp_path / "agent-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    config = tmp_path / "agent.toml"
    config.write_text(
        f"""[service]
url = "{url}"
token_file = "{token_file}"
allow_insecure_http = true
timeout_seconds = 30

[agent]
site = "site-a"
spool_path = "{tmp_path / "spool.db"}"
max_concurrent_uploads = {concurrency}
settle_seconds = 0
scan_interval_seconds = 0.1
retry_initial_seconds = 0.1
retry_max_seconds = 0.5

[[cameras]]
id = "{camera}"
folder = "{folder}"
pattern = "{PATTERN}"
segment_seconds = 60
"""
    )
    return config


def run_once(config: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AGENT, "run", "--config", str(config), "--once"], capture_output=True, text=True, timeout=timeout
    )


def rows(services: Services) -> list[Segment]:
    with services.db.transaction() as s:
        return list(s.scalars(select(Segment).order_by(Segment.start_at)))


def registered(services: Services) -> int:
    with services.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Segment).where(Segment.state == "registered")) or 0


def assert_each_once_and_intact(services: Services, hashes: dict[str, str]) -> None:
    found = rows(services)
    assert len(found) == len(hashes), "one row per file: no duplicate uploads"
    assert all(r.state == "registered" for r in found)
    assert sorted(r.sha256.hex() for r in found) == sorted(hashes.values())
    for row in found:
        stored = b"".join(services.storage.open(row.object_key))
        assert stored[:8] == b"CGVSTRM1"
        plain = footage.play_bytes(services, row)  # decrypts, and re-checks the evidence hash at the end
        assert hashlib.sha256(plain).hexdigest() == row.sha256.hex()


def test_every_segment_arrives_once_and_decrypts_to_its_hash(
    tmp_path: Path, base_url: str, services: Services, world: World
) -> None:
    footage.add_camera(services, world.site_a, "cam-01")
    folder = tmp_path / "nvr" / "cam-01"
    hashes = make_segments(folder, "cam-01", 6)
    config = agent_config(tmp_path, base_url, world.tokens["agent@a"], "cam-01", folder)
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    assert_each_once_and_intact(services, hashes)
    # A second pass finds nothing new to send.
    again = run_once(config)
    assert again.returncode == 0, again.stderr
    assert len(rows(services)) == 6
    status = subprocess.run(
        [*AGENT, "status", "--config", str(config), "--json"], capture_output=True, text=True, timeout=30
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["states"].get("registered") == 6


def test_a_sigkilled_agent_resumes_and_registers_each_segment_exactly_once(
    tmp_path: Path, base_url: str, services: Services, world: World
) -> None:
    footage.add_camera(services, world.site_a, "cam-02")
    folder = tmp_path / "nvr" / "cam-02"
    hashes = make_segments(folder, "cam-02", 24, seconds=2.0, size=(480, 360))
    config = agent_config(tmp_path, base_url, world.tokens["agent@a"], "cam-02", folder, concurrency=2)
    proc = subprocess.Popen([*AGENT, "run", "--config", str(config)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while registered(services) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = registered(services)
    assert 0 < at_kill < len(hashes), f"the kill must land mid-run ({at_kill} of {len(hashes)} registered)"
    done = run_once(config)
    assert done.returncode == 0, done.stderr
    assert_each_once_and_intact(services, hashes)


def test_the_agent_keeps_its_queue_while_the_store_is_down_and_catches_up(
    tmp_path: Path, base_url: str, services: Services, world: World, s3_server: S3Server
) -> None:
    if s3_server.gateway is None:
        pytest.skip("stopping the store needs the radosgw tier")
    footage.add_camera(services, world.site_a, "cam-03")
    folder = tmp_path / "nvr" / "cam-03"
    hashes = make_segments(folder, "cam-03", 5)
    config = agent_config(tmp_path, base_url, world.tokens["agent@a"], "cam-03", folder)
    s3_server.gateway.stop_gateway()
    log = (tmp_path / "agent.log").open("w")
    proc = subprocess.Popen([*AGENT, "run", "--config", str(config)], stderr=log)
    try:
        time.sleep(3)
        assert proc.poll() is None, "the agent keeps running while the store is down"
        assert registered(services) == 0
        status = subprocess.run(
            [*AGENT, "status", "--config", str(config), "--json"], capture_output=True, text=True, timeout=30
        )
        queued = json.loads(status.stdout)["states"]
        assert sum(queued.values()) == 5, queued
        assert queued.get("registered", 0) == 0
    finally:
        s3_server.gateway.start_gateway()
    try:
        deadline = time.monotonic() + 60
        while registered(services) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    assert proc.returncode == 0, (tmp_path / "agent.log").read_text()[-2000:]
    assert_each_once_and_intact(services, hashes)
