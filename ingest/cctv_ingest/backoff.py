"""Time, waiting and retrying: exponential backoff with full jitter, and the circuit that holds uploads
back while the service or the store is down.

The clock and the random source are passed in, so tests drive them without sleeping.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Random = Callable[[], float]
"""A source of floats in [0, 1), like random.random."""


class Clock(Protocol):
    """Wall-clock time (seconds since the epoch) and a way to wait for an event with a timeout."""

    def time(self) -> float: ...

    def wait(self, event: threading.Event, timeout: float) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds pass; True if the event is set."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, timeout: float) -> bool:
        return event.wait(max(0.0, timeout))


def system_random() -> float:
    # Jitter spreads retries out; it protects nothing, so the non-cryptographic generator is right.
    return random.random()  # noqa: S311


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter (a uniformly random wait between 0 and the ceiling).

    The ceiling for the n-th consecutive failure is ``initial * 2**(n-1)``, capped at ``maximum``.
    """

    initial: float
    maximum: float

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")

    def ceiling(self, failures: int) -> float:
        if failures < 1:
            return 0.0
        # 2**1100 overflows a float; anything past 2**64 is far beyond any maximum anyway.
        return min(self.maximum, self.initial * 2.0 ** min(failures - 1, 64))

    def delay(self, failures: int, rand: Random, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row.

        A ``Retry-After`` from the server is honoured as a floor, up to ``maximum``.
        """
        wait = rand() * self.ceiling(failures)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.maximum))
        return wait


class Circuit:
    """Holds uploads back while the service or the store is failing, so a dead service sees one probe per
    backoff period instead of one call per queued file.

    Closed: uploads flow. After a failure it opens until a jittered backoff has passed, then lets one
    probe through (half-open); the first success closes it again. Thread-safe.
    """

    def __init__(self, backoff: Backoff, clock: Clock, rand: Random) -> None:
        self._backoff = backoff
        self._clock = clock
        self._rand = rand
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def failure(self, retry_after: float | None = None) -> float:
        """Record a failure; returns when the next probe may go."""
        with self._lock:
            self._failures += 1
            self._probing = False
            self._open_until = self._clock.time() + self._backoff.delay(
                self._failures, self._rand, retry_after
            )
            return self._open_until

    def success(self) -> bool:
        """Record a success; True when this closed an open circuit (the service is back)."""
        with self._lock:
            recovered = self._failures > 0
            self._failures = 0
            self._open_until = 0.0
            self._probing = False
            return recovered

    def allowance(self, in_flight: int) -> int | None:
        """How many more uploads may start now: None for no limit (closed), else 0 or 1."""
        with self._lock:
            if self._failures == 0:
                return None
            if self._clock.time() < self._open_until or self._probing or in_flight > 0:
                return 0
            return 1

    def probe_started(self) -> None:
        with self._lock:
            if self._failures:
                self._probing = True

    def probe_finished(self) -> None:
        """The probe ended without telling success or failure (it was stopped, or the file was at fault)."""
        with self._lock:
            self._probing = False

    def reopens_at(self) -> float | None:
        """When an open circuit lets its next probe through, or None when it is closed."""
        with self._lock:
            return self._open_until if self._failures else None
