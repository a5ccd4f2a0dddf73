"""The master key and the key store of site-day keys, built from the settings.

The master key seals each site-day key file; it comes from a secret or a file, and is generated on first start
only in embedded mode. The playback-link secret is derived from it, so every service process that shares the
key store also accepts the others' links.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cctv_gov.config import ConfigurationError, Mode, Settings
from cctv_gov.kit.keystore import KEY_SIZE, DirectoryKeyStore


def load_master_key(settings: Settings) -> bytes:
    if settings.master_key is not None:
        text = settings.master_key.get_secret_value()
        source = "CCTV_GOV_MASTER_KEY"
    else:
        path = settings.master_key_file or settings.default_master_key_path
        if not path.exists():
            if settings.mode is Mode.PRODUCTION:
                raise ConfigurationError(f"master key file {path} does not exist")
            _generate(path)
        text = path.read_text()
        source = str(path)
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"the master key in {source} is not base64") from None
    if len(key) != KEY_SIZE:
        raise ConfigurationError(f"the master key in {source} must be the base64 of 32 bytes")
    return key


def build_key_store(settings: Settings, master_key: bytes) -> DirectoryKeyStore:
    store = DirectoryKeyStore(settings.day_key_dir, master_key)
    settings.day_key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return store


def derive_secret(master_key: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"cctv-gov {purpose}".encode()).derive(
        master_key
    )


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # O_EXCL: two processes starting at once must not each write a different key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(KEY_SIZE)).decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
