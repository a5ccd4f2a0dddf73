"""The purge, with a clock that moves only when told: on time, never early, resumable, guarded, and final."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from cctv_gov.container import Services
from cctv_gov.kit import stream
from cctv_gov.kit.clock import FixedClock
from cctv_gov.kit.keystore import KeyDestroyed, unwrap_data_key
from cctv_gov.models import AuditEvent, DayKeyDestruction, PurgeRun, Segment, SegmentTombstone
from cctv_gov.retention import service as purge_module
from tests.conftest import World
from tests.fixtures import footage


def segment_at(
    services: Services, world: World, camera: str, end: datetime, seconds: int = 60
) -> tuple[Segment, bytes]:
    data = os.urandom(5000)
    seg = footage.register(services, world.site_a, camera, data, end - timedelta(seconds=seconds), end)
    return seg, data


def count(services: Services, model: type) -> int:
    with services.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def actions(services: Services, action: str) -> list[AuditEvent]:
    with services.db.transaction() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_one_second_inside_retention_is_kept_one_second_past_is_erased(
    services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-r1").key
    end = clock.now() - timedelta(hours=1)
    old, _ = segment_at(services, world, cam, end)
    young, young_data = segment_at(services, world, cam, end + timedelta(seconds=2), seconds=2)
    clock.set(end + timedelta(days=31, seconds=1))  # site-a keeps 31 days

    report = services.purge.run(services.db)

    assert report.outcome == "ok"
    assert report.segments_erased == 1
    with services.db.transaction() as s:
        assert s.get(Segment, old.id) is None
        tomb = s.get(SegmentTombstone, old.id)
        assert tomb is not None
        assert tomb.sha256 == old.sha256
        assert tomb.purged_at == clock.now()
        assert s.get(Segment, young.id) is not None
    assert not services.storage.exists(old.object_key)
    assert services.storage.exists(young.object_key)
    erased = actions(services, "retention:segment:erase")
    assert [e.target_id for e in erased] == [str(old.id)]
    # The day still holds the young segment: its key stays, and the young segment still plays.
    assert services.key_store.days(young.site_id) == [young.key_day]
    assert footage.play_bytes(services, young) == young_data
    assert report.keys_destroyed == 0


def test_an_emptied_day_loses_its_key_and_a_copy_taken_before_cannot_be_read(
    services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-r2").key
    end = clock.now() - timedelta(hours=2)
    seg, data = segment_at(services, world, cam, end)
    # What a thief or a long-lived backup keeps: the ciphertext and the database row's wrapped key.
    stolen = b"".join(services.storage.open(seg.object_key))
    assert seg.wrapped_key is not None
    wrapped = seg.wrapped_key
    data_key = unwrap_data_key(services.key_store.get(seg.site_id, seg.key_day), wrapped)
    layout = stream.Layout(len(data))
    assert b"".join(stream.decrypt_all(data_key, seg.id, layout, [stolen])) == data

    day_over = datetime.combine(seg.key_day + timedelta(days=1), time(), tzinfo=UTC)
    clock.set(day_over + timedelta(days=31, seconds=services.settings.max_segment_seconds + 1))
    report = services.purge.run(services.db)

    assert report.segments_erased == 1
    assert report.keys_destroyed == 1
    with pytest.raises(KeyDestroyed):
        services.key_store.get(seg.site_id, seg.key_day)
    with services.db.transaction() as s:
        assert s.get(DayKeyDestruction, (seg.site_id, seg.key_day)) is not None
    assert len(actions(services, "retention:daykey:destroy")) == 1
    # A second pass finds nothing more to do.
    again = services.purge.run(services.db)
    assert (again.segments_erased, again.keys_destroyed) == (0, 0)


def test_a_crash_between_deleting_objects_and_writing_tombstones_resumes(
    services: Services, world: World, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-r3").key
    end = clock.now() - timedelta(hours=3)
    segs = [segment_at(services, world, cam, end + timedelta(minutes=i))[0] for i in range(3)]
    clock.set(end + timedelta(days=32))

    real = services.purge.repo.replace_by_tombstones

    def crash(*args: object, **kwargs: object) -> list[Segment]:
        raise RuntimeError("power cut")

    monkeypatch.setattr(services.purge.repo, "replace_by_tombstones", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        services.purge.run(services.db)
    # Objects gone, rows still there but never served again.
    assert not any(services.storage.exists(s.object_key) for s in segs)
    with services.db.transaction() as s:
        states = {r.state for r in s.scalars(select(Segment).where(Segment.id.in_([g.id for g in segs])))}
        assert states == {"purging"}
        assert s.scalars(select(PurgeRun.outcome)).all() == ["failed"]
    with services.db.transaction() as s:
        listed = services.footage.repo.registered(
            s, uuid.UUID(world.site_a), camera_ids=None, start=None, end=None, after=None, limit=10
        )
    assert listed == []

    monkeypatch.setattr(services.purge.repo, "replace_by_tombstones", real)
    report = services.purge.run(services.db)
    assert report.segments_erased == 3
    assert count(services, Segment) == 0
    assert count(services, SegmentTombstone) == 3
    assert len(actions(services, "retention:segment:erase")) == 3


def test_the_safety_threshold_stops_a_mass_deletion_unless_forced(
    services: Services, world: World, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-r4").key
    end = clock.now() - timedelta(hours=4)
    for i in range(4):
        segment_at(services, world, cam, end + timedelta(minutes=i))
    # The clock jumps a year ahead: everything looks expired.
    clock.set(end + timedelta(days=365))
    monkeypatch.setattr(purge_module, "MIN_SEGMENTS_FOR_FRACTION", 2)

    dry = services.purge.run(services.db, dry_run=True)
    assert dry.outcome == "stopped"
    assert "CCTV_GOV_PURGE_MAX_FRACTION" in dry.reason

    stopped = services.purge.run(services.db)
    assert stopped.outcome == "stopped"
    assert stopped.segments_erased == 0
    assert count(services, Segment) == 4
    assert len(actions(services, "retention:purge:stop")) == 1

    services.purge.settings = services.settings.model_copy(update={"purge_max_segments": 3})
    monkeypatch.setattr(purge_module, "MIN_SEGMENTS_FOR_FRACTION", 10**9)
    capped = services.purge.run(services.db)
    assert capped.outcome == "stopped"
    assert "CCTV_GOV_PURGE_MAX_SEGMENTS" in capped.reason

    forced = services.purge.run(services.db, force=True)
    assert forced.outcome == "ok"
    assert forced.segments_erased == 4


def test_an_empty_database_erases_nothing(services: Services, world: World, clock: FixedClock) -> None:
    # Objects in the store with no rows (a fresh database, a restore gone wrong): the purge never lists the store.
    keys = [f"footage/{world.site_a}/{uuid.uuid4()}/2020/01/01/{uuid.uuid4()}.cgv" for _ in range(3)]
    for key in keys:
        services.storage.put(key, [b"ciphertext"])
    clock.set(clock.now() + timedelta(days=3650))
    report = services.purge.run(services.db)
    assert report.outcome == "ok"
    assert (report.segments_erased, report.keys_destroyed) == (0, 0)
    assert all(services.storage.exists(k) for k in keys)


def test_a_dry_run_changes_nothing(services: Services, world: World, clock: FixedClock) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-r5").key
    end = clock.now() - timedelta(hours=5)
    seg, _ = segment_at(services, world, cam, end)
    clock.set(end + timedelta(days=40))
    report = services.purge.run(services.db, dry_run=True)
    assert report.counts()["expired"] == 1
    assert report.segments_erased == 0
    assert services.storage.exists(seg.object_key)
    assert count(services, PurgeRun) == 0
    assert actions(services, "retention:segment:erase") == []
