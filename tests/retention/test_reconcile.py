"""Reconcile compares the store with the database both ways, reports, and never keeps footage that must be gone."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from sqlalchemy import select

from cctv_gov.container import Services
from cctv_gov.kit.clock import FixedClock
from cctv_gov.models import AuditEvent, Segment
from tests.conftest import World
from tests.fixtures import footage


def test_reconcile_reports_both_ways_and_erases_only_what_must_be_gone(
    services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-c1")
    end = clock.now() - timedelta(hours=1)
    keep = footage.register(
        services,
        world.site_a,
        cam.key,
        os.urandom(500),
        end - timedelta(minutes=2),
        end - timedelta(minutes=1),
    )
    lost = footage.register(services, world.site_a, cam.key, os.urandom(500), end - timedelta(minutes=1), end)
    services.storage.delete_many([lost.object_key])  # removed behind the service's back
    prefix = f"footage/{world.site_a}/{cam.id}/2026/10/01"
    young = f"{prefix}/{uuid.uuid4()}.cgv"
    old = f"{prefix}/{uuid.uuid4()}.cgv"
    services.storage.put(young, [b"unknown"])
    services.storage.put(old, [b"unknown"])
    ancient = (clock.now() - timedelta(days=40)).timestamp()
    os.utime(services.storage.root.joinpath(*old.split("/")), (ancient, ancient))  # type: ignore[attr-defined]

    dry = services.reconcile.run(services.db, dry_run=True)
    assert dry.rows_without_objects == [str(lost.id)]
    assert dry.orphans == [young]
    assert dry.orphans_erased == [old]
    assert services.storage.exists(old)

    report = services.reconcile.run(services.db)
    assert report.counts() == {
        "objects_checked": 3,
        "rows_without_objects": 1,
        "orphans": 1,
        "orphans_erased": 1,
    }
    assert not services.storage.exists(old)
    assert services.storage.exists(young)
    assert services.storage.exists(keep.object_key)
    with services.db.transaction() as s:
        assert s.get(Segment, lost.id) is not None  # the row is the evidence: never deleted to "fix" it
        findings = s.scalars(select(AuditEvent).where(AuditEvent.action.like("retention:%o%:%"))).all()
    assert sorted(e.action for e in findings) == [
        "retention:orphan:erase",
        "retention:reconcile:finding",
        "retention:reconcile:finding",
    ]


def test_an_erased_segments_object_found_again_is_erased(
    services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-c2")
    end = clock.now() - timedelta(hours=1)
    seg = footage.register(services, world.site_a, cam.key, os.urandom(500), end - timedelta(minutes=1), end)
    copy = b"".join(services.storage.open(seg.object_key))
    clock.set(end + timedelta(days=32))
    assert services.purge.run(services.db).segments_erased == 1
    services.storage.put(seg.object_key, [copy])  # a replica or restore brought it back
    report = services.reconcile.run(services.db)
    assert report.orphans_erased == [seg.object_key]
    assert not services.storage.exists(seg.object_key)
