"""On an S3 bucket with Object Lock, held footage also carries the store's legal hold: the store itself refuses
to delete it, and the purge releases the hold once the evidence hold ends, then erases it."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cctv_gov.authz import SYSTEM_ACTOR, Actor, Grant, Role
from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.db import Database
from cctv_gov.holds.schemas import HoldCreate
from cctv_gov.kit.clock import FixedClock
from cctv_gov.kit.storage import S3ObjectStore
from tests.conftest import World
from tests.fixtures import footage
from tests.fixtures.s3 import S3Server, remove_bucket, require_enforcement, service_settings


@pytest.fixture
def locked_bucket(s3_server: S3Server) -> Iterator[S3ObjectStore]:
    require_enforcement(s3_server, "object lock")
    store = s3_server.store(f"cctv-gov-lock-{secrets.token_hex(6)}")
    store.ensure_bucket(object_lock=True)
    try:
        yield store
    finally:
        for info in store.list(""):
            store.set_legal_hold(info.key, False)
        remove_bucket(s3_server.client(), store.bucket)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, s3_server: S3Server, locked_bucket: S3ObjectStore) -> Settings:
    return service_settings(tmp_path, db_url, s3_server, locked_bucket)


@pytest.fixture
def services(settings: Settings, clock: FixedClock, database: Database) -> Services:
    return build_services(settings, clock=clock, db=database)


def test_the_store_refuses_to_delete_held_footage_until_the_hold_ends(
    services: Services, world: World, clock: FixedClock, locked_bucket: S3ObjectStore
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-lh")
    site = uuid.UUID(world.site_a)
    end = clock.now() - timedelta(hours=1)
    seg = footage.register(services, world.site_a, cam.key, os.urandom(2000), end - timedelta(minutes=1), end)
    gm = Actor(uuid.uuid4(), "person", "gm", (Grant(uuid.uuid4(), Role.GENERAL_MANAGER, site),))
    with services.db.transaction() as s:
        hold = services.holds.propose(
            s,
            gm,
            site,
            HoldCreate(
                camera_ids=[cam.id],
                start=end - timedelta(minutes=5),
                end=end,
                reason="The police asked for the footage of the break-in",
                incident_ref="POL-9",
            ),
        )
        services.holds.decide(s, gm, site, hold.hold.id, True, "I approve keeping it for the police, POL-9.")

    assert services.purge.sync_legal_holds(services.db) == {"held": 1, "released": 0, "failures": 0}
    assert locked_bucket.legal_hold(seg.object_key)
    # Not even the service can delete it now.
    assert locked_bucket.delete_many([seg.object_key]) == [seg.object_key]
    assert locked_bucket.exists(seg.object_key)

    with services.db.transaction() as s:
        services.holds.end(s, SYSTEM_ACTOR, site, hold.hold.id, "The police have their copy")
    clock.set(end + timedelta(days=32))
    report = services.purge.run(services.db)
    assert report.segments_erased == 1
    assert report.delete_failures == 0
    assert not locked_bucket.exists(seg.object_key)
