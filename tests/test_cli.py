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


# storage setup --------------------------------------------------------------------------------------------


@pytest.fixture
def s3_cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: object) -> CliRunner:
    """The CLI configured for the s3 backend on the test S3 server, with a bucket that does not exist yet
    (CCTV_GOV_S3_BUCKET); every bucket named cctv-gov-test-cli-* is removed afterwards."""
    import secrets

    from tests.fixtures.s3 import S3Server, remove_bucket

    assert isinstance(s3_server, S3Server)
    bucket = f"cctv-gov-test-cli-{secrets.token_hex(6)}"
    env = {
        "CCTV_GOV_DATA_DIR": str(tmp_path / "data"),
        "CCTV_GOV_STORAGE_BACKEND": "s3",
        "CCTV_GOV_S3_ENDPOINT": s3_server.endpoint,
        "CCTV_GOV_S3_BUCKET": bucket,
        "CCTV_GOV_S3_ACCESS_KEY": s3_server.access_key,
        "CCTV_GOV_S3_SECRET_KEY": s3_server.secret_key,
        "CCTV_GOV_S3_REGION": s3_server.region,
        "CCTV_GOV_S3_SECURE": "false",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield CliRunner()
    finally:
        get_settings.cache_clear()
        client = s3_server.client()
        for found in client.list_buckets():
            if found.name.startswith("cctv-gov-test-cli-"):
                remove_bucket(client, found.name)


def test_storage_setup_from_the_cli(s3_cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    first = run(s3_cli_env, "storage", "setup")
    assert first["bucket"] == os.environ["CCTV_GOV_S3_BUCKET"]
    assert first["created"] is True
    assert first["object_lock"] is True
    assert first["max_retention_days"] == 31
    assert first["expire_after_days"] == 33
    assert first["lifecycle"]["changed"] is True
    rules = {rule["id"]: rule for rule in first["lifecycle"]["rules"]}
    assert rules["cctv-gov-footage-expire"] == {
        "id": "cctv-gov-footage-expire",
        "status": "Enabled",
        "prefix": "footage/",
        "expiration": {"days": 33},
        "noncurrent_version_expiration_days": 1,
        "abort_incomplete_multipart_upload_days": 1,
    }
    assert rules["cctv-gov-footage-delete-markers"]["expiration"] == {"expired_object_delete_marker": True}

    again = run(s3_cli_env, "storage", "setup")  # idempotent
    assert again["created"] is False
    assert again["lifecycle"]["changed"] is False
    assert again["versioning"] == {"found": "Enabled", "enabled_now": False}

    too_short = s3_cli_env.invoke(main, ["storage", "setup", "--expire-after-days", "31"])
    assert too_short.exit_code == 1
    assert "CCTV_GOV_MAX_RETENTION_DAYS=31" in too_short.output

    monkeypatch.setenv("CCTV_GOV_MAX_RETENTION_DAYS", "10")
    get_settings.cache_clear()
    shorter = run(s3_cli_env, "storage", "setup")
    assert shorter["expire_after_days"] == 12
    assert shorter["lifecycle"]["changed"] is True
    chosen = run(
        s3_cli_env, "storage", "setup", "--bucket", "cctv-gov-test-cli-other", "--expire-after-days", "20"
    )
    assert chosen["bucket"] == "cctv-gov-test-cli-other"
    assert chosen["created"] is True
    assert chosen["expire_after_days"] == 20


def test_storage_setup_refuses_a_bucket_without_object_lock(s3_cli_env: CliRunner, s3_server: object) -> None:
    import os

    from tests.fixtures.s3 import S3Server

    assert isinstance(s3_server, S3Server)
    s3_server.client().make_bucket(os.environ["CCTV_GOV_S3_BUCKET"])
    result = s3_cli_env.invoke(main, ["storage", "setup"])
    assert result.exit_code == 1
    assert "without S3 Object Lock" in result.output
    assert "--bucket NEW-NAME" in result.output
    assert "Traceback" not in result.output


def test_storage_setup_refuses_the_local_backend(cli_env: CliRunner) -> None:
    result = cli_env.invoke(main, ["storage", "setup"])
    assert result.exit_code == 1
    assert "s3 backend" in result.output
    assert "local backend" in result.output


def test_retention_report_certificate_and_reconcile_from_the_cli(cli_env: CliRunner, tmp_path: Path) -> None:
    run(cli_env, "admin", "create-site", "--slug", "gym-north", "--name", "North", "--timezone", "UTC")
    run(
        cli_env,
        "admin",
        "create-camera",
        "--site",
        "gym-north",
        "--key",
        "cam-01",
        "--name",
        "Door",
        "--location",
        "Front door",
        "--purpose",
        "Safety of members at the entrance",
    )
    run(cli_env, "purge")
    report = run(cli_env, "retention", "report", "--site", "gym-north")
    assert report["cameras"][0]["key"] == "cam-01"
    assert report["overdue"] == []
    out = tmp_path / "cert.txt"
    run(cli_env, "audit", "checkpoint")  # integrates queued events
    done = run(
        cli_env, "retention", "certificate", "--site", "gym-north", "--day", "2020-01-01", "--out", str(out)
    )
    assert "0 segments" in done["text"]
    assert out.read_text().count("\u2014 ") == 1  # one signature line
    rec = run(cli_env, "reconcile", "--dry-run")
    assert rec["orphans"] == []
