"""``cctv-ingest run``: scan the camera folders, queue complete files in the spool, upload them.

One thread (the caller's) scans every ``scan_interval_seconds``, hands due spool rows to a pool of
``max_concurrent_uploads`` worker threads, and, in backfill mode (``--once``), registers uploaded
segments in batches. The spool is the only state that matters: the runner can be stopped (or killed) at
any instant and started again.

While the service or the store is down, scanning and queueing go on; uploads wait behind a circuit that
lets one probe through per backoff period (exponential, full jitter) and opens fully on the first success.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Collection, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cctv_ingest.backoff import Backoff, Circuit, Clock, Random, SystemClock, system_random
from cctv_ingest.client import ServiceClient, ServiceError
from cctv_ingest.config import AgentConfig, time_zone_problem
from cctv_ingest.progress import ProgressBar, Snapshot
from cctv_ingest.scanner import Scanner, to_rfc3339
from cctv_ingest.spool import PENDING, NewSegment, Row, Spool, State
from cctv_ingest.uploader import Outcome, Pipeline

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
"""Uploads registered per batch-complete call in backfill mode (the service takes up to 1,000)."""
_MAX_WAIT = 5.0
"""The main loop looks around at least this often, whatever it is waiting for."""


class AgentError(Exception):
    """The agent cannot run until a person changes something (the token, the grant, the site)."""


@dataclass(frozen=True, slots=True)
class Site:
    id: str
    slug: str
    timezone: str


@dataclass
class RunSummary:
    registered: int = 0
    registered_bytes: int = 0
    rejected_ids: list[int] = field(default_factory=list)
    rejected: list[Row] = field(default_factory=list)
    pending_files: int = 0
    pending_bytes: int = 0
    waiting_files: int = 0
    """Files seen that were not complete yet (backfill leaves them for the next run)."""
    stopped: bool = False
    """Stopped by a signal before the queue was empty."""
    gave_up: bool = False
    """--give-up-after ran out before the queue was empty."""

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected_ids or self.stopped or self.gave_up or self.pending_files else 0


class Runner:
    def __init__(
        self,
        config: AgentConfig,
        *,
        client: ServiceClient | None = None,
        clock: Clock | None = None,
        rand: Random | None = None,
        once: bool = False,
        give_up_after: float | None = None,
        progress: ProgressBar | None = None,
    ) -> None:
        self.config = config
        self.client = client or ServiceClient.from_config(config.service)
        self.clock: Clock = clock or SystemClock()
        self.rand: Random = rand or system_random
        self.once = once
        self.give_up_after = give_up_after
        self.progress = progress
        self.backoff = Backoff(config.retry_initial_seconds, config.retry_max_seconds)
        self.circuit = Circuit(self.backoff, self.clock, self.rand)
        cpus = max(
            1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        )
        self._cpu_slots = threading.BoundedSemaphore(cpus)
        self._workers = config.max_concurrent_uploads + cpus
        """While ``max_concurrent_uploads`` PUTs are in flight, one more file per CPU is hashed, prepared and
        MD5'd, so the agent's CPU work overlaps the network instead of alternating with it."""
        self._upload_slots = threading.BoundedSemaphore(config.max_concurrent_uploads)
        self.stop_event = threading.Event()
        """Set to make the workers abandon what they are doing (the spool stays consistent)."""
        self._wake = threading.Event()
        self._stats_lock = threading.Lock()
        self._partial: dict[int, int] = {}
        self.summary = RunSummary()

    def request_stop(self) -> None:
        """Stop soon: in-flight steps are abandoned at the next chunk or answer. Thread-safe."""
        self.stop_event.set()
        self._wake.set()
        self.client.abort_uploads()

    # -- the loop ----------------------------------------------------------------------------------------

    def run(self) -> RunSummary:
        spool = Spool.open(self.config.spool_path)
        try:
            return self._run(spool)
        finally:
            spool.close()

    def _run(self, spool: Spool) -> RunSummary:
        started = self.clock.time()
        deadline = None if self.give_up_after is None else started + self.give_up_after
        self._retry_rejected(spool)
        self._finish_deletions(spool)

        site: Site | None = None
        site_failures = 0
        next_site_try = started
        scanner: Scanner | None = None
        pipeline: Pipeline | None = None
        scans = 0
        next_scan = started
        batch_supported = True
        in_flight: dict[int, Future[Outcome]] = {}
        executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="cctv-ingest-worker")
        zone_name = self.config.timezone
        try:
            while not self.stop_event.is_set():
                self._wake.clear()  # before looking around: a worker finishing from here on wakes the wait
                now = self.clock.time()
                if site is None and now >= next_site_try:
                    site = self._resolve_site(spool)
                    if site is None:
                        site_failures += 1
                        next_site_try = now + self.backoff.delay(site_failures, self.rand)
                    else:
                        zone_name = self.config.timezone or site.timezone
                        pipeline = self._pipeline(spool, site)
                if scanner is None and zone_name is not None:
                    scanner = Scanner(
                        self.config.cameras,
                        ZoneInfo(zone_name),
                        settle_seconds=self.config.settle_seconds,
                        clock=self.clock,
                    )
                # Backfill scans twice, back to back (a file is complete once it held still between two
                # scans), then works through what it found.
                if scanner is not None and now >= next_scan and not (self.once and scans >= 2):
                    self._scan(scanner, spool, in_flight)
                    scans += 1
                    next_scan = now if self.once else now + self.config.scan_interval_seconds

                if self._reap(in_flight, spool) and self.once:
                    scans = 0  # a file changed under its upload: backfill looks again once it settles
                if pipeline is not None:
                    if not batch_supported:
                        pipeline.complete_inline = True
                    self._dispatch(pipeline, spool, in_flight, executor)
                    if self.once and not pipeline.complete_inline:
                        batch_supported = self._batch(pipeline, spool, in_flight)
                self._show_progress(spool)

                if self.once and scans >= 2 and not in_flight and spool.count(PENDING)[0] == 0:
                    break
                now = self.clock.time()
                if deadline is not None and now >= deadline:
                    self.summary.gave_up = True
                    logger.warning(
                        "giving up after %g s (--give-up-after); the rest stays queued", self.give_up_after
                    )
                    break
                wake_at = self._next_wake(spool, in_flight, pipeline, now, next_scan, scanner, scans)
                if site is None:
                    wake_at = min(wake_at, next_site_try)
                if deadline is not None:
                    wake_at = min(wake_at, deadline)
                self.clock.wait(self._wake, max(0.0, min(wake_at - now, _MAX_WAIT)))
        finally:
            stopping = self.stop_event.is_set()
            self.stop_event.set()  # workers abandon at the next chunk or answer
            executor.shutdown(wait=True, cancel_futures=True)
            self._reap(in_flight, spool, wait=True)
            if stopping and self.once:
                self.summary.stopped = True
            self._finish_summary(spool)
            if self.progress is not None:
                self.progress.finish(self._snapshot(spool))
        return self.summary

    # -- the site ----------------------------------------------------------------------------------------

    def _resolve_site(self, spool: Spool) -> Site | None:
        """The site's id and time zone from the service (and remembered in the spool for when the service
        is down at the next start). None while the service cannot be reached and nothing is remembered."""
        slug = self.config.site
        try:
            me = self.client.whoami()
            grants = me.get("grants")
            matching = [
                grant
                for grant in (grants if isinstance(grants, list) else [])
                if isinstance(grant, dict) and grant.get("site_slug") == slug
            ]
            matching.sort(key=lambda grant: grant.get("role") != "agent")
            if not matching or not isinstance(matching[0].get("site_id"), str):
                raise AgentError(
                    f"the service gives this agent no grant for its site {slug!r} (agent.site); "
                    "check the token and the site slug with `cctv-ingest whoami`"
                )
            site_id = str(matching[0]["site_id"])
            answer = self.client.site(site_id)
        except ServiceError as exc:
            if not exc.retryable:
                raise AgentError(f"the service refused to say which site this is: {exc}") from None
            cached = self._cached_site(spool)
            if cached is not None:
                logger.warning(
                    "the service is not reachable (%s); using the site remembered in the spool", exc
                )
                return cached
            logger.warning("the service is not reachable (%s); waiting for it to learn the site's id", exc)
            return None
        timezone = answer.get("timezone")
        if not isinstance(timezone, str) or time_zone_problem(timezone) is not None:
            if self.config.timezone is None:
                raise AgentError(
                    f"the site's time zone {timezone!r} is not known on this system; "
                    "install the tz database (tzdata) or set agent.timezone"
                )
            timezone = self.config.timezone
        site = Site(site_id, slug, timezone)
        spool.set_meta({"site_slug": slug, "site_id": site_id, "site_timezone": timezone})
        logger.info("site %s (id %s), file names read in %s", slug, site_id, self.config.timezone or timezone)
        return site

    def _cached_site(self, spool: Spool) -> Site | None:
        if spool.get_meta("site_slug") != self.config.site:
            return None
        site_id = spool.get_meta("site_id")
        timezone = spool.get_meta("site_timezone")
        if site_id is None or timezone is None or time_zone_problem(timezone) is not None:
            return None
        return Site(site_id, self.config.site, timezone)

    def _pipeline(self, spool: Spool, site: Site) -> Pipeline:
        return Pipeline(
            spool,
            self.client,
            site.id,
            delete_after_upload=self.config.delete_after_upload,
            sidecar_cameras={camera.id for camera in self.config.cameras if camera.sidecar},
            backoff=self.backoff,
            circuit=self.circuit,
            clock=self.clock,
            rand=self.rand,
            stop=self.stop_event,
            complete_inline=not self.once,
            on_bytes=self._on_bytes,
            upload_slots=self._upload_slots,
            cpu_slots=self._cpu_slots,
        )

    # -- steps of the loop -------------------------------------------------------------------------------

    def _retry_rejected(self, spool: Spool) -> None:
        """At start, give every rejected file whose file is still there another chance: its row is dropped
        and the scanner queues the file again with the current configuration. Rows whose file is gone stay,
        so ``status`` keeps showing footage that never reached the service."""
        retried = 0
        for row in spool.rejected_rows():
            try:
                os.lstat(row.path)
            except OSError:
                continue
            spool.forget(row.id)
            retried += 1
        if retried:
            logger.info("%d rejected file(s) will be tried again", retried)

    def _finish_deletions(self, spool: Spool) -> None:
        """Registered rows whose file was to be deleted but is not yet (a crash in between)."""
        if not self.config.delete_after_upload:
            return
        pipeline = Pipeline(
            spool,
            self.client,
            "",
            delete_after_upload=True,
            sidecar_cameras={camera.id for camera in self.config.cameras if camera.sidecar},
            backoff=self.backoff,
            circuit=self.circuit,
            clock=self.clock,
            rand=self.rand,
            stop=self.stop_event,
        )
        for row in spool.rows(
            "state = 'registered' AND (last_error_code IS NULL OR last_error_code != 'delete_skipped')"
        ):
            pipeline.after_registration(row)

    def _scan(self, scanner: Scanner, spool: Spool, in_flight: Collection[int]) -> None:
        result = scanner.scan(spool.is_known)
        now = self.clock.time()
        added = 0
        for segment in result.ready:
            row_id = spool.add(
                NewSegment(
                    path=str(segment.path),
                    camera=segment.camera,
                    start_utc=to_rfc3339(segment.start),
                    end_utc=to_rfc3339(segment.end),
                    container=segment.container,
                    codec=segment.codec,
                    size=segment.size,
                    mtime_ns=segment.mtime_ns,
                ),
                now,
                busy=in_flight,
            )
            if row_id is not None:
                added += 1
        for unusable in result.unusable:
            row_id = spool.add_rejected(
                str(unusable.path),
                unusable.camera,
                unusable.size,
                unusable.mtime_ns,
                unusable.code,
                unusable.message,
                now,
            )
            if row_id is not None:
                self.summary.rejected_ids.append(row_id)
                logger.warning("%s: not uploaded: %s", unusable.path, unusable.message)
        self.summary.waiting_files = result.waiting
        if added:
            logger.info("queued %d new segment file(s)", added)

    def _dispatch(
        self,
        pipeline: Pipeline,
        spool: Spool,
        in_flight: dict[int, Future[Outcome]],
        executor: ThreadPoolExecutor,
    ) -> None:
        free = self._workers - len(in_flight)
        allowance = self.circuit.allowance(len(in_flight))
        if allowance is not None:
            free = min(free, allowance)
        if free <= 0:
            return
        for row_id in spool.due(
            self.clock.time(), self._work_states(pipeline), exclude=in_flight, limit=free
        ):
            if allowance is not None:
                self.circuit.probe_started()
            in_flight[row_id] = executor.submit(self._work, pipeline, row_id)

    def _work_states(self, pipeline: Pipeline | None) -> tuple[State, ...]:
        states: tuple[State, ...] = (State.DISCOVERED, State.HASHED, State.PREPARED)
        if pipeline is None or pipeline.complete_inline:
            states += (State.UPLOADED,)
        return states

    def _work(self, pipeline: Pipeline, row_id: int) -> Outcome:
        try:
            return pipeline.process(row_id)
        except Exception:
            # A bug, or the spool's disk failing: log it, keep the other uploads going. The row keeps its
            # state and is tried again after a backoff.
            logger.exception("unexpected error while processing spool row %d", row_id)
            try:
                row = pipeline.spool.get(row_id)
                now = self.clock.time()
                delay = self.backoff.delay(row.attempts + 1, self.rand)
                pipeline.spool.defer(
                    row_id, "internal_error", "unexpected error; see the log", now + delay, now
                )
            except Exception:
                logger.exception("cannot record the error on spool row %d", row_id)
            self.circuit.probe_finished()
            return Outcome.DEFERRED
        finally:
            self._wake.set()

    def _reap(self, in_flight: dict[int, Future[Outcome]], spool: Spool, *, wait: bool = False) -> bool:
        """Collect finished workers; True when one of them dropped its row to queue the file again."""
        requeued = False
        for row_id, future in list(in_flight.items()):
            if not (future.done() or wait):
                continue
            del in_flight[row_id]
            if future.cancelled():
                continue
            try:
                outcome = future.result()
            except Exception:  # _work catches everything; this is belt and braces
                logger.exception("worker for spool row %d failed", row_id)
                continue
            self._count(spool, row_id, outcome)
            requeued = requeued or outcome is Outcome.REQUEUED
        return requeued

    def _count(self, spool: Spool, row_id: int, outcome: Outcome) -> None:
        if outcome is Outcome.REGISTERED:
            row = spool.find(row_id)
            self.summary.registered += 1
            self.summary.registered_bytes += row.size if row is not None else 0
        elif outcome is Outcome.REJECTED:
            self.summary.rejected_ids.append(row_id)

    def _batch(self, pipeline: Pipeline, spool: Spool, in_flight: Collection[int]) -> bool:
        """Backfill: complete uploaded rows in batches, once BATCH_SIZE are waiting or the workers are idle.
        Returns False when the service has no batch endpoint (the caller completes one by one instead)."""
        if self.circuit.allowance(0) == 0:
            return True
        due = spool.due(self.clock.time(), [State.UPLOADED], exclude=in_flight, limit=BATCH_SIZE)
        if not due or (len(due) < BATCH_SIZE and in_flight):
            return True
        rows = [row for row in (spool.find(row_id) for row_id in due) if row is not None]
        try:
            outcomes = pipeline.complete_batch(rows)
        except ServiceError as exc:
            if exc.status in (404, 405):
                logger.warning(
                    "the service has no batch-complete (%s); completing uploads one by one", exc.code
                )
                return False
            return True
        for row_id, outcome in outcomes.items():
            self._count(spool, row_id, outcome)
        return True

    def _next_wake(
        self,
        spool: Spool,
        in_flight: Collection[int],
        pipeline: Pipeline | None,
        now: float,
        next_scan: float,
        scanner: Scanner | None,
        scans: int,
    ) -> float:
        """When the loop has something to do next (workers finishing wake it early)."""
        candidates = [now + _MAX_WAIT]
        if scanner is not None and not (self.once and scans >= 2):
            candidates.append(next_scan)
        reopens = self.circuit.reopens_at()
        if reopens is not None:
            candidates.append(reopens if not in_flight else now + _MAX_WAIT)
        allowance = self.circuit.allowance(len(in_flight))
        can_start = pipeline is not None and len(in_flight) < self._workers
        if can_start and allowance != 0:
            due = spool.next_due_at(self._work_states(pipeline), exclude=in_flight)
            if due is not None:
                candidates.append(due)
            if self.once and pipeline is not None and not pipeline.complete_inline and not in_flight:
                uploaded = spool.next_due_at([State.UPLOADED], exclude=in_flight)
                if uploaded is not None:
                    candidates.append(uploaded)
        return min(candidates)

    # -- progress and the summary ------------------------------------------------------------------------

    def _on_bytes(self, row_id: int, count: int) -> None:
        with self._stats_lock:
            if count < 0:
                self._partial.pop(row_id, None)
            else:
                self._partial[row_id] = self._partial.get(row_id, 0) + count

    def _snapshot(self, spool: Spool) -> Snapshot:
        pending_files, pending_bytes = spool.count(PENDING)
        with self._stats_lock:
            partial = sum(self._partial.values())
        done = self.summary.registered
        done_bytes = self.summary.registered_bytes
        return Snapshot(
            files_done=done,
            files_total=done + pending_files,
            bytes_done=done_bytes + min(partial, pending_bytes),
            bytes_total=done_bytes + pending_bytes,
            rejected=len(self.summary.rejected_ids),
        )

    def _show_progress(self, spool: Spool) -> None:
        if self.progress is not None and self.progress.due():
            self.progress.update(self._snapshot(spool))

    def _finish_summary(self, spool: Spool) -> None:
        self.summary.pending_files, self.summary.pending_bytes = spool.count(PENDING)
        seen: set[int] = set()
        rows: list[Row] = []
        for row_id in self.summary.rejected_ids:
            if row_id in seen:
                continue
            seen.add(row_id)
            row = spool.find(row_id)
            if row is not None and row.state is State.REJECTED:
                rows.append(row)
        self.summary.rejected = rows


def describe(rows: Iterable[Row]) -> list[str]:
    """One line per rejected row: path, code and message."""
    return [f"{row.path}: {row.last_error_code}: {row.last_error}" for row in rows]
