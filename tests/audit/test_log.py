"""The audit log: events become leaves, checkpoints are signed, proofs verify, and tampering is detected."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.verifier import VerifyReport, verify_log
from cctv_gov.authz import SYSTEM_ACTOR
from cctv_gov.config import Settings
from cctv_gov.container import Services, build_services
from cctv_gov.kit import merkle
from cctv_gov.kit.signed_note import (
    Checkpoint,
    Signer,
    Verifier,
    generate_private_key_pem,
    load_private_key,
    verify_note,
)
from tests.conftest import World


def populate(services: Services, n: int, *, batch: int = 7) -> None:
    """n events, integrated in batches so there are several checkpoints."""
    site = uuid.uuid4()
    for start in range(0, n, batch):
        with services.db.transaction() as s:
            for i in range(start, min(n, start + batch)):
                services.audit.record(
                    s,
                    SYSTEM_ACTOR,
                    AuditAction.PRINCIPAL_READ,
                    target_type="principal",
                    target_id=uuid.uuid4(),
                    site_id=site,
                    purpose=f"incident review {i}",
                    details={"n": i},
                )
        with services.db.transaction() as s:
            services.sequencer.integrate(s)


def verify(services: Services, witnessed: tuple[str, ...] = ()) -> VerifyReport:
    with services.db.transaction() as s:
        return verify_log(
            s, origin=services.keys.signer.name, verifiers=services.keys.verifiers, witnessed=witnessed
        )


def sql(services: Services, statement: str, **params: object) -> None:
    with services.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_events_are_sequenced_in_order_and_the_log_verifies(services: Services) -> None:
    populate(services, 40)
    report = verify(services)
    assert report.ok, report.problems
    assert report.events == 40
    assert report.checkpoints == 6  # 40 events in batches of 7
    assert report.unsequenced == 0
    with services.db.transaction() as s:
        head = services.audit.latest_checkpoint(s)
    assert head.tree_size == 40
    assert head.root_hash == report.root_hash


def test_leaves_carry_hashes_not_personal_data(services: Services) -> None:
    with services.db.transaction() as s:
        event = services.audit.record(
            s,
            SYSTEM_ACTOR,
            AuditAction.PRINCIPAL_READ,
            target_type="principal",
            purpose="Jane Doe asked for it",
        )
    assert b"Jane" not in event.entry
    assert event.purpose == "Jane Doe asked for it"
    assert event.leaf_hash == merkle.leaf_hash(event.entry)


def test_checkpoint_is_a_signed_note_that_verifies_with_the_published_key(
    client: TestClient, services: Services
) -> None:
    populate(services, 10)
    keys = client.get("/v1/audit/public-keys").json()
    note = client.get("/v1/audit/checkpoint").text
    verified = verify_note(note, [Verifier.from_vkey(keys["current"])])
    checkpoint = Checkpoint.parse(verified.text)
    assert checkpoint.origin == keys["origin"] == "test.cctv-gov/audit"
    assert checkpoint.size == 10
    # The same note must not verify under another key.
    other = Signer("test.cctv-gov/audit", load_private_key(generate_private_key_pem()))
    with pytest.raises(ValueError, match=r"(?i)signature|verified|known"):
        verify_note(note, [Verifier.from_vkey(other.vkey)])


def test_inclusion_and_consistency_proofs_from_the_api_verify(
    client: TestClient, services: Services, world: World
) -> None:
    populate(services, 23)
    token = world.auth("requester@a")
    note = client.get("/v1/audit/checkpoint").text
    vkey = client.get("/v1/audit/public-keys").json()["current"]
    head = Checkpoint.parse(verify_note(note, [Verifier.from_vkey(vkey)]).text)
    with services.db.transaction() as s:
        rows = s.execute(
            text("SELECT leaf_index, entry FROM audit_events WHERE leaf_index IS NOT NULL")
        ).all()
    entries = {int(i): bytes(e) for i, e in rows}
    for index in (0, 5, head.size - 1):
        r = client.get(f"/v1/audit/proofs/inclusion?leaf_index={index}&tree_size={head.size}", headers=token)
        assert r.status_code == 200, r.text
        proof = [base64.b64decode(h) for h in r.json()["hashes"]]
        merkle.verify_inclusion(merkle.leaf_hash(entries[index]), index, head.size, proof, head.root_hash)
    with services.db.transaction() as s:
        old = s.execute(text("SELECT tree_size, root_hash FROM audit_checkpoints ORDER BY tree_size")).first()
    assert old is not None
    r = client.get(f"/v1/audit/proofs/consistency?first={old[0]}&second={head.size}", headers=token)
    assert r.status_code == 200, r.text
    proof = [base64.b64decode(h) for h in r.json()["hashes"]]
    merkle.verify_consistency(old[0], head.size, proof, bytes(old[1]), head.root_hash)


def test_proof_requests_outside_the_tree_are_refused(
    client: TestClient, services: Services, world: World
) -> None:
    populate(services, 5)
    with services.db.transaction() as s:
        size = services.audit.latest_checkpoint(s).tree_size
    token = world.auth("auditor@a")
    beyond = client.get(f"/v1/audit/proofs/inclusion?leaf_index=0&tree_size={size + 1}", headers=token)
    assert (beyond.status_code, beyond.json()["error"]["code"]) == (409, "tree_size_unknown")
    index = client.get(f"/v1/audit/proofs/inclusion?leaf_index={size}&tree_size={size}", headers=token)
    assert (index.status_code, index.json()["error"]["code"]) == (422, "leaf_index_out_of_range")
    negative = client.get("/v1/audit/proofs/inclusion?leaf_index=-1", headers=token)
    assert negative.status_code == 422


TAMPERS: dict[str, Callable[[Services], None]] = {
    "edit a column": lambda sv: sql(
        sv, "UPDATE audit_events SET action = 'site:site:create' WHERE leaf_index = 11"
    ),
    "edit the purpose text": lambda sv: sql(
        sv, "UPDATE audit_events SET purpose = 'other' WHERE leaf_index = 3"
    ),
    "edit an entry": lambda sv: sql(
        sv, "UPDATE audit_events SET entry = :e WHERE leaf_index = 4", e=b'{"v":1,"forged":true}'
    ),
    "edit an entry and its leaf hash": lambda sv: sql(
        sv,
        "UPDATE audit_events SET entry = :e, leaf_hash = :h WHERE leaf_index = 4",
        e=b'{"v":1,"forged":true}',
        h=merkle.leaf_hash(b'{"v":1,"forged":true}'),
    ),
    "replace an entry with bytes that are not JSON": lambda sv: sql(
        sv, "UPDATE audit_events SET entry = :e WHERE leaf_index = 6", e=b"\xff\xfe not json"
    ),
    "delete a row": lambda sv: sql(sv, "DELETE FROM audit_events WHERE leaf_index = 7"),
    "insert a row": lambda sv: _insert_copy(sv, leaf_index=30),
    "insert a row after the head": lambda sv: _insert_copy(sv, leaf_index=30, shift=False),
    "reorder two rows": lambda sv: _swap(sv, 2, 9),
    "edit a checkpoint root": lambda sv: sql(
        sv, "UPDATE audit_checkpoints SET root_hash = :r WHERE tree_size = 14", r=b"\x00" * 32
    ),
    "forge a checkpoint note": lambda sv: sql(
        sv, "UPDATE audit_checkpoints SET note = replace(note, '14\n', '15\n') WHERE tree_size = 14"
    ),
}


def _insert_copy(services: Services, *, leaf_index: int, shift: bool = True) -> None:
    """Insert a new event row. With ``shift``, make room in the middle by moving later leaves up by one."""
    with services.db.engine.begin() as conn:
        if shift:
            conn.execute(
                text("UPDATE audit_events SET leaf_index = leaf_index + 1000 WHERE leaf_index >= 10")
            )
            conn.execute(
                text("UPDATE audit_events SET leaf_index = leaf_index - 999 WHERE leaf_index >= 1010")
            )
            leaf_index = 10
        conn.execute(
            text(
                "INSERT INTO audit_events (event_id, leaf_index, occurred_at, actor_id, actor_kind, actor_role,"
                " action, target_type, target_id, site_id, purpose, request_id, outcome, details, entry, leaf_hash)"
                " SELECT :eid, :idx, occurred_at, actor_id, actor_kind, actor_role, action, target_type, target_id,"
                " site_id, purpose, request_id, outcome, details, entry, leaf_hash FROM audit_events"
                " WHERE leaf_index = 0"
            ),
            {"eid": str(uuid.uuid4()) if not services.db.is_postgres else uuid.uuid4(), "idx": leaf_index},
        )


def _swap(services: Services, a: int, b: int) -> None:
    with services.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET leaf_index = -1 WHERE leaf_index = :a"), {"a": a})
        conn.execute(text("UPDATE audit_events SET leaf_index = :a WHERE leaf_index = :b"), {"a": a, "b": b})
        conn.execute(text("UPDATE audit_events SET leaf_index = :b WHERE leaf_index = -1"), {"b": b})


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_direct_database_tampering_is_detected(services: Services, tamper: str) -> None:
    populate(services, 30)
    assert verify(services).ok
    TAMPERS[tamper](services)
    report = verify(services)
    assert not report.ok, f"'{tamper}' was not detected"


def test_truncating_the_log_with_its_checkpoints_is_caught_by_a_witnessed_checkpoint(
    services: Services,
) -> None:
    populate(services, 30)
    with services.db.transaction() as s:
        kept = services.audit.latest_checkpoint(s).note  # e.g. published, or kept by an auditor
    sql(services, "DELETE FROM audit_events WHERE leaf_index >= 28")
    sql(services, "DELETE FROM audit_checkpoints WHERE tree_size > 28")
    assert verify(services).ok, "without an outside copy a clean truncation looks like a shorter log"
    report = verify(services, witnessed=(kept,))
    assert not report.ok
    assert any("covers 30 events" in p for p in report.problems)


def test_rotating_the_signing_key_keeps_older_checkpoints_verifiable(
    settings: Settings, services: Services, tmp_path: object
) -> None:
    populate(services, 10)
    old_vkey = services.keys.signer.vkey
    new_key = generate_private_key_pem().decode()
    rotated = settings.model_copy(update={"signing_key": __import__("pydantic").SecretStr(new_key)})
    after = build_services(rotated, clock=services.clock, db=services.db)
    assert after.keys.signer.vkey != old_vkey
    populate(after, 10)
    report = verify(after)
    assert not report.ok, "old checkpoints must not verify without the old key being pinned"
    pinned = rotated.model_copy(update={"audit_previous_vkeys": [old_vkey]})
    with_old = build_services(pinned, clock=services.clock, db=services.db)
    report = verify(with_old)
    assert report.ok, report.problems
    assert report.events == 20


def test_sequencing_refuses_to_extend_a_tree_that_disagrees_with_its_checkpoint(services: Services) -> None:
    populate(services, 8)
    sql(services, "UPDATE audit_tree_nodes SET hash = :h WHERE level = 3 AND idx = 0", h=b"\x01" * 32)
    with services.db.transaction() as s:
        services.audit.record(s, SYSTEM_ACTOR, AuditAction.PRINCIPAL_READ, target_type="principal")
    with (
        pytest.raises(RuntimeError, match="does not match the latest checkpoint"),
        services.db.transaction() as s,
    ):
        services.sequencer.integrate(s)


def test_an_events_proof_verifies_against_the_signed_checkpoint(
    client: TestClient, services: Services, world: World
) -> None:
    r = client.post(
        "/v1/agents", json={"site_id": world.site_a, "name": "nvr-9"}, headers=world.auth("admin@a")
    )
    assert r.status_code == 201
    events = client.get(
        f"/v1/audit/events?site_id={world.site_a}&limit=1000", headers=world.auth("auditor@a")
    )
    event_id = events.json()[-1]["event_id"]
    pending = client.get(f"/v1/audit/events/{event_id}/proof", headers=world.auth("auditor@a"))
    assert (pending.status_code, pending.json()["error"]["code"]) == (409, "event_not_sequenced")
    with services.db.transaction() as s:
        services.sequencer.integrate_all(s)
    body = client.get(f"/v1/audit/events/{event_id}/proof", headers=world.auth("auditor@a")).json()
    vkey = client.get("/v1/audit/public-keys").json()["current"]
    head = Checkpoint.parse(
        verify_note(client.get("/v1/audit/checkpoint").text, [Verifier.from_vkey(vkey)]).text
    )
    assert body["tree_size"] == head.size
    leaf = merkle.leaf_hash(body["event"]["entry"].encode())
    proof = [base64.b64decode(h) for h in body["hashes"]]
    merkle.verify_inclusion(leaf, body["leaf_index"], head.size, proof, head.root_hash)
    other = client.get(f"/v1/audit/events/{event_id}/proof", headers=world.auth("auditor@b"))
    assert other.status_code == 403


def test_every_kind_of_field_value_verifies_and_the_database_side_check_runs(services: Services) -> None:
    from cctv_gov.audit.repository import AuditRepository
    from cctv_gov.authz import Actor, Grant, Role

    person = Actor(
        principal_id=uuid.uuid4(),
        kind="person",
        name="x",
        grants=(Grant(uuid.uuid4(), Role.OPERATOR, None),),
        acting_role=Role.OPERATOR,
    )
    values: list[tuple[str | None, dict[str, object]]] = [
        (None, {}),
        ('Kia ora — café ☕ 🎥 \u2028 "quoted" \\ back', {"ok": True, "n": 0, "none": None}),
        ("line\nbreak\ttab\x01control", {"big": 2**53 - 1, "neg": -7, "s": "ü"}),
        ("", {"empty": ""}),
    ]
    with services.db.transaction() as s:
        for purpose, details in values:
            for actor in (SYSTEM_ACTOR, person):
                services.audit.record(
                    s,
                    actor,
                    AuditAction.PRINCIPAL_READ,
                    target_type="principal",
                    target_id="t-1",
                    site_id=uuid.uuid4(),
                    purpose=purpose,
                    details=details,
                )
    with services.db.transaction() as s:
        services.sequencer.integrate_all(s)
    report = verify(services)
    assert report.ok, report.problems
    assert report.events == 8
    repo = AuditRepository()
    with services.db.transaction() as s:
        if repo.supports_database_check(s):
            assert repo.entry_mismatches(s, 10) == [], (
                "the in-database comparison must agree with the entries"
            )


def test_details_outside_canonical_json_are_refused(services: Services) -> None:
    with services.db.transaction() as s:
        for bad in ({"n": 2**53}, {"f": 1.5}, {"nested": {"a": 1}}):
            with pytest.raises(ValueError, match="audit detail"):
                services.audit.record(
                    s, SYSTEM_ACTOR, AuditAction.PRINCIPAL_READ, target_type="x", details=bad
                )
