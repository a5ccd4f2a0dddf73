"""``cctv-ingest run`` and ``status`` from the command line, including as a separate process that is
stopped with SIGTERM or killed with SIGKILL in the middle of an upload."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from cctv_ingest.cli import main
from cctv_ingest.progress import ProgressBar, Snapshot, human_bytes, human_duration, render

from .fake_ingest import FakeIngest, Site, assert_registered_once, states, wait_for


def config_path(site: Site) -> str:
    site.config()
    return str(site.root / "agent.toml")


def test_run_once_prints_a_summary(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.segment(0, 2000)
    site.segment(1, 3000)

    assert main(["run", "--once", "--config", config_path(site)]) == 0

    out = capsys.readouterr().out
    assert "registered  2 segment(s), 5.0 kB" in out


def test_run_once_exits_1_and_lists_rejected_files(
    site: Site, fake: FakeIngest, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.cameras.discard("cam-01")
    path = site.segment(0)

    assert main(["run", "--once", "--config", config_path(site)]) == 1

    out = capsys.readouterr().out
    assert "rejected    1 file(s), kept on disk" in out
    assert f"{path}: camera_not_found:" in out


def test_run_once_with_progress_draws_a_bar(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.segment(0, 10_000)

    assert main(["run", "--once", "--progress", "--config", config_path(site)]) == 0

    err = capsys.readouterr().err
    assert "1/1 files" in err
    assert "done" in err


def test_status_shows_states_cameras_errors_and_rejections(
    site: Site, fake: FakeIngest, capsys: pytest.CaptureFixture[str]
) -> None:
    other = site.root / "nvr" / "cam-02"
    other.mkdir()
    site.data["cameras"].append(
        {"id": "cam-02", "folder": str(other), "pattern": "{camera}_%Y%m%d-%H%M%S.mp4"}
    )
    rejected = other / "cam-02_20250106-100100.mp4"
    rejected.write_bytes(b"x")
    os.utime(rejected, (1_736_150_000, 1_736_150_000))
    site.segment(0)
    site.segment(5)
    fake.fail("POST", r"/v1/sites/.*/uploads", 503, "unavailable", times=1000)  # the service is down
    config = config_path(site)
    assert main(["run", "--once", "--give-up-after", "0.3", "--config", config]) == 1
    capsys.readouterr()

    assert main(["status", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "site        gym-central" in out
    assert "pending     3 file(s)" in out
    assert "cam-01" in out
    assert "cam-02" in out
    assert "last errors" in out
    assert "unavailable" in out

    assert main(["status", "--config", config, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exists"] is True
    assert data["pending"]["files"] == 3
    assert data["pending"]["oldest"]["path"].endswith(".mp4")
    assert data["errors"][0]["code"] == "unavailable"

    fake.faults.clear()  # the service is back, but does not know cam-02
    fake.cameras.discard("cam-02")
    assert main(["run", "--once", "--config", config]) == 1
    capsys.readouterr()
    assert main(["status", "--config", config, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["states"]["registered"] == 2
    assert data["states"]["rejected"] == 1
    assert data["rejected"] == [
        {
            "path": str(rejected),
            "camera": "cam-02",
            "start": "2025-01-06T09:01:00Z",
            "code": "camera_not_found",
            "message": "no such camera at this site",
            "at": data["rejected"][0]["at"],
        }
    ]
    assert main(["status", "--config", config]) == 0
    assert "camera_not_found" in capsys.readouterr().out


# -- progress bar ---------------------------------------------------------------------------------------


def test_progress_line() -> None:
    line = render(Snapshot(12, 40, 1_200_000_000, 4_000_000_000, rejected=1), elapsed=100)

    assert line.startswith("[#######" + "." * 17 + "] 12/40 files  1.2 GB/4.0 GB  12.0 MB/s  ETA 3m53s")
    assert line.endswith("1 rejected")
    assert human_bytes(999) == "999 B"
    assert human_duration(3725) == "1h02m"
    assert "ETA --" in render(Snapshot(0, 3, 0, 10), elapsed=0)


def test_progress_bar_redraws_in_place_on_a_terminal_and_writes_lines_elsewhere() -> None:
    now = [0.0]
    terminal = io.StringIO()
    bar = ProgressBar(terminal, tty=True, interval=1.0, monotonic=lambda: now[0])
    bar.update(Snapshot(0, 2, 0, 10))
    bar.update(Snapshot(1, 2, 5, 10))  # too soon: skipped
    now[0] = 2.0
    bar.update(Snapshot(1, 2, 5, 10))
    bar.finish(Snapshot(2, 2, 10, 10))

    assert terminal.getvalue().count("\r\x1b[K") == 3
    assert terminal.getvalue().endswith("done\n")

    log = io.StringIO()
    plain = ProgressBar(log, tty=False, monotonic=lambda: now[0])
    plain.update(Snapshot(0, 2, 0, 10))
    plain.finish(Snapshot(2, 2, 10, 10))
    assert "\r" not in log.getvalue()
    assert len(log.getvalue().splitlines()) == 2


# -- as a process ---------------------------------------------------------------------------------------


def agent(config: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cctv_ingest", "--log-level", "INFO", "run", "--config", config, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_once_as_a_process(site: Site, fake: FakeIngest) -> None:
    files = [site.segment(minute, 50_000) for minute in range(3)]

    process = agent(config_path(site), "--once")
    out, err = process.communicate(timeout=60)

    assert process.returncode == 0, err
    assert "registered  3 segment(s)" in out
    assert_registered_once(fake, *files)
    assert "\r" not in err  # stderr is not a terminal: no bar unless asked


def hold_uploads(fake: FakeIngest) -> threading.Event:
    """Uploads reach the fake service, which then waits before answering, until the event is set."""
    gate = threading.Event()
    fake.put_gate = gate
    return gate


def puts_received(fake: FakeIngest) -> int:
    return len(fake.calls_to("PUT", r".*/object"))


def test_sigterm_stops_the_agent_cleanly_mid_upload(site: Site, fake: FakeIngest) -> None:
    first = site.segment(0)
    process = agent(config_path(site))
    try:
        wait_for(lambda: len(fake.registered()) == 1)
        gate = hold_uploads(fake)
        second = site.segment(1, 300_000)
        wait_for(lambda: puts_received(fake) == 2)  # the second upload is in flight, unanswered

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    gate.set()

    assert process.returncode == 0
    assert states(site)[second.name] == "prepared"  # it never heard back: it will PUT again
    assert site.run_once().exit_code == 0
    assert_registered_once(fake, first, second)


def test_sigkill_mid_upload_then_restart_loses_and_duplicates_nothing(site: Site, fake: FakeIngest) -> None:
    files = [site.segment(minute, 100_000 + minute) for minute in range(3)]
    gate = hold_uploads(fake)
    process = agent(config_path(site))
    try:
        wait_for(lambda: puts_received(fake) == 2)  # two uploads in flight (max_concurrent_uploads = 2)
        process.kill()
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    gate.set()  # the fake now stores the bodies it had received and answers a dead connection

    assert process.returncode == -signal.SIGKILL
    summary = site.run_once()

    assert summary.exit_code == 0
    assert_registered_once(fake, *files)
    assert len(fake.uploads) == 3
