"""The purge against a real S3 server: the objects leave the bucket, the rows become tombstones."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.db import Database
from cctv_gov.kit.clock import FixedClock
from cctv_gov.kit.storage import S3ObjectStore
from tests.conftest import World
from tests.fixtures import footage
from tests.fixtures.s3 import S3Server, service_settings


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server, s3_bucket: S3ObjectStore) -> Settings:
    return service_settings(tmp_path, db_url, s3_server, s3_bucket)


@pytest.fixture
def services(settings: Settings, clock: FixedClock, database: Database) -> Services:
    return build_services(settings, clock=clock, db=database)


def test_the_purge_deletes_expired_objects_from_the_bucket(
    services: Services, world: World, clock: FixedClock, s3_bucket: S3ObjectStore
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-s3p").key
    end = clock.now() - timedelta(hours=1)
    old = footage.register(services, world.site_a, cam, os.urandom(3000), end - timedelta(minutes=1), end)
    young = footage.register(
        services,
        world.site_a,
        cam,
        os.urandom(3000),
        end + timedelta(minutes=30),
        end + timedelta(minutes=31),
    )
    assert {o.key for o in s3_bucket.list("footage/")} == {old.object_key, young.object_key}
    clock.set(end + timedelta(days=31, minutes=1))
    report = services.purge.run(services.db)
    assert report.segments_erased == 1
    assert {o.key for o in s3_bucket.list("footage/")} == {young.object_key}
