"""The README's run command: `cctv-gov serve` on the embedded default needs no other service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx

from tests.fixtures.live import free_port, wait_healthy


def test_serve_on_the_embedded_default_answers_docs_health_and_readiness(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCTV_GOV_")}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cctv_gov", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(port, proc)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/readyz").json()["status"] == "ready"
        assert httpx.get(f"{base}/v1/me").json()["error"]["code"] == "missing_token"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    data = tmp_path / "cctv-gov-data"
    assert (data / "cctv-gov.db").is_file(), "migrations ran on first start"
    assert (data / "keys" / "audit-signing-key.pem").is_file(), "a signing key was generated"
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
