"""One validated settings class, read from the environment with the ``CCTV_GOV_`` prefix.

Two modes:

* ``embedded`` (the default): SQLite file and a local folder under ``data_dir``; an audit signing key is
  generated on first start. Nothing else needs to run.
* ``production``: PostgreSQL and an S3-compatible store; every secret must be given explicitly and the service
  refuses to start with a missing or well-known default one.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Secrets that ship in examples and quick-start guides; production refuses them.
WELL_KNOWN_SECRETS = frozenset(
    {"", "minioadmin", "minio123", "changeme", "change-me", "password", "secret", "postgres", "admin", "cctv"}
)


DEFAULT_ORIGIN = "cctv-gov.local/audit"


class Mode(StrEnum):
    EMBEDDED = "embedded"
    PRODUCTION = "production"


class StorageBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class ConfigurationError(RuntimeError):
    """The settings cannot be used; the message says which one and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCTV_GOV_", extra="forbid", frozen=True)

    mode: Mode = Mode.EMBEDDED
    data_dir: Path = Path("cctv-gov-data")

    database_url: str = ""
    """SQLAlchemy URL. Empty in embedded mode means ``sqlite:///<data_dir>/cctv-gov.db``."""

    storage_backend: StorageBackend = StorageBackend.LOCAL
    storage_local_root: Path | None = None
    s3_endpoint: str = ""
    """host:port of the S3-compatible store (MinIO, AWS S3, Ceph radosgw ...)."""
    s3_bucket: str = "cctv-footage"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"
    s3_secure: bool = True

    signing_key_file: Path | None = None
    """Ed25519 private key (PKCS#8 PEM) that signs audit checkpoints."""
    signing_key: SecretStr | None = None
    """The same key given as a secret (PEM text or base64 of the 32-byte seed); wins over the file."""
    audit_origin: str = DEFAULT_ORIGIN
    """Origin line of checkpoints and name of the signing key: unique per installation."""
    audit_previous_vkeys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Verifier keys of earlier signing keys, comma-separated: checkpoints they signed stay verifiable."""

    max_retention_days: int = Field(default=31, ge=1, le=3650)
    """Install-wide ceiling on any site's retention period (the policy's 31 days)."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest JSON request body. Footage uploads to the local backend have their own limit below."""
    token_touch_seconds: int = Field(default=60, ge=0)
    """last_used_at of a token is written at most this often (a write per request would serialise)."""

    key_dir: Path | None = None
    """Directory of the site-day keys (default ``<data_dir>/daykeys``). Keep it off the database's disk and out
    of long-lived backups: destroying a day's key there is what erases every copy of that day's footage."""
    master_key: SecretStr | None = None
    """Base64 of the 32-byte master key that seals every site-day key file (required in production)."""
    master_key_file: Path | None = None
    """The master key in a file (base64 text); generated on first start only in embedded mode."""

    max_segment_seconds: int = Field(default=3600, ge=1, le=86_400)
    """Longest segment the ingest accepts."""
    max_segment_bytes: int = Field(default=8 * 1024**3, ge=1024)
    """Largest segment file the ingest accepts (plaintext bytes)."""
    clock_skew_seconds: int = Field(default=120, ge=0, le=3600)
    """How far in the future a segment's times may lie (NVR clocks drift)."""
    upload_ttl_seconds: int = Field(default=86_400, ge=60)
    """A prepared upload must be completed within this time, else it expires and its slot is freed."""
    presign_seconds: int = Field(default=900, ge=10, le=604_800)
    """Lifetime of a presigned PUT URL."""
    playback_seconds: int = Field(default=600, ge=10, le=86_400)
    """Lifetime of a playback link."""
    gap_tolerance_seconds: float = Field(default=2.0, ge=0)
    """Breaks in coverage shorter than this are not reported as gaps."""

    purge_interval_seconds: float = Field(default=900, gt=0)
    """How often the purge runs inside the service (and so how late, at most, footage is erased)."""
    purge_batch_size: int = Field(default=1000, ge=1, le=10_000)
    """Segments erased per batch: objects deleted, then rows replaced by tombstones in one transaction."""
    purge_max_segments: int = Field(default=200_000, ge=1)
    """Safety threshold: a pass that would erase more segments than this stops, unless forced."""
    purge_max_fraction: float = Field(default=0.5, gt=0, le=1)
    """Safety threshold: a pass that would erase more than this share of a site's footage stops, unless forced
    (a clock jumped forward makes everything look expired)."""

    reconcile_interval_seconds: float = Field(default=86_400, gt=0)
    """How often the store is compared with the database (a full listing of the footage prefix)."""

    jobs_enabled: bool = True
    sequencer_interval_seconds: float = Field(default=0.5, gt=0)
    audit_batch_size: int = Field(default=5000, ge=1)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    @field_validator("audit_previous_vkeys", mode="before")
    @classmethod
    def _split_vkeys(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("audit_origin")
    @classmethod
    def _origin_is_a_key_name(cls, value: str) -> str:
        if not value or any(c.isspace() or c == "+" for c in value):
            raise ValueError("must be non-empty with no spaces or '+' (it is also the signing key's name)")
        return value

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Self:
        if not self.database_url:
            if self.mode is Mode.PRODUCTION:
                raise ValueError("CCTV_GOV_DATABASE_URL is required in production mode")
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'cctv-gov.db'}")
        if self.storage_local_root is None:
            object.__setattr__(self, "storage_local_root", self.data_dir / "objects")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def local_root(self) -> Path:
        assert self.storage_local_root is not None  # set by the validator
        return self.storage_local_root

    @property
    def day_key_dir(self) -> Path:
        return self.key_dir or self.data_dir / "daykeys"

    @property
    def default_master_key_path(self) -> Path:
        return self.data_dir / "keys" / "master.key"

    @property
    def default_signing_key_path(self) -> Path:
        return self.data_dir / "keys" / "audit-signing-key.pem"

    def check_production(self) -> None:
        """Refuse to run in production with a missing or well-known secret. Raises ConfigurationError."""
        if self.mode is not Mode.PRODUCTION:
            return
        problems: list[str] = []
        if self.signing_key is None and self.signing_key_file is None:
            problems.append(
                "CCTV_GOV_SIGNING_KEY or CCTV_GOV_SIGNING_KEY_FILE must be set (no generated key)"
            )
        if self.signing_key is not None and self.signing_key.get_secret_value().strip() in WELL_KNOWN_SECRETS:
            problems.append("CCTV_GOV_SIGNING_KEY is empty or a well-known default")
        if self.signing_key_file is not None and not self.signing_key_file.is_file():
            problems.append(f"CCTV_GOV_SIGNING_KEY_FILE does not exist: {self.signing_key_file}")
        if self.master_key is None and self.master_key_file is None:
            problems.append("CCTV_GOV_MASTER_KEY or CCTV_GOV_MASTER_KEY_FILE must be set (no generated key)")
        if self.master_key is not None and self.master_key.get_secret_value().strip() in WELL_KNOWN_SECRETS:
            problems.append("CCTV_GOV_MASTER_KEY is empty or a well-known default")
        if self.master_key_file is not None and not self.master_key_file.is_file():
            problems.append(f"CCTV_GOV_MASTER_KEY_FILE does not exist: {self.master_key_file}")
        if self.storage_backend is StorageBackend.S3:
            if not self.s3_endpoint:
                problems.append("CCTV_GOV_S3_ENDPOINT is required with the s3 backend")
            if self.s3_access_key in WELL_KNOWN_SECRETS:
                problems.append("CCTV_GOV_S3_ACCESS_KEY is empty or a well-known default")
            if self.s3_secret_key.get_secret_value() in WELL_KNOWN_SECRETS:
                problems.append("CCTV_GOV_S3_SECRET_KEY is empty or a well-known default")
        if self.is_sqlite:
            problems.append("production needs PostgreSQL (several processes share one database), not SQLite")
        if self.audit_origin == DEFAULT_ORIGIN:
            problems.append(
                "CCTV_GOV_AUDIT_ORIGIN must name this installation (checkpoints of two logs must differ)"
            )
        password = _url_password(self.database_url)
        if password is not None and password in WELL_KNOWN_SECRETS:
            problems.append("the password in CCTV_GOV_DATABASE_URL is a well-known default")
        if problems:
            raise ConfigurationError("refusing to start in production mode: " + "; ".join(problems))


def _url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
        return None if password is None else str(password)
    except Exception:  # noqa: BLE001 - an unparsable URL fails later with its own clear error
        return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
