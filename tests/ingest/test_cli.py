"""The cctv-ingest command line, called through main() as the console script calls it."""

from __future__ import annotations

import json
import socket

import pytest
from cctv_ingest import __version__
from cctv_ingest.cli import main

from .conftest import TOKEN, AgentFiles, FakeService, write_token


def test_check_config_ok(agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]) -> None:
    path = agent_files.write()

    assert main(["check-config", "--config", str(path)]) == 0

    out, err = capsys.readouterr()
    assert out.startswith(f"config OK: {path}\n")
    for expected in (
        "https://cctv.example.org",
        "gym-central",
        "cam-entrance",
        "cam-floor",
        "JSON sidecar",
        str(agent_files.token_file),
    ):
        assert expected in out
    assert err == ""
    assert TOKEN not in out


def test_check_config_lists_every_problem(
    agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_files.data["agent"]["max_concurrent_uploads"] = 0
    agent_files.data["cameras"][1]["folder"] = "relative"
    agent_files.token_file.chmod(0o644)
    path = agent_files.write()

    assert main(["check-config", "--config", str(path)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"config has 3 problems: {path}\n")
    for key in ("service.token_file: ", "agent.max_concurrent_uploads: ", "cameras[1].folder: "):
        assert f"\n  {key}" in err


def test_check_config_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", "/nonexistent/cctv-ingest/agent.toml"]) == 2

    assert "/nonexistent/cctv-ingest/agent.toml: file not found" in capsys.readouterr().err


def test_check_config_warns_about_plain_http(
    agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_files.data["service"]["url"] = "http://nvr-gateway.lan"
    agent_files.data["service"]["allow_insecure_http"] = True

    assert main(["check-config", "--config", str(agent_files.write())]) == 0

    assert "warning: service.url uses plain http" in capsys.readouterr().err


def test_check_config_shows_the_timing_and_time_zone(
    agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_files.data["agent"]["timezone"] = "Europe/Berlin"
    agent_files.data["cameras"][0]["segment_seconds"] = 300

    assert main(["check-config", "--config", str(agent_files.write())]) == 0

    out = capsys.readouterr().out
    assert "time zone   Europe/Berlin" in out
    assert "complete after 10s unchanged, scan every 5s, retry after 1s doubling up to 300s" in out
    assert "segments of at most 300s" in out


def test_give_up_after_needs_once(agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(agent_files.write()), "--give-up-after", "5"]) == 2

    assert "--give-up-after needs --once" in capsys.readouterr().err


def test_run_with_a_bad_config_is_a_usage_error(
    agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_files.data["agent"]["settle_seconds"] = -1

    assert main(["run", "--once", "--config", str(agent_files.write())]) == 2

    assert "agent.settle_seconds: must be at least 0" in capsys.readouterr().err


def test_status_before_the_agent_ever_ran(
    agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(agent_files.write())

    assert main(["status", "--config", path]) == 0
    assert "no spool yet" in capsys.readouterr().out
    assert main(["status", "--config", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exists"] is False


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0

    assert capsys.readouterr().out == f"cctv-ingest {__version__}\n"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2

    assert "required" in capsys.readouterr().err


# -- whoami ---------------------------------------------------------------------------------------------


def _point_at(agent_files: AgentFiles, url: str) -> str:
    agent_files.data["service"]["url"] = url
    return str(agent_files.write())


def test_whoami_prints_principal_and_grants(
    agent_files: AgentFiles, fake_service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _point_at(agent_files, fake_service.url)

    assert main(["whoami", "--config", config]) == 0

    out, err = capsys.readouterr()
    assert "nvr-gym-central (agent, id 7b1d0c9e)" in out
    assert "ingest_agent at gym-central (site id s-123)" in out
    assert err == ""
    assert TOKEN not in out


def test_whoami_fails_without_a_grant_for_the_site(
    agent_files: AgentFiles, fake_service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_service.me["grants"] = [{"role": "ingest_agent", "site_id": "s-9", "site_slug": "gym-north"}]
    config = _point_at(agent_files, fake_service.url)

    assert main(["whoami", "--config", config]) == 1

    out, err = capsys.readouterr()
    assert "ingest_agent at gym-north" in out
    assert "no grant for this agent's site 'gym-central'" in err


def test_whoami_reports_the_service_error(
    agent_files: AgentFiles, fake_service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    write_token(agent_files.token_file, "a-revoked-token\n")
    config = _point_at(agent_files, fake_service.url)

    assert main(["whoami", "--config", config]) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: unauthenticated: missing or invalid token (HTTP 401, request id srv-")
    assert "a-revoked-token" not in err


def test_whoami_cannot_reach_the_service(agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = _point_at(agent_files, f"http://127.0.0.1:{port}")

    assert main(["whoami", "--config", config]) == 1

    assert capsys.readouterr().err.startswith("error: connection_error: ")


def test_whoami_with_a_bad_config_is_a_usage_error(
    agent_files: AgentFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _point_at(agent_files, "ftp://cctv.example.org")

    assert main(["whoami", "--config", config]) == 2

    assert "service.url: scheme must be https" in capsys.readouterr().err
