"""Finding complete segment files: names and sidecars, settling, the end-time rule, time zones."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cctv_ingest.config import CameraConfig
from cctv_ingest.scanner import (
    Scanner,
    ScanResult,
    Segment,
    is_ignored_name,
    local_to_utc,
    read_sidecar,
    to_rfc3339,
)

from .test_backoff import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
PATTERN = "{camera}_%Y%m%d-%H%M%S.mp4"
# 2026-01-05 10:00:00 in Berlin (winter, UTC+1) is 09:00:00 UTC.
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def nothing_known(path: str, size: int, mtime_ns: int) -> bool:
    return False


def pattern_camera(folder: Path, segment_seconds: int = 60) -> CameraConfig:
    folder.mkdir(parents=True, exist_ok=True)
    return CameraConfig("cam-01", folder, PATTERN, False, segment_seconds)


def sidecar_camera(folder: Path) -> CameraConfig:
    folder.mkdir(parents=True, exist_ok=True)
    return CameraConfig("cam-floor", folder, None, True)


def put(folder: Path, name: str, modified: datetime, data: bytes = b"video") -> Path:
    path = folder / name
    path.write_bytes(data)
    stamp = int(modified.timestamp() * 1_000_000_000)
    os.utime(path, ns=(stamp, stamp))
    return path


def scanner_for(
    *cameras: CameraConfig, settle: float = 10.0, now: datetime | None = None
) -> tuple[Scanner, FakeClock]:
    clock = FakeClock((now or T0 + timedelta(hours=1)).timestamp())
    return Scanner(cameras, BERLIN, settle_seconds=settle, clock=clock), clock


def scan_twice(scanner: Scanner) -> ScanResult:
    scanner.scan(nothing_known)
    return scanner.scan(nothing_known)


def by_name(result: ScanResult) -> dict[str, Segment]:
    return {segment.path.name: segment for segment in result.ready}


# -- pattern cameras ------------------------------------------------------------------------------------


def test_pattern_gives_camera_and_start_in_utc(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    put(camera.folder, "cam-01_20260105-100000.mp4", T0 + timedelta(seconds=60), b"x" * 1000)
    scanner, _ = scanner_for(camera)

    (segment,) = scan_twice(scanner).ready

    assert segment.camera == "cam-01"
    assert segment.start == T0
    assert segment.end == T0 + timedelta(seconds=60)
    assert segment.container == "mp4"
    assert segment.codec is None
    assert segment.size == 1000
    assert segment.mtime_ns == int((T0 + timedelta(seconds=60)).timestamp() * 1e9)


def test_summer_time_is_utc_plus_two(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    put(camera.folder, "cam-01_20260701-120000.mp4", datetime(2026, 7, 1, 10, 1, tzinfo=UTC))
    scanner, _ = scanner_for(camera, now=datetime(2026, 7, 1, 11, 0, tzinfo=UTC))

    (segment,) = scan_twice(scanner).ready

    assert segment.start == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def test_end_is_the_earliest_of_segment_length_next_start_and_mtime(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01", segment_seconds=60)
    folder = camera.folder
    # a: the next file starts 30 s later -> ends then. b: written for 20 s -> mtime. c: the last file,
    # written long after (copied later) -> start + 60 s. d: mtime before its start (clock skew) -> ignored.
    put(folder, "cam-01_20260105-100000.mp4", T0 + timedelta(seconds=59))
    put(folder, "cam-01_20260105-100030.mp4", T0 + timedelta(seconds=50))
    put(folder, "cam-01_20260105-100200.mp4", T0 + timedelta(minutes=40))
    put(folder, "cam-01_20260105-100500.mp4", T0 - timedelta(minutes=10))
    scanner, _ = scanner_for(camera)

    ready = by_name(scan_twice(scanner))

    assert ready["cam-01_20260105-100000.mp4"].end == T0 + timedelta(seconds=30)
    assert ready["cam-01_20260105-100030.mp4"].end == T0 + timedelta(seconds=50)
    assert ready["cam-01_20260105-100200.mp4"].end == T0 + timedelta(minutes=2, seconds=60)
    assert ready["cam-01_20260105-100500.mp4"].end == T0 + timedelta(minutes=5, seconds=60)


def test_mtime_keeps_its_microseconds(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    modified = T0 + timedelta(seconds=42, microseconds=123456)
    put(camera.folder, "cam-01_20260105-100000.mp4", modified)
    scanner, _ = scanner_for(camera)

    (segment,) = scan_twice(scanner).ready

    assert segment.end == modified
    assert to_rfc3339(segment.end) == "2026-01-05T09:00:42.123456Z"
    assert to_rfc3339(segment.start) == "2026-01-05T09:00:00Z"


def test_names_that_are_not_segments_are_ignored(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    folder = camera.folder
    modified = T0 + timedelta(seconds=60)
    for name in (
        ".cam-01_20260105-100000.mp4",  # hidden: someone's temporary file
        "cam-01_20260105-100100.mp4.part",
        "cam-01_20260105-100200.mp4.tmp",
        "cam-01_20260105-100300.mkv",  # does not match the pattern
        "cam-02_20260105-100400.mp4",  # another camera's name
        "cam-01_20260105-100500.mp4.json",
        "notes.txt",
        "cam-01_20261305-100600.mp4",  # month 13
    ):
        put(folder, name, modified)
    (folder / "cam-01_20260105-100700.mp4").mkdir()  # a directory, not a file
    real = put(tmp_path, "elsewhere.mp4", modified)
    (folder / "cam-01_20260105-100800.mp4").symlink_to(real)  # never followed
    put(folder, "cam-01_20260105-100900.mp4", modified)
    scanner, _ = scanner_for(camera)

    result = scan_twice(scanner)

    assert [segment.path.name for segment in result.ready] == ["cam-01_20260105-100900.mp4"]
    assert result.unusable == []


@pytest.mark.parametrize(
    ("name", "ignored"),
    [(".x.mp4", True), ("a.part", True), ("a.TMP", True), ("a.mp4", False), ("partial.mp4", False)],
)
def test_ignored_names(name: str, ignored: bool) -> None:
    assert is_ignored_name(name) is ignored


# -- settling -------------------------------------------------------------------------------------------


def test_a_file_is_complete_once_it_held_still_between_two_scans(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    path = put(camera.folder, "cam-01_20260105-100000.mp4", T0 + timedelta(seconds=60), b"a")
    scanner, _ = scanner_for(camera)

    first = scanner.scan(nothing_known)
    assert (first.ready, first.waiting) == ([], 1)  # seen once: not known to hold still

    path.write_bytes(b"ab")  # still being written
    os.utime(path, ns=(int((T0 + timedelta(seconds=61)).timestamp() * 1e9),) * 2)
    second = scanner.scan(nothing_known)
    assert (second.ready, second.waiting) == ([], 1)

    third = scanner.scan(nothing_known)
    assert [segment.size for segment in third.ready] == [2]


def test_a_file_must_also_be_settle_seconds_old(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    written = T0 + timedelta(seconds=60)
    put(camera.folder, "cam-01_20260105-100000.mp4", written)
    scanner, clock = scanner_for(camera, settle=10, now=written + timedelta(seconds=3))

    assert scan_twice(scanner).ready == []

    clock.now = (written + timedelta(seconds=10)).timestamp()
    assert len(scanner.scan(nothing_known).ready) == 1


def test_settle_zero_needs_only_two_scans(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    written = T0 + timedelta(seconds=60)
    put(camera.folder, "cam-01_20260105-100000.mp4", written)
    scanner, _ = scanner_for(camera, settle=0, now=written)

    assert len(scan_twice(scanner).ready) == 1


def test_known_files_are_skipped(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    put(camera.folder, "cam-01_20260105-100000.mp4", T0 + timedelta(seconds=60), b"abc")
    put(camera.folder, "cam-01_20260105-100100.mp4", T0 + timedelta(seconds=120), b"abcd")
    scanner, _ = scanner_for(camera)
    known = {str(camera.folder / "cam-01_20260105-100000.mp4")}

    scanner.scan(lambda path, size, mtime: path in known)
    result = scanner.scan(lambda path, size, mtime: path in known)

    assert [segment.path.name for segment in result.ready] == ["cam-01_20260105-100100.mp4"]


def test_a_missing_folder_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    camera = CameraConfig("cam-01", tmp_path / "not-there", PATTERN, False)
    scanner, _ = scanner_for(camera)

    with caplog.at_level(logging.WARNING):
        assert scan_twice(scanner).ready == []

    assert caplog.text.count("cannot read folder") == 1


# -- time zones -----------------------------------------------------------------------------------------


def test_a_time_the_clocks_skip_reads_with_the_offset_from_before() -> None:
    # 2026-03-29 02:30 does not exist in Berlin (02:00 CET -> 03:00 CEST); read as 02:30 CET = 01:30 UTC.
    assert local_to_utc(datetime(2026, 3, 29, 2, 30), BERLIN) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_a_time_that_happens_twice_is_picked_by_the_files_mtime() -> None:
    # 2026-10-25 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
    naive = datetime(2026, 10, 25, 2, 30)
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)

    assert local_to_utc(naive, BERLIN) == first
    assert local_to_utc(naive, BERLIN, first + timedelta(seconds=60)) == first
    assert local_to_utc(naive, BERLIN, second + timedelta(seconds=60)) == second
    assert local_to_utc(datetime(2026, 10, 25, 4, 0), BERLIN, None) == datetime(
        2026, 10, 25, 3, 0, tzinfo=UTC
    )


def test_segments_across_the_autumn_change_get_distinct_utc_starts(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    # 02:59 CEST, then the clocks go back: 02:00 CET (a different file name only thanks to the minute).
    put(camera.folder, "cam-01_20261025-025900.mp4", datetime(2026, 10, 25, 1, 0, tzinfo=UTC))
    put(camera.folder, "cam-01_20261025-020100.mp4", datetime(2026, 10, 25, 1, 2, tzinfo=UTC))
    scanner, _ = scanner_for(camera, now=datetime(2026, 10, 25, 3, 0, tzinfo=UTC))

    ready = by_name(scan_twice(scanner))

    assert ready["cam-01_20261025-025900.mp4"].start == datetime(2026, 10, 25, 0, 59, tzinfo=UTC)
    assert ready["cam-01_20261025-020100.mp4"].start == datetime(2026, 10, 25, 1, 1, tzinfo=UTC)
    assert ready["cam-01_20261025-020100.mp4"].end == datetime(2026, 10, 25, 1, 2, tzinfo=UTC)


def test_utc_zone(tmp_path: Path) -> None:
    camera = pattern_camera(tmp_path / "cam-01")
    put(camera.folder, "cam-01_20260105-100000.mp4", datetime(2026, 1, 5, 10, 1, tzinfo=UTC))
    clock = FakeClock(datetime(2026, 1, 5, 11, 0, tzinfo=UTC).timestamp())
    scanner = Scanner([camera], ZoneInfo("UTC"), settle_seconds=10, clock=clock)

    (segment,) = scan_twice(scanner).ready

    assert segment.start == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


# -- sidecar cameras ------------------------------------------------------------------------------------


def sidecar(folder: Path, name: str, data: object, modified: datetime) -> Path:
    path = folder / (name + ".json")
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    stamp = int(modified.timestamp() * 1e9)
    os.utime(path, ns=(stamp, stamp))
    return path


def test_sidecar_gives_times_container_and_codec(tmp_path: Path) -> None:
    camera = sidecar_camera(tmp_path / "floor")
    written = T0 + timedelta(seconds=61)
    put(camera.folder, "seg-0001.ts", written, b"ts-data")
    sidecar(
        camera.folder,
        "seg-0001.ts",
        {"start": "2026-01-05T10:00:00+01:00", "end": "2026-01-05T09:01:00Z", "codec": "hevc"},
        written,
    )
    put(camera.folder, "seg-0002.mkv", written)
    sidecar(
        camera.folder,
        "seg-0002.mkv",
        {"start": "2026-01-05T09:01:00Z", "end": "2026-01-05T09:02:00Z", "container": "mp4"},
        written,
    )
    scanner, _ = scanner_for(camera)

    ready = by_name(scan_twice(scanner))

    first = ready["seg-0001.ts"]
    assert (first.camera, first.start, first.end) == ("cam-floor", T0, T0 + timedelta(minutes=1))
    assert (first.container, first.codec, first.size) == ("ts", "hevc", 7)
    assert ready["seg-0002.mkv"].container == "mp4"  # the sidecar's word wins over the extension


def test_a_segment_without_its_sidecar_is_not_ready(tmp_path: Path) -> None:
    camera = sidecar_camera(tmp_path / "floor")
    written = T0 + timedelta(seconds=61)
    put(camera.folder, "seg-0001.mp4", written)
    scanner, _ = scanner_for(camera)

    result = scan_twice(scanner)
    assert (result.ready, result.waiting) == ([], 1)

    sidecar(
        camera.folder,
        "seg-0001.mp4",
        {"start": "2026-01-05T09:00:00Z", "end": "2026-01-05T09:01:00Z"},
        written,
    )
    scanner.scan(nothing_known)
    assert len(scanner.scan(nothing_known).ready) == 1


def test_a_fresh_broken_sidecar_waits_and_a_settled_one_is_unusable(tmp_path: Path) -> None:
    camera = sidecar_camera(tmp_path / "floor")
    written = T0 + timedelta(seconds=61)
    put(camera.folder, "seg-0001.mp4", written)
    now = T0 + timedelta(minutes=5)
    sidecar(camera.folder, "seg-0001.mp4", '{"start": "2026-01-05T09:00:00Z", "en', now)  # half written
    scanner, clock = scanner_for(camera, now=now)

    result = scan_twice(scanner)
    assert (result.ready, result.unusable, result.waiting) == ([], [], 1)

    clock.now += 60
    result = scanner.scan(nothing_known)
    (unusable,) = result.unusable
    assert unusable.code == "invalid_sidecar"
    assert "not valid JSON" in unusable.message
    assert unusable.path.name == "seg-0001.mp4"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[1, 2]", "JSON object"),
        ({"start": "2026-01-05T09:00:00", "end": "2026-01-05T09:01:00Z"}, "no UTC offset"),
        ({"start": "2026-01-05T09:00:00Z"}, "end must be an RFC 3339"),
        ({"start": "yesterday", "end": "2026-01-05T09:01:00Z"}, "not an RFC 3339"),
        ({"start": "2026-01-05T09:01:00Z", "end": "2026-01-05T09:01:00Z"}, "end must be after start"),
        ({"start": "2026-01-05T09:00:00Z", "end": "2026-01-05T09:01:00Z", "container": "flv"}, "container"),
        ({"start": "2026-01-05T09:00:00Z", "end": "2026-01-05T09:01:00Z", "codec": 264}, "codec"),
    ],
)
def test_sidecar_problems(tmp_path: Path, content: object, problem: str) -> None:
    path = sidecar(tmp_path, "seg.mp4", content, T0)

    with pytest.raises(ValueError, match=problem):
        read_sidecar(path)
