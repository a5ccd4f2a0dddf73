"""On PostgreSQL, many writers append at once, nobody waits on a log-wide lock, and the log never forks."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from cctv_gov.audit.actions import AuditAction
from cctv_gov.audit.verifier import verify_log
from cctv_gov.authz import SYSTEM_ACTOR
from cctv_gov.config import Settings
from cctv_gov.container import Services
from cctv_gov.kit.jobs import JobRunner


@pytest.fixture
def db_url(postgres_db_url: str) -> str:
    return postgres_db_url


@pytest.fixture
def runners(services: Services) -> Iterator[list[JobRunner]]:
    """Two job runners, as two service processes would have, both running the sequencer on a tight loop."""
    fast = services.settings.model_copy(update={"sequencer_interval_seconds": 0.01})
    services.settings = fast
    started = [JobRunner(services.db, services.jobs(), worker_id=f"w{i}") for i in range(2)]
    for runner in started:
        runner.start()
    yield started
    for runner in started:
        runner.stop()


def _record(services: Services, n: int) -> None:
    for i in range(n):
        with services.db.transaction() as s:
            services.audit.record(
                s,
                SYSTEM_ACTOR,
                AuditAction.PRINCIPAL_READ,
                target_type="principal",
                target_id=uuid.uuid4(),
                purpose=f"writer {threading.get_ident()} #{i}",
            )


def test_parallel_writers_and_two_sequencers_leave_one_gapless_chain(
    settings: Settings, services: Services, runners: list[JobRunner]
) -> None:
    writers = [threading.Thread(target=_record, args=(services, 60)) for _ in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    assert not any(w.is_alive() for w in writers)
    for runner in runners:
        runner.stop()
    with services.db.transaction() as s:
        services.sequencer.integrate_all(s)
    with services.db.transaction() as s:
        report = verify_log(s, origin=services.keys.signer.name, verifiers=services.keys.verifiers)
        indexes = [r[0] for r in s.execute(text("SELECT leaf_index FROM audit_events ORDER BY leaf_index"))]
        checkpoints = s.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one()
    assert report.ok, report.problems
    assert report.events == 480
    assert indexes == list(range(480)), "leaf indexes must run 0..n-1 with no gap or repeat"
    assert checkpoints > 1, "the sequencers should have integrated while the writers were still writing"


def test_a_writer_holding_its_transaction_open_does_not_block_others(services: Services) -> None:
    """No request waits on a log-wide lock: a slow transaction that appended an event does not stop another
    request from appending and committing, nor the sequencer from integrating the committed one."""
    appended = threading.Event()
    release = threading.Event()

    def slow_request() -> None:
        with services.db.transaction() as s:
            services.audit.record(s, SYSTEM_ACTOR, AuditAction.PRINCIPAL_READ, target_type="principal")
            appended.set()
            release.wait(20)

    slow = threading.Thread(target=slow_request)
    slow.start()
    try:
        assert appended.wait(10)
        done = threading.Event()

        def fast_request() -> None:
            _record(services, 1)
            with services.db.transaction() as s:
                services.sequencer.integrate(s)
            done.set()

        fast = threading.Thread(target=fast_request)
        fast.start()
        assert done.wait(10), "a second writer (or the sequencer) waited on the first writer's transaction"
    finally:
        release.set()
        slow.join(10)
    with services.db.transaction() as s:
        assert services.sequencer.integrate_all(s) == 1  # the slow one, once it committed
        head = services.audit.latest_checkpoint(s)
    assert head.tree_size == 2
