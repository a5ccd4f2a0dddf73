"""What the purge leaves as proof: signed daily erasure certificates, and the compliance report."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest

from cctv_gov.authz import SYSTEM_ACTOR
from cctv_gov.container import Services
from cctv_gov.errors import AppError
from cctv_gov.kit.clock import FixedClock
from cctv_gov.kit.signed_note import NoteError, Verifier, verify_note
from tests.conftest import World
from tests.fixtures import footage


def erase_one_day(services: Services, world: World, clock: FixedClock) -> tuple[object, datetime]:
    cam = footage.add_camera(services, world.site_a, "cam-e1")
    end = clock.now() - timedelta(hours=1)
    seg = footage.register(services, world.site_a, cam.key, os.urandom(2000), end - timedelta(minutes=1), end)
    day_over = datetime.combine(seg.key_day + timedelta(days=1), time(), tzinfo=UTC)
    purge_time = day_over + timedelta(days=31, seconds=services.settings.max_segment_seconds + 60)
    clock.set(purge_time)
    report = services.purge.run(services.db)
    assert (report.segments_erased, report.keys_destroyed) == (1, 1)
    return seg, purge_time


def test_a_days_erasure_certificate_is_signed_and_names_what_went(
    services: Services, world: World, clock: FixedClock
) -> None:
    seg, purge_time = erase_one_day(services, world, clock)
    site = uuid.UUID(world.site_a)
    clock.set(
        datetime.combine(purge_time.date() + timedelta(days=1), time(), tzinfo=UTC) + timedelta(hours=1)
    )
    with services.db.transaction() as s, pytest.raises(AppError) as waiting:
        services.certificates.certificate(s, site, purge_time.date())
    assert waiting.value.code == "not_yet_sequenced"
    with services.db.transaction() as s:
        services.sequencer.integrate_all(s)
    with services.db.transaction() as s:
        cert = services.certificates.certificate(s, site, purge_time.date())
        again = services.certificates.certificate(s, site, purge_time.date())
    assert cert.note == again.note  # the same records give the same signed bytes
    body = cert.body
    assert [x["sha256"] for x in body["segments"]] == [seg.sha256.hex()]  # type: ignore[attr-defined]
    assert body["day_keys_destroyed"] == [
        {"day": seg.key_day.isoformat(), "destroyed_at": purge_time.isoformat()}  # type: ignore[attr-defined]
    ]
    assert body["audit"]["events"] == 2
    checkpoint = body["audit"]["checkpoint"]
    assert checkpoint["tree_size"] > body["audit"]["last_leaf_index"]
    # Offline: the note verifies with the published key, and its text is the certificate.
    verifier = Verifier.from_vkey(services.keys.signer.vkey)
    assert json.loads(verify_note(cert.note, [verifier]).text) == body
    verify_note(checkpoint["note"], [verifier])  # the checkpoint it names is signed too
    forged = cert.note.replace(seg.sha256.hex(), "0" * 64)  # type: ignore[attr-defined]
    with pytest.raises(NoteError):
        verify_note(forged, [verifier])
    # A day that is not over yet has no certificate.
    with services.db.transaction() as s, pytest.raises(AppError) as early:
        services.certificates.certificate(s, site, clock.now().date())
    assert early.value.code == "day_not_over"


def test_the_compliance_report_shows_overdue_footage_holds_and_passes(
    services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-e2")
    site = uuid.UUID(world.site_a)
    end = clock.now() - timedelta(hours=1)
    footage.register(services, world.site_a, cam.key, os.urandom(2000), end - timedelta(minutes=1), end)
    with services.db.transaction() as s:
        fresh = services.compliance.report(s, SYSTEM_ACTOR, site)
    assert [c.overdue for c in fresh.cameras] == [False]
    assert fresh.purge_overdue  # no pass has run yet
    # The purge stops running: footage grows older than retention plus one interval.
    clock.set(end + timedelta(days=31, seconds=services.settings.purge_interval_seconds + 1))
    with services.db.transaction() as s:
        late = services.compliance.report(s, SYSTEM_ACTOR, site)
    assert [c.key for c in late.cameras if c.overdue] == ["cam-e2"]
    assert any("cam-e2" in line for line in late.overdue)
    services.purge.run(services.db)
    with services.db.transaction() as s:
        kept = services.compliance.report(s, SYSTEM_ACTOR, site)
    assert kept.overdue == []
    assert kept.cameras[0].age_seconds is None
    assert sum(kept.purged_per_day.values()) == 1
    assert kept.last_successful_pass is not None
    assert kept.last_successful_pass.segments_erased == 1
