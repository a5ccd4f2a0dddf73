"""The operator CLI: set up a site and people, then check the audit log, all against a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cctv_gov.cli import main
from cctv_gov.config import get_settings
from cctv_gov.migrate import upgrade


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CCTV_GOV_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    upgrade(get_settings().database_url, data_dir=tmp_path / "data")
    yield CliRunner()
    get_settings.cache_clear()


def run(runner: CliRunner, *args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return (
        json.loads(result.output)
        if result.output.lstrip().startswith(("{", "["))
        else {"text": result.output}
    )


def test_bootstrap_an_installation_from_the_cli(cli_env: CliRunner) -> None:
    site = run(
        cli_env, "admin", "create-site", "--slug", "gym-central", "--name", "Central", "--timezone", "UTC"
    )
    assert site["retention_days"] == 31
    admin = run(
        cli_env, "admin", "create-person", "--name", "Ana", "--grant", "admin", "--token-label", "laptop"
    )
    assert admin["token"].startswith("cgv_")
    gm = run(cli_env, "admin", "create-person", "--name", "Gus", "--grant", "general_manager@gym-central")
    assert gm["grants"] == ["general_manager"]
    agent = run(cli_env, "admin", "create-agent", "--site", "gym-central", "--name", "nvr-1")
    run(cli_env, "admin", "revoke-token", agent["token_id"])
    people = run(cli_env, "admin", "list-principals")
    assert {p["name"] for p in people} == {"Ana", "Gus", "nvr-1"}  # type: ignore[union-attr]
    note = run(cli_env, "audit", "checkpoint")["text"]
    # site 1; Ana 3 (person, grant, token); Gus 2; the agent 3; the revocation 1; the listing 1
    assert note.splitlines()[1] == "11", note
    report = run(cli_env, "audit", "verify")
    assert report["ok"] is True
    assert report["events"] == 11


def test_cli_refuses_bad_input_clearly(cli_env: CliRunner) -> None:
    result = cli_env.invoke(
        main, ["admin", "create-site", "--slug", "Bad Slug", "--name", "x", "--timezone", "UTC"]
    )
    assert result.exit_code != 0
    assert "slug" in result.output
    result = cli_env.invoke(
        main, ["admin", "create-person", "--name", "x", "--grant", "general_manager@nowhere"]
    )
    assert result.exit_code != 0
    assert "site_not_found" in result.output
    result = cli_env.invoke(main, ["admin", "create-person", "--name", "x", "--grant", "emperor"])
    assert result.exit_code != 0
    assert "not a role" in result.output


def test_verify_fails_with_exit_status_1_on_a_tampered_log(cli_env: CliRunner, tmp_path: Path) -> None:
    import sqlite3

    run(cli_env, "admin", "create-site", "--slug", "gym-central", "--name", "Central", "--timezone", "UTC")
    run(cli_env, "audit", "checkpoint")
    with sqlite3.connect(tmp_path / "data" / "cctv-gov.db") as conn:
        conn.execute("UPDATE audit_events SET outcome = 'denied'")
    result = cli_env.invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert json.loads(result.output)["ok"] is False


def test_bad_settings_are_reported_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCTV_GOV_MODE", "production")
    monkeypatch.delenv("CCTV_GOV_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["audit", "public-key"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "invalid settings" in result.output
    assert "DATABASE_URL" in result.output
    assert "Traceback" not in result.output


def test_cameras_from_the_cli(cli_env: CliRunner) -> None:
    run(cli_env, "admin", "create-site", "--slug", "gym-east", "--name", "East", "--timezone", "UTC")
    cam = run(
        cli_env,
        "admin",
        "create-camera",
        "--site",
        "gym-east",
        "--key",
        "cam-01",
        "--name",
        "Door",
        "--location",
        "Front door",
        "--purpose",
        "Safety of members at the entrance",
    )
    assert cam["enabled"] is True
    assert cam["key"] == "cam-01"
    off = run(cli_env, "admin", "update-camera", "--site", "gym-east", "--key", "cam-01", "--disable")
    assert off["enabled"] is False
    listed = run(cli_env, "admin", "list-cameras", "--site", "gym-east")
    assert [c["key"] for c in listed] == ["cam-01"]  # type: ignore[index]
    vague = cli_env.invoke(
        main,
        [
            "admin",
            "create-camera",
            "--site",
            "gym-east",
            "--key",
            "cam-02",
            "--name",
            "x",
            "--location",
            "y",
            "--purpose",
            "cctv",
        ],
    )
    assert vague.exit_code != 0
    assert "purpose" in vague.output


def test_purge_from_the_cli(cli_env: CliRunner) -> None:
    run(cli_env, "admin", "create-site", "--slug", "gym-west", "--name", "West", "--timezone", "UTC")
    dry = run(cli_env, "purge", "--dry-run")
    assert dry["dry_run"] is True
    assert dry["expired"] == 0
    done = run(cli_env, "purge")
    assert done["outcome"] == "ok"
    assert done["run_id"]
