"""Site-day keys: created once (even by racing processes), sealed by the master key, destroyed for good."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import date
from pathlib import Path

import pytest

from cctv_gov.kit.keystore import (
    DirectoryKeyStore,
    KeyDestroyed,
    KeyStoreError,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)

SITE = uuid.UUID(int=7)
DAY = date(2026, 11, 30)


def test_get_or_create_is_stable_and_sealed(tmp_path: Path) -> None:
    master = os.urandom(32)
    store = DirectoryKeyStore(tmp_path, master)
    key = store.get_or_create(SITE, DAY)
    assert store.get_or_create(SITE, DAY) == key == store.get(SITE, DAY)
    raw = (tmp_path / str(SITE) / "2026-11-30.key").read_bytes()
    assert key not in raw  # only sealed on disk
    assert (tmp_path / str(SITE) / "2026-11-30.key").stat().st_mode & 0o077 == 0
    assert store.days(SITE) == [DAY]
    with pytest.raises(KeyStoreError, match="master key"):
        DirectoryKeyStore(tmp_path, os.urandom(32)).get(SITE, DAY)


def test_a_key_file_cannot_stand_for_another_day(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path, os.urandom(32))
    store.get_or_create(SITE, DAY)
    folder = tmp_path / str(SITE)
    (folder / "2026-11-30.key").rename(folder / "2026-11-29.key")
    with pytest.raises(KeyStoreError):
        store.get(SITE, date(2026, 11, 29))


def test_racing_creators_agree(tmp_path: Path) -> None:
    master = os.urandom(32)
    stores = [DirectoryKeyStore(tmp_path, master) for _ in range(8)]
    found: list[bytes] = []
    barrier = threading.Barrier(8)

    def create(store: DirectoryKeyStore) -> None:
        barrier.wait()
        found.append(store.get_or_create(SITE, DAY))

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1
    assert [p.name for p in (tmp_path / str(SITE)).iterdir()] == ["2026-11-30.key"]


def test_destroy_makes_wrapped_data_keys_useless(tmp_path: Path) -> None:
    store = DirectoryKeyStore(tmp_path, os.urandom(32))
    data_key = new_data_key()
    wrapped = wrap_data_key(store.get_or_create(SITE, DAY), data_key)
    assert len(wrapped) == 40  # RFC 5649 wrap of 32 bytes
    assert unwrap_data_key(store.get(SITE, DAY), wrapped) == data_key
    assert store.destroy(SITE, DAY) is True
    with pytest.raises(KeyDestroyed):
        store.get(SITE, DAY)
    assert store.destroy(SITE, DAY) is False
    assert store.days(SITE) == []
    # A new key for the same day is a different key: the old wrapped key does not open under it.
    with pytest.raises(KeyStoreError):
        unwrap_data_key(store.get_or_create(SITE, DAY), wrapped)
