"""The agent end to end against a fake service and store that follow the protocol (tests/ingest/fake_ingest.py):
backfill, resuming after a crash at each step, outages, refusals and the protocol's error table."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cctv_ingest.backoff import Backoff, Circuit, SystemClock
from cctv_ingest.client import ServiceClient
from cctv_ingest.runner import AgentError, Runner
from cctv_ingest.scanner import to_rfc3339
from cctv_ingest.spool import PENDING, NewSegment
from cctv_ingest.uploader import Pipeline

from .conftest import TOKEN, write_token
from .fake_ingest import (
    DAY,
    SITE_ID,
    FakeIngest,
    Site,
    assert_registered_once,
    registered_by_hash,
    states,
    wait_for,
)

# -- backfill -------------------------------------------------------------------------------------------


def test_backfill_registers_every_file_once_in_a_batch(site: Site, fake: FakeIngest) -> None:
    files = [site.segment(minute, size) for minute, size in enumerate([0, 1, 65535, 65536, 65537, 200_007])]

    summary = site.run_once()

    assert (summary.exit_code, summary.registered, summary.rejected, summary.pending_files) == (0, 6, [], 0)
    assert summary.registered_bytes == sum(path.stat().st_size for path in files)
    assert_registered_once(fake, *files)
    assert set(states(site).values()) == {"registered"}
    assert len(fake.calls_to("POST", r"/v1/sites/.*/uploads/batch-complete")) == 1
    assert fake.calls_to("POST", r"/v1/sites/.*/uploads/[0-9a-f]+/complete") == []
    # Times went to the service in UTC; the first segment ends where the second starts.
    first = next(u for u in fake.uploads.values() if u.size == 0)
    assert (first.camera, first.start, first.end, first.container) == (
        "cam-01",
        "2025-01-06T09:00:00Z",
        "2025-01-06T09:01:00Z",
        "mp4",
    )


def test_uploads_to_the_service_endpoint_carry_the_token_and_a_length(site: Site, fake: FakeIngest) -> None:
    site.segment(0, 70_000)

    assert site.run_once().exit_code == 0

    (put,) = fake.calls_to("PUT", r"/v1/sites/.*/uploads/[0-9a-f]+/object")
    assert put.headers["Authorization"] == f"Bearer {TOKEN}"
    assert put.headers["Content-Length"] == str(put.body_size)
    assert "Transfer-Encoding" not in put.headers
    assert put.headers["Content-MD5"]


def test_presigned_store_urls_never_get_the_token(site: Site, fake: FakeIngest) -> None:
    fake.use_store = True
    files = [site.segment(minute, 100_000 + minute) for minute in range(3)]

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, *files)
    assert len(fake.store_calls) == 3
    for call in fake.store_calls:
        assert "Authorization" not in call.headers
        assert "X-Amz-Signature=fake" in call.path
        names = {name.lower() for name in call.headers}
        assert names == {"host", "content-md5", "content-type", "content-length"}
        assert call.headers["Content-Length"] == str(call.body_size)


def test_a_second_run_uploads_nothing(site: Site, fake: FakeIngest) -> None:
    site.segment(0)
    site.segment(1)
    assert site.run_once().exit_code == 0
    prepares = len(fake.calls_to("POST", r"/v1/sites/.*/uploads"))

    summary = site.run_once()

    assert (summary.exit_code, summary.registered) == (0, 0)
    assert len(fake.calls_to("POST", r"/v1/sites/.*/uploads")) == prepares


def test_sidecar_segments_send_their_codec_and_container(site: Site, fake: FakeIngest) -> None:
    segment = site.floor / "seg-0001.mkv"
    segment.write_bytes(b"matroska" * 100)
    (site.floor / "seg-0001.mkv.json").write_text(
        json.dumps({"start": "2025-01-06T09:00:00Z", "end": "2025-01-06T09:00:30.5Z", "codec": "hevc"})
    )

    assert site.run_once().exit_code == 0

    (upload,) = fake.registered()
    assert (upload.camera, upload.start, upload.end, upload.container, upload.codec) == (
        "cam-floor",
        "2025-01-06T09:00:00Z",
        "2025-01-06T09:00:30.500000Z",
        "mkv",
        "hevc",
    )


def test_delete_after_upload_removes_the_file_and_its_sidecar(site: Site, fake: FakeIngest) -> None:
    site.data["agent"]["delete_after_upload"] = True
    path = site.segment(0)
    kept_data = path.read_bytes()
    segment = site.floor / "seg-0001.mp4"
    segment.write_bytes(b"x" * 10)
    sidecar = site.floor / "seg-0001.mp4.json"
    sidecar.write_text(json.dumps({"start": "2025-01-06T09:00:00Z", "end": "2025-01-06T09:01:00Z"}))

    assert site.run_once().exit_code == 0

    assert not path.exists()
    assert not segment.exists()
    assert not sidecar.exists()
    assert set(states(site).values()) == {"deleted"}
    assert registered_by_hash(fake)[hashlib.sha256(kept_data).hexdigest()][0].plaintext() == kept_data


def test_files_are_kept_by_default(site: Site) -> None:
    path = site.segment(0)

    assert site.run_once().exit_code == 0

    assert path.exists()


def test_a_service_without_batch_complete_gets_one_call_per_upload(site: Site, fake: FakeIngest) -> None:
    fake.fail("POST", r"/v1/sites/.*/uploads/batch-complete", 404, "not_found")
    files = [site.segment(minute) for minute in range(3)]

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, *files)
    assert len(fake.calls_to("POST", r"/v1/sites/.*/uploads/[0-9a-f]+/complete")) == 3


def test_files_still_being_written_are_left_for_the_next_run(site: Site, fake: FakeIngest) -> None:
    site.data["agent"]["settle_seconds"] = 3600
    site.segment(0)
    fresh = site.cam / "cam-01_20250106-100100.mp4"
    fresh.write_bytes(b"recording...")  # modified just now

    summary = site.run_once()

    assert (summary.exit_code, summary.registered, summary.waiting_files) == (0, 1, 1)


# -- the daemon -----------------------------------------------------------------------------------------


def test_run_completes_one_by_one_and_stops_when_asked(site: Site, fake: FakeIngest) -> None:
    runner = Runner(site.config())
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        first = site.segment(0)
        wait_for(lambda: len(fake.registered()) == 1)
        second = site.segment(1)  # appears while the agent runs
        wait_for(lambda: len(fake.registered()) == 2)
    finally:
        runner.request_stop()
        thread.join(10)

    assert not thread.is_alive()
    assert_registered_once(fake, first, second)
    assert len(fake.calls_to("POST", r"/v1/sites/.*/uploads/[0-9a-f]+/complete")) == 2
    assert fake.calls_to("POST", r"/v1/sites/.*/uploads/batch-complete") == []


# -- resuming after a crash at every step ---------------------------------------------------------------


class Crash(BaseException):
    """The agent dies right here (nothing in the agent catches a BaseException that is not an Exception)."""


class CrashingClient(ServiceClient):
    """Does the call, then dies before the agent can record that it happened."""

    def __init__(self, base: ServiceClient, after: str) -> None:
        self.__dict__.update(base.__dict__)
        self.after = after

    def _maybe_crash(self, name: str) -> None:
        if name == self.after:
            raise Crash(name)

    def prepare_upload(self, site_id: str, body: Any) -> dict[str, Any]:
        answer = super().prepare_upload(site_id, body)
        self._maybe_crash("prepare")
        return answer

    def upload_target(self, site_id: str, upload_id: str, content_md5: str) -> dict[str, Any]:
        answer = super().upload_target(site_id, upload_id, content_md5)
        self._maybe_crash("target")
        return answer

    def put_object(self, method: str, url: str, headers: Any, body: Any, length: int) -> int:
        if self.after == "mid-put":

            def cut(pieces: Iterator[bytes]) -> Iterator[bytes]:
                for index, piece in enumerate(pieces):
                    if index == 2:
                        raise Crash("mid-put")
                    yield piece

            body = cut(iter(body))
        status = super().put_object(method, url, headers, body, length)
        self._maybe_crash("put")
        return status

    def complete_upload(self, site_id: str, upload_id: str) -> dict[str, Any]:
        answer = super().complete_upload(site_id, upload_id)
        self._maybe_crash("complete")
        return answer


def queue(site: Site, path: Path, minute: int = 0) -> int:
    """Put ``path`` in the spool as the scanner would (a 60 s segment from 10:MM local time)."""
    start = DAY + timedelta(minutes=minute)
    info = path.stat()
    with site.spool() as spool:
        row_id = spool.add(
            NewSegment(
                str(path),
                "cam-01",
                to_rfc3339(start),
                to_rfc3339(start + timedelta(seconds=60)),
                "mp4",
                None,
                info.st_size,
                info.st_mtime_ns,
            ),
            time.time(),
        )
    assert row_id is not None
    return row_id


def crash_one(site: Site, after: str, path: Path, minute: int = 0) -> str:
    """Queue ``path`` and take it through the steps until the crash; returns the state left behind."""
    config = site.config()
    row_id = queue(site, path, minute)
    clock = SystemClock()
    backoff = Backoff(0.01, 0.05)
    with site.spool() as spool:
        pipeline = Pipeline(
            spool,
            CrashingClient(ServiceClient.from_config(config.service), after),
            SITE_ID,
            delete_after_upload=False,
            sidecar_cameras=(),
            backoff=backoff,
            circuit=Circuit(backoff, clock, lambda: 0.5),
            clock=clock,
            rand=lambda: 0.5,
            stop=threading.Event(),
        )
        with pytest.raises(Crash):
            pipeline.process(row_id)
        return spool.get(row_id).state.value


@pytest.mark.parametrize(
    ("after", "left_in"),
    [
        ("prepare", "hashed"),  # the service reserved the upload; the spool never heard
        ("target", "prepared"),
        ("mid-put", "prepared"),  # the PUT was cut off half way
        ("put", "prepared"),  # the object is in the store; the spool never heard
        ("complete", "uploaded"),  # the service registered the segment; the spool never heard
    ],
)
def test_a_crash_at_any_step_resumes_without_loss_or_duplicate(
    site: Site, fake: FakeIngest, after: str, left_in: str
) -> None:
    path = site.segment(0, 150_000)

    assert crash_one(site, after, path) == left_in

    summary = site.run_once()

    assert summary.exit_code == 0
    assert_registered_once(fake, path)
    assert len(fake.uploads) == 1  # prepare gave the same upload again, never a second one
    assert states(site) == {path.name: "registered"}


def test_rows_in_every_state_resume_together(site: Site, fake: FakeIngest) -> None:
    steps = ["prepare", "target", "put", "complete"]
    files = [site.segment(minute, 20_000 + minute) for minute in range(len(steps))]
    for minute, (after, path) in enumerate(zip(steps, files, strict=True)):
        crash_one(site, after, path, minute)
    discovered = site.segment(10)
    queue(site, discovered, 10)

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, *files, discovered)
    assert len(fake.uploads) == len(files) + 1


# -- outages --------------------------------------------------------------------------------------------


def test_an_outage_is_retried_with_one_probe_at_a_time(site: Site, fake: FakeIngest) -> None:
    fake.fail("POST", rf"/v1/sites/{SITE_ID}/uploads", 503, "unavailable", times=4)
    files = [site.segment(minute) for minute in range(3)]

    summary = site.run_once()

    assert summary.exit_code == 0
    assert_registered_once(fake, *files)
    # Two went out together and failed; then one probe at a time until the service answered; then the rest.
    assert len(fake.calls_to("POST", rf"/v1/sites/{SITE_ID}/uploads")) == 4 + 3


def test_the_store_being_down_is_retried(site: Site, fake: FakeIngest) -> None:
    fake.use_store = True
    fake.fail("STORE", r"/footage/.*", 503, "SlowDown", times=3)
    path = site.segment(0)

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, path)
    assert len(fake.store_calls) == 4


def test_with_the_service_unreachable_files_are_queued_and_kept(site: Site, fake: FakeIngest) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site.data["service"]["url"] = f"http://127.0.0.1:{port}"
    site.data["agent"]["timezone"] = "Europe/Berlin"  # so files can be read without asking the service
    files = [site.segment(minute) for minute in range(2)]

    summary = site.run_once(give_up_after=0.5)

    assert (summary.exit_code, summary.gave_up, summary.pending_files) == (1, True, 2)
    assert set(states(site).values()) == {"discovered"}

    site.data["service"]["url"] = fake.url
    assert site.run_once().exit_code == 0
    assert_registered_once(fake, *files)


def test_the_site_is_remembered_for_when_the_service_is_down(site: Site, fake: FakeIngest) -> None:
    site.segment(0)
    assert site.run_once().exit_code == 0
    with site.spool() as spool:
        assert spool.get_meta("site_id") == SITE_ID
        assert spool.get_meta("site_timezone") == "Europe/Berlin"

    site.data["service"]["url"] = "http://127.0.0.1:9"  # discard port: nothing listens
    site.segment(1)
    summary = site.run_once(give_up_after=0.5)

    assert summary.gave_up
    with site.spool() as spool:
        (row,) = spool.rows("path LIKE '%100100.mp4'")
    assert row.state in PENDING  # queued (and hashed: that needs no service), not uploaded
    assert row.start_utc == "2025-01-06T09:01:00Z"  # read in the remembered time zone


def test_a_refused_token_stops_the_agent_with_a_clear_error(site: Site, fake: FakeIngest) -> None:
    write_token(Path(site.data["service"]["token_file"]), "revoked-token\n")

    with pytest.raises(AgentError, match="unauthenticated"):
        site.run_once()


# -- the protocol's error table -------------------------------------------------------------------------


def test_a_camera_the_service_does_not_know_is_rejected_and_retried_next_start(
    site: Site, fake: FakeIngest
) -> None:
    fake.cameras.discard("cam-01")
    path = site.segment(0)

    summary = site.run_once()

    assert summary.exit_code == 1
    assert [(Path(row.path).name, row.last_error_code) for row in summary.rejected] == [
        (path.name, "camera_not_found")
    ]
    assert path.exists()
    assert states(site) == {path.name: "rejected"}

    fake.cameras.add("cam-01")  # the camera is registered in the service
    assert site.run_once().exit_code == 0
    assert_registered_once(fake, path)


def test_an_overlapping_segment_is_rejected(site: Site, fake: FakeIngest) -> None:
    path = site.segment(0)
    fake.prepare(
        {
            "camera": "cam-01",
            "start": "2025-01-06T09:00:00Z",
            "end": "2025-01-06T09:01:00Z",
            "size": 1,
            "sha256": "0" * 64,
            "container": "mp4",
        }
    )

    summary = site.run_once()

    assert summary.exit_code == 1
    assert summary.rejected[0].last_error_code == "segment_overlap"
    assert path.exists()


def test_start_in_future_is_retried_not_rejected(site: Site, fake: FakeIngest) -> None:
    fake.fail("POST", rf"/v1/sites/{SITE_ID}/uploads", 422, "start_in_future", times=2)
    path = site.segment(0)

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, path)


@pytest.mark.parametrize("code", ["object_missing", "upload_quarantined", "upload_expired"])
def test_complete_failures_follow_the_protocol(site: Site, fake: FakeIngest, code: str) -> None:
    fake.complete_faults.append(code)
    path = site.segment(0, 70_000)

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, path)
    puts = fake.calls_to("PUT", r"/v1/sites/.*/object")
    assert len(puts) == 2  # the object was sent again
    # object_missing: PUT again to the same upload; quarantined or expired: a fresh upload.
    assert len(fake.uploads) == (1 if code == "object_missing" else 2)


def test_complete_failures_in_daemon_mode(site: Site, fake: FakeIngest) -> None:
    fake.complete_faults += ["object_missing", "upload_quarantined"]
    runner = Runner(site.config())
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        path = site.segment(0)
        wait_for(lambda: len(fake.registered()) == 1)
    finally:
        runner.request_stop()
        thread.join(10)

    assert_registered_once(fake, path)


@pytest.mark.parametrize("use_store", [False, True], ids=["service endpoint", "store"])
def test_a_refused_digest_is_put_again(site: Site, fake: FakeIngest, use_store: bool) -> None:
    fake.use_store = use_store
    fake.corrupt_next_put = 2
    path = site.segment(0)

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, path)
    assert len(fake.calls_to("PUT", r".*/object") if not use_store else fake.store_calls) == 3
    assert len(fake.calls_to("POST", r"/v1/sites/.*/uploads")) == 3  # prepared again for its key each time


def test_a_digest_refused_again_and_again_hashes_the_file_again(site: Site, fake: FakeIngest) -> None:
    fake.corrupt_next_put = 3
    path = site.segment(0)

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, path)
    assert len(fake.uploads) == 1  # the same content hashes the same: the same upload


def test_a_file_that_changed_after_hashing_starts_over(site: Site, fake: FakeIngest) -> None:
    path = site.segment(0, 5000)
    row_id = queue(site, path)
    with site.spool() as spool:
        spool.mark_hashed(row_id, hashlib.sha256(path.read_bytes()).hexdigest(), time.time())
    with path.open("ab") as handle:  # the NVR wrote more after the agent hashed it
        handle.write(b"late bytes")
    stamp = int((DAY + timedelta(seconds=61)).timestamp() * 1e9)
    os.utime(path, ns=(stamp, stamp))

    assert site.run_once().exit_code == 0

    assert_registered_once(fake, path)
    (upload,) = fake.registered()
    assert upload.size == 5010


def test_logs_never_show_the_token_or_a_data_key(
    site: Site, fake: FakeIngest, caplog: pytest.LogCaptureFixture
) -> None:
    fake.corrupt_next_put = 1
    fake.complete_faults.append("upload_quarantined")
    site.segment(0)

    with caplog.at_level(logging.DEBUG, logger="cctv_ingest"):
        assert site.run_once().exit_code == 0

    assert caplog.records
    assert TOKEN not in caplog.text
    for upload in fake.uploads.values():
        assert base64.b64encode(upload.data_key).decode() not in caplog.text
        assert upload.data_key.hex() not in caplog.text
