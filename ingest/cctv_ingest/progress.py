"""A progress bar on stderr for backfills: files and bytes done of the total, rate and time left.

On a terminal it redraws one line in place (a few times a second); otherwise (a log file, the journal) it
writes a plain line now and then. Log lines are written above the bar, which is redrawn after them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, slots=True)
class Snapshot:
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    rejected: int = 0


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"  # pragma: no cover - the loop returns


def human_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def render(snapshot: Snapshot, elapsed: float, width: int = 24) -> str:
    """One line: ``[#####.....] 12/40 files  1.2 GB/4.0 GB  25.3 MB/s  ETA 1m52s``."""
    total = max(snapshot.bytes_total, 1)
    fraction = min(1.0, snapshot.bytes_done / total) if snapshot.bytes_total else 1.0
    if snapshot.files_total == 0:
        fraction = 1.0
    filled = int(fraction * width)
    bar = "#" * filled + "." * (width - filled)
    rate = snapshot.bytes_done / elapsed if elapsed > 0 else 0.0
    remaining = max(0, snapshot.bytes_total - snapshot.bytes_done)
    if remaining == 0:
        eta = "done" if snapshot.files_done >= snapshot.files_total else "ETA --"
    elif rate > 0:
        eta = f"ETA {human_duration(remaining / rate)}"
    else:
        eta = "ETA --"
    line = (
        f"[{bar}] {snapshot.files_done}/{snapshot.files_total} files  "
        f"{human_bytes(snapshot.bytes_done)}/{human_bytes(snapshot.bytes_total)}  "
        f"{human_bytes(rate)}/s  {eta}"
    )
    if snapshot.rejected:
        line += f"  {snapshot.rejected} rejected"
    return line


class ProgressBar:
    """Thread-safe; ``update`` is cheap to call often (it redraws at most every ``interval`` seconds)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool,
        interval: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.tty = tty
        self.interval = interval if interval is not None else (0.2 if tty else 10.0)
        self._monotonic = monotonic
        self._started = monotonic()
        self._last_draw = float("-inf")
        self._line = ""
        self._shown = False
        self.lock = threading.RLock()

    def due(self) -> bool:
        return self._monotonic() - self._last_draw >= self.interval

    def update(self, snapshot: Snapshot, *, force: bool = False) -> None:
        with self.lock:
            if not force and not self.due():
                return
            self._last_draw = self._monotonic()
            self._line = render(snapshot, self._last_draw - self._started)
            self._draw()

    def _draw(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + self._line)
            self._shown = True
        else:
            self.stream.write(self._line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Take the bar off the line (before something else is written to the stream)."""
        with self.lock:
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._shown = False

    def redraw(self) -> None:
        with self.lock:
            if self.tty and self._line:
                self._draw()

    def finish(self, snapshot: Snapshot) -> None:
        with self.lock:
            self.update(snapshot, force=True)
            if self.tty:
                self.stream.write("\n")
                self.stream.flush()
                self._shown = False
                self._line = ""


class ProgressLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes log records above the progress bar."""

    def __init__(self, bar: ProgressBar) -> None:
        super().__init__(bar.stream)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        with self.bar.lock:
            self.bar.clear()
            super().emit(record)
            self.bar.redraw()
