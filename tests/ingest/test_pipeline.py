"""The protocol's error table, step by step, against a scripted client: which answers reject a file, which
retry it (and when: backoff with the injected random source and clock), and which hold other uploads back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from cctv_ingest.backoff import Backoff, Circuit
from cctv_ingest.client import ServiceClient, ServiceError
from cctv_ingest.spool import NewSegment, Row, Spool, State
from cctv_ingest.uploader import Outcome, Pipeline

from .test_backoff import FakeClock

NOW = 1_780_000_000.0


class ScriptedClient:
    """Answers prepare with the scripted errors, in order; every other call is a test failure."""

    def __init__(self, *errors: ServiceError) -> None:
        self.errors = list(errors)
        self.prepares: list[dict[str, Any]] = []

    def prepare_upload(self, site_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self.prepares.append(body)
        raise self.errors.pop(0)


def error(
    status: int | None, code: str, *, retryable: bool | None = None, retry_after: float | None = None
) -> ServiceError:
    if retryable is None:
        retryable = status is None or status >= 500 or status == 429
    return ServiceError(status, code, f"{code} happened", "req-1", retryable, retry_after=retry_after)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool.open(tmp_path / "spool.sqlite3") as spool:
        yield spool


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "cam-01_20250106-100000.mp4"
    path.write_bytes(b"frames" * 100)
    return path


def make(spool: Spool, client: ScriptedClient, rand: float = 0.5) -> tuple[Pipeline, FakeClock, Circuit]:
    clock = FakeClock(NOW)
    backoff = Backoff(initial=1.0, maximum=60.0)
    circuit = Circuit(backoff, clock, lambda: rand)
    pipeline = Pipeline(
        spool,
        cast(ServiceClient, client),
        "site-1",
        delete_after_upload=False,
        sidecar_cameras=(),
        backoff=backoff,
        circuit=circuit,
        clock=clock,
        rand=lambda: rand,
        stop=threading.Event(),
    )
    return pipeline, clock, circuit


def queue(spool: Spool, video: Path) -> int:
    info = video.stat()
    row_id = spool.add(
        NewSegment(
            str(video),
            "cam-01",
            "2025-01-06T09:00:00Z",
            "2025-01-06T09:01:00Z",
            "mp4",
            None,
            info.st_size,
            info.st_mtime_ns,
        ),
        NOW,
    )
    assert row_id is not None
    return row_id


def run(pipeline: Pipeline, spool: Spool, row_id: int) -> tuple[Outcome, Row]:
    return pipeline.process(row_id), spool.get(row_id)


def test_the_service_down_backs_off_exponentially_with_jitter_and_opens_the_circuit(
    spool: Spool, video: Path
) -> None:
    client = ScriptedClient(
        error(503, "unavailable"), error(None, "connection_error"), error(502, "bad_gateway")
    )
    pipeline, clock, circuit = make(spool, client, rand=0.5)
    row_id = queue(spool, video)

    waits = []
    for _ in range(3):
        outcome, row = run(pipeline, spool, row_id)
        assert outcome is Outcome.DEFERRED
        assert row.state is State.HASHED  # hashing needed no service; the row keeps its state
        waits.append(row.next_attempt_at - clock.now)
        clock.now = row.next_attempt_at

    assert waits == [0.5, 1.0, 2.0]  # half (the jitter) of 1, 2, 4
    assert row.attempts == 3
    assert (row.last_error_code, row.last_error) == (
        "bad_gateway",
        "bad_gateway: bad_gateway happened (HTTP 502, request id req-1)",
    )
    assert circuit.failures == 3
    assert circuit.reopens_at() == row.next_attempt_at


def test_retry_after_is_honoured(spool: Spool, video: Path) -> None:
    client = ScriptedClient(error(429, "rate_limited", retry_after=30))
    pipeline, _, circuit = make(spool, client, rand=0.1)
    row_id = queue(spool, video)

    _, row = run(pipeline, spool, row_id)

    assert row.next_attempt_at == NOW + 30
    assert circuit.reopens_at() == NOW + 30


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "camera_not_found"),
        (409, "camera_disabled"),
        (403, "camera_other_site"),
        (422, "invalid_time_range"),
        (422, "segment_too_long"),
        (422, "past_retention"),
        (409, "segment_overlap"),
        (422, "invalid_input"),
        (422, "segment_too_large"),
    ],
)
def test_refusals_about_the_file_reject_it_and_keep_the_service_open(
    spool: Spool, video: Path, status: int, code: str
) -> None:
    pipeline, _, circuit = make(spool, ScriptedClient(error(status, code)))
    row_id = queue(spool, video)

    outcome, row = run(pipeline, spool, row_id)

    assert outcome is Outcome.REJECTED
    assert (row.state, row.last_error_code, row.last_error) == (State.REJECTED, code, f"{code} happened")
    assert video.exists()
    assert circuit.allowance(0) is None  # the service answered: other uploads go on


@pytest.mark.parametrize("code", ["start_in_future", "time_in_future"])
def test_start_in_future_waits_without_holding_others_back(spool: Spool, video: Path, code: str) -> None:
    pipeline, _, circuit = make(spool, ScriptedClient(error(422, code)))
    row_id = queue(spool, video)

    outcome, row = run(pipeline, spool, row_id)

    assert outcome is Outcome.DEFERRED
    assert (row.state, row.attempts, row.next_attempt_at) == (State.HASHED, 1, NOW + 0.5)
    assert circuit.allowance(0) is None


@pytest.mark.parametrize(
    ("status", "code"), [(401, "invalid_token"), (403, "forbidden"), (400, "bad_request")]
)
def test_errors_that_are_not_about_the_file_hold_everything_back_but_reject_nothing(
    spool: Spool, video: Path, status: int, code: str
) -> None:
    pipeline, _, circuit = make(spool, ScriptedClient(error(status, code)))
    row_id = queue(spool, video)

    outcome, row = run(pipeline, spool, row_id)

    assert outcome is Outcome.DEFERRED
    assert row.state is State.HASHED
    assert circuit.allowance(0) == 0


def test_the_prepare_request_says_what_the_file_is(spool: Spool, video: Path) -> None:
    client = ScriptedClient(error(503, "unavailable"))
    pipeline, _, _ = make(spool, client)
    row_id = queue(spool, video)

    run(pipeline, spool, row_id)

    (body,) = client.prepares
    assert body == {
        "camera": "cam-01",
        "start": "2025-01-06T09:00:00Z",
        "end": "2025-01-06T09:01:00Z",
        "size": 600,
        "sha256": spool.get(row_id).sha256,
        "container": "mp4",
    }


def test_a_missing_file_is_rejected_and_a_stop_leaves_the_row_alone(spool: Spool, video: Path) -> None:
    pipeline, _, _ = make(spool, ScriptedClient())
    row_id = queue(spool, video)
    pipeline.stop.set()

    assert run(pipeline, spool, row_id) == (Outcome.STOPPED, spool.get(row_id))
    assert spool.get(row_id).state is State.DISCOVERED

    pipeline.stop.clear()
    video.unlink()
    outcome, row = run(pipeline, spool, row_id)
    assert outcome is Outcome.REJECTED
    assert row.last_error_code == "file_missing"
