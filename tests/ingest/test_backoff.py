"""Backoff with full jitter and the circuit that holds uploads back: driven by a fake clock, no sleeping."""

from __future__ import annotations

import threading

import pytest
from cctv_ingest.backoff import Backoff, Circuit


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def wait(self, event: threading.Event, timeout: float) -> bool:
        self.waits.append(timeout)
        if not event.is_set():
            self.now += timeout
        return event.is_set()


def fixed(value: float) -> float:
    return value


def test_the_ceiling_doubles_from_initial_up_to_the_cap() -> None:
    backoff = Backoff(initial=1.0, maximum=300.0)

    assert [backoff.ceiling(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff.ceiling(0) == 0
    assert backoff.ceiling(10_000) == 300  # no overflow however long the outage


@pytest.mark.parametrize("failures", [1, 2, 5, 9, 10, 50])
def test_full_jitter_stays_between_zero_and_the_ceiling(failures: int) -> None:
    backoff = Backoff(initial=0.5, maximum=60.0)
    ceiling = backoff.ceiling(failures)

    assert backoff.delay(failures, lambda: 0.0) == 0.0
    assert backoff.delay(failures, lambda: 0.5) == pytest.approx(ceiling / 2)
    assert backoff.delay(failures, lambda: 0.999999) == pytest.approx(ceiling, rel=1e-5)
    assert backoff.delay(failures, lambda: 0.999999) <= ceiling


def test_jitter_spreads_retries_out() -> None:
    backoff = Backoff(initial=1.0, maximum=300.0)
    values = iter([0.1, 0.9, 0.4])

    delays = [backoff.delay(4, lambda: next(values)) for _ in range(3)]

    assert delays == pytest.approx([0.8, 7.2, 3.2])


def test_retry_after_is_a_floor_capped_at_the_maximum() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0)

    assert backoff.delay(1, lambda: 0.0, retry_after=7) == 7
    assert backoff.delay(6, lambda: 0.99, retry_after=7) == pytest.approx(0.99 * 30)
    assert backoff.delay(1, lambda: 0.0, retry_after=3600) == 30


def test_backoff_needs_sane_bounds() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=0, maximum=1)
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=5, maximum=1)


def test_the_circuit_opens_on_failure_and_lets_one_probe_through_later() -> None:
    clock = FakeClock()
    circuit = Circuit(Backoff(1.0, 300.0), clock, lambda: 0.5)

    assert circuit.allowance(0) is None  # closed: no limit
    reopens = circuit.failure()
    assert reopens == clock.now + 0.5
    assert circuit.allowance(0) == 0  # open
    clock.now = reopens
    assert circuit.allowance(0) == 1  # half-open: one probe
    assert circuit.allowance(1) == 0  # not while something is still in flight
    circuit.probe_started()
    assert circuit.allowance(0) == 0  # the probe is out

    circuit.failure()  # the probe failed: open again, for longer
    assert circuit.reopens_at() == clock.now + 1.0
    assert circuit.failures == 2

    clock.now += 1.0
    circuit.probe_started()
    assert circuit.success() is True  # it closed an open circuit
    assert circuit.allowance(0) is None
    assert circuit.reopens_at() is None
    assert circuit.success() is False


def test_a_probe_that_tells_nothing_frees_the_next_probe() -> None:
    clock = FakeClock()
    circuit = Circuit(Backoff(1.0, 300.0), clock, lambda: 0.0)
    circuit.failure()
    circuit.probe_started()
    assert circuit.allowance(0) == 0

    circuit.probe_finished()

    assert circuit.allowance(0) == 1


def test_the_circuit_honours_retry_after() -> None:
    clock = FakeClock()
    circuit = Circuit(Backoff(1.0, 300.0), clock, lambda: 0.0)

    assert circuit.failure(retry_after=42) == clock.now + 42


def test_consecutive_failures_grow_the_wait_until_the_cap() -> None:
    clock = FakeClock()
    circuit = Circuit(Backoff(2.0, 20.0), clock, lambda: 0.999)

    waits = []
    for _ in range(6):
        waits.append(circuit.failure() - clock.now)

    assert waits == pytest.approx([0.999 * c for c in (2, 4, 8, 16, 20, 20)])
