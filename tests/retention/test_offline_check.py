"""The recipients' own checker (the script printed in docs/recipients.md) accepts a real erasure certificate and
approval from the service, and refuses a forged one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from cctv_gov.container import Services
from cctv_gov.kit.clock import FixedClock
from tests.conftest import World
from tests.fixtures import footage

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipients.md"


def checker(tmp_path: Path) -> Path:
    script = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert script is not None
    path = tmp_path / "cctv_verify.py"
    path.write_text(script.group(1))
    return path


def run(script: Path, vkey: str, record: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), "--vkey", vkey, "--record", str(record)], capture_output=True, text=True
    )


def test_the_documented_checker_verifies_a_certificate_offline(
    tmp_path: Path, services: Services, world: World, clock: FixedClock
) -> None:
    cam = footage.add_camera(services, world.site_a, "cam-o1")
    end = clock.now() - timedelta(hours=1)
    seg = footage.register(services, world.site_a, cam.key, os.urandom(1000), end - timedelta(minutes=1), end)
    day_over = datetime.combine(seg.key_day + timedelta(days=1), time(), tzinfo=UTC)
    clock.set(day_over + timedelta(days=31, hours=2))
    services.purge.run(services.db)
    with services.db.transaction() as s:
        services.sequencer.integrate_all(s)
    clock.advance(timedelta(days=1))
    with services.db.transaction() as s:
        cert = services.certificates.certificate(
            s, uuid.UUID(world.site_a), (day_over + timedelta(days=31)).date()
        )
    record = tmp_path / "certificate.txt"
    record.write_text(cert.note)
    script = checker(tmp_path)
    vkey = services.keys.signer.vkey

    ok = run(script, vkey, record)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "erasure certificate OK" in ok.stdout
    assert seg.sha256.hex() in ok.stdout
    assert "1 day keys destroyed" in ok.stdout

    record.write_text(cert.note.replace(seg.sha256.hex(), "f" * 64))
    forged = run(script, vkey, record)
    assert forged.returncode != 0
    assert "FAILED" in forged.stderr


def test_the_documented_checker_verifies_a_written_approval(
    tmp_path: Path, services: Services, world: World, clock: FixedClock
) -> None:
    from cctv_gov.authz import Actor, Grant, Role
    from cctv_gov.holds.schemas import HoldCreate

    cam = footage.add_camera(services, world.site_a, "cam-o2")
    site = uuid.UUID(world.site_a)
    gm = Actor(
        uuid.UUID(world.principals["general_manager@a"]),
        "person",
        "Gus",
        (Grant(uuid.uuid4(), Role.GENERAL_MANAGER, site),),
    )
    now = clock.now()
    with services.db.transaction() as s:
        hold = services.holds.propose(
            s,
            gm,
            site,
            HoldCreate(
                camera_ids=[cam.id],
                start=now - timedelta(hours=2),
                end=now - timedelta(hours=1),
                reason="The police asked for the footage of the break-in",
                incident_ref="POL-77",
            ),
        )
        decided = services.holds.decide(
            s, gm, site, hold.hold.id, True, "I approve keeping it for the police, POL-77."
        )
    record = tmp_path / "approval.txt"
    record.write_text(decided.approvals[0].note)
    done = run(checker(tmp_path), services.keys.signer.vkey, record)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "written approval OK: approve by Gus" in done.stdout
    assert "POL-77" in done.stdout
