"""Site-day keys: the key-encryption keys (KEKs) that wrap every data key of one site's footage of one UTC day.

They live in a key store behind the small ``KeyStore`` interface, kept apart from the database: a database
backup holds only wrapped data keys, useless once the day's key is destroyed. The default is a directory on its
own path, one file per key, each key sealed (AES-256-GCM) by a master key from the settings, with the site and
day bound in as associated data so a key file cannot be renamed to stand for another day.

Several service processes share one key directory (a shared volume); creation is atomic with ``link`` (the
first writer wins, the others read its key), destruction overwrites, unlinks and fsyncs the directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import uuid
from datetime import date
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

KEY_SIZE = 32
_NONCE = 12
_SEALED_SIZE = _NONCE + KEY_SIZE + 16
_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.key$")


class KeyStoreError(Exception):
    """The key store cannot be used (unreadable, corrupt, wrong master key)."""


class KeyDestroyed(KeyStoreError):
    """The site-day key does not exist: destroyed by the purge, or never created."""


class KeyStore(Protocol):
    def get_or_create(self, site_id: uuid.UUID, day: date) -> bytes:
        """The day's key, created if it does not exist yet."""
        ...

    def get(self, site_id: uuid.UUID, day: date) -> bytes:
        """The day's key; KeyDestroyed if there is none."""
        ...

    def destroy(self, site_id: uuid.UUID, day: date) -> bool:
        """Remove the key for good; False if there was none."""
        ...

    def days(self, site_id: uuid.UUID) -> list[date]:
        """Days of the site that still have a key, oldest first."""
        ...

    def check(self) -> None:
        """Readiness probe: raise KeyStoreError if the store cannot be used."""
        ...

    def hold_key(self, hold_id: uuid.UUID) -> bytes:
        """An evidence hold's own key (created on first use): held segments' data keys are re-wrapped under it
        so they outlive their day's key for as long as the hold lasts."""
        ...

    def get_hold_key(self, hold_id: uuid.UUID) -> bytes:
        """The hold's key; KeyDestroyed if there is none."""
        ...

    def destroy_hold_key(self, hold_id: uuid.UUID) -> bool: ...


def wrap_data_key(kek: bytes, data_key: bytes) -> bytes:
    """RFC 5649 key wrap of a data key under a site-day key."""
    return aes_key_wrap_with_padding(kek, data_key)


def unwrap_data_key(kek: bytes, wrapped: bytes) -> bytes:
    try:
        return aes_key_unwrap_with_padding(kek, wrapped)
    except InvalidUnwrap:
        raise KeyStoreError("a wrapped data key does not unwrap under its day key") from None


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


class DirectoryKeyStore:
    def __init__(self, root: Path, master_key: bytes) -> None:
        if len(master_key) != KEY_SIZE:
            raise KeyStoreError("the master key must be 32 bytes")
        self.root = Path(root)
        self._master = AESGCM(master_key)

    def __repr__(self) -> str:
        return f"DirectoryKeyStore({str(self.root)!r})"

    def _path(self, site_id: uuid.UUID, day: date) -> Path:
        return self.root / str(site_id) / f"{day.isoformat()}.key"

    @staticmethod
    def _aad(site_id: uuid.UUID, day: date) -> bytes:
        return f"cctv-gov site-day key v1 {site_id} {day.isoformat()}".encode()

    def _hold_path(self, hold_id: uuid.UUID) -> Path:
        return self.root / "holds" / f"{hold_id}.key"

    def _open_file(self, path: Path, aad: bytes, what: str) -> bytes:
        try:
            sealed = path.read_bytes()
        except FileNotFoundError:
            raise KeyDestroyed(f"no key for {what}") from None
        except OSError as exc:
            raise KeyStoreError(f"key store unreadable: {exc.strerror}") from None
        if len(sealed) != _SEALED_SIZE:
            raise KeyStoreError(f"key file for {what} is corrupt")
        try:
            return self._master.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag:
            raise KeyStoreError(
                f"key file for {what} does not open with the master key (wrong key, or tampered)"
            ) from None

    def get(self, site_id: uuid.UUID, day: date) -> bytes:
        return self._open_file(self._path(site_id, day), self._aad(site_id, day), f"site {site_id} on {day}")

    def get_or_create(self, site_id: uuid.UUID, day: date) -> bytes:
        return self._get_or_create(
            self._path(site_id, day), self._aad(site_id, day), f"site {site_id} on {day}"
        )

    def hold_key(self, hold_id: uuid.UUID) -> bytes:
        aad = f"cctv-gov hold key v1 {hold_id}".encode()
        return self._get_or_create(self._hold_path(hold_id), aad, f"hold {hold_id}")

    def get_hold_key(self, hold_id: uuid.UUID) -> bytes:
        aad = f"cctv-gov hold key v1 {hold_id}".encode()
        return self._open_file(self._hold_path(hold_id), aad, f"hold {hold_id}")

    def destroy_hold_key(self, hold_id: uuid.UUID) -> bool:
        return self._destroy(self._hold_path(hold_id))

    def _get_or_create(self, path: Path, aad: bytes, what: str) -> bytes:
        with contextlib.suppress(KeyDestroyed):
            return self._open_file(path, aad, what)
        key = secrets.token_bytes(KEY_SIZE)
        nonce = secrets.token_bytes(_NONCE)
        sealed = nonce + self._master.encrypt(nonce, key, aad)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = path.parent / f".tmp-{secrets.token_hex(8)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(sealed)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(temp, path)  # atomic and exclusive: another process may have won the race
            except FileExistsError:
                return self._open_file(path, aad, what)
            _fsync_dir(path.parent)
            return key
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def destroy(self, site_id: uuid.UUID, day: date) -> bool:
        return self._destroy(self._path(site_id, day))

    def _destroy(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            os.write(fd, secrets.token_bytes(_SEALED_SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
        path.unlink()
        _fsync_dir(path.parent)
        return True

    def days(self, site_id: uuid.UUID) -> list[date]:
        folder = self.root / str(site_id)
        if not folder.is_dir():
            return []
        found = [m.group(1) for m in (_DAY_FILE.match(p.name) for p in folder.iterdir()) if m]
        return sorted(date.fromisoformat(d) for d in found)

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not os.access(self.root, os.W_OK):
                raise KeyStoreError("key directory is not writable")
        except OSError as exc:
            raise KeyStoreError(f"key directory unusable: {exc.strerror}") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
