"""Settings: the embedded default needs nothing; production refuses missing or well-known secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from cctv_gov.audit.keys import load_audit_keys
from cctv_gov.config import ConfigurationError, Mode, Settings, StorageBackend
from cctv_gov.kit.signed_note import generate_private_key_pem


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.mode is Mode.EMBEDDED
    assert s.database_url == f"sqlite:///{tmp_path / 'cctv-gov.db'}"
    assert s.local_root == tmp_path / "objects"
    s.check_production()  # embedded: nothing to refuse


def test_embedded_mode_generates_a_signing_key_once(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    first = load_audit_keys(s)
    assert s.default_signing_key_path.stat().st_mode & 0o077 == 0, "the key file must be private"
    assert load_audit_keys(s).signer.vkey == first.signer.vkey


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CCTV_GOV_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CCTV_GOV_MAX_RETENTION_DAYS", "14")
    monkeypatch.setenv("CCTV_GOV_AUDIT_PREVIOUS_VKEYS", "a+1+x, b+2+y")
    s = Settings()
    assert s.max_retention_days == 14
    assert s.audit_previous_vkeys == ["a+1+x", "b+2+y"]


def test_invalid_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, audit_origin="has space")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, max_retention_days=0)
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, unknown_setting=1)  # type: ignore[call-arg]


def production(tmp_path: Path, **overrides: object) -> Settings:
    key = tmp_path / "key.pem"
    key.write_bytes(generate_private_key_pem())
    base: dict[str, object] = {
        "mode": Mode.PRODUCTION,
        "data_dir": tmp_path,
        "database_url": "postgresql+psycopg://cctv:Xq7-long-random@db/cctv",
        "storage_backend": StorageBackend.S3,
        "s3_endpoint": "minio:9000",
        "s3_access_key": "cctv-gov-service",
        "s3_secret_key": SecretStr("4f1c-long-random-secret"),
        "signing_key_file": key,
        "master_key": SecretStr("q0m3Zk1r0GdGq1n6a6m0YV3a6yq2bq7mZ2k0Qm3x9pU="),
        "audit_origin": "cctv.example.org/audit",
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def test_production_with_real_secrets_starts(tmp_path: Path) -> None:
    production(tmp_path).check_production()


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"signing_key_file": None}, "SIGNING_KEY"),
        ({"signing_key_file": Path("/nonexistent/key.pem")}, "does not exist"),
        ({"signing_key_file": None, "signing_key": SecretStr("changeme")}, "well-known"),
        ({"s3_secret_key": SecretStr("minioadmin")}, "S3_SECRET_KEY"),
        ({"s3_access_key": "minioadmin"}, "S3_ACCESS_KEY"),
        ({"s3_secret_key": SecretStr("")}, "S3_SECRET_KEY"),
        ({"database_url": "postgresql+psycopg://postgres:postgres@db/cctv"}, "DATABASE_URL"),
        ({"database_url": "sqlite:///cctv.db"}, "not SQLite"),
        ({"audit_origin": "cctv-gov.local/audit"}, "AUDIT_ORIGIN"),
        ({"master_key": None}, "MASTER_KEY"),
        ({"master_key": SecretStr("changeme")}, "MASTER_KEY is empty or a well-known"),
        ({"master_key": None, "master_key_file": Path("/nonexistent/master.key")}, "does not exist"),
    ],
)
def test_production_refuses_default_or_missing_secrets(
    tmp_path: Path, overrides: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        production(tmp_path, **overrides).check_production()


def test_production_needs_a_database_url(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(mode=Mode.PRODUCTION, data_dir=tmp_path)


def test_production_never_generates_a_signing_key(tmp_path: Path) -> None:
    s = production(tmp_path, signing_key_file=tmp_path / "absent.pem")
    with pytest.raises(ConfigurationError):
        load_audit_keys(s)
    assert not (tmp_path / "absent.pem").exists()
