"""Find finished segment files in the camera folders and read their camera, start and end times.

A camera either names its files by a pattern (``{camera}_%Y%m%d_%H%M%S.mp4``: the start, as the NVR's
local wall-clock time) or puts a JSON sidecar next to each segment (``<segment>.json`` with ``start`` and
``end`` as RFC 3339 times with an offset, and optionally ``container`` and ``codec``).

Rules:

* Only regular files directly in the folder, not through symbolic links. Names starting with ``.`` or
  ending in ``.part`` or ``.tmp`` are someone's work in progress and ignored, as is every extension other
  than .mp4 .mkv .ts .avi .mov (which also gives the container).
* A file is complete when its size and modification time are the same as at the previous scan and its
  modification time is at least ``settle_seconds`` old. A sidecar camera's segment is not ready until its
  sidecar exists; a sidecar that is still not valid JSON once it has settled too makes the segment
  unusable (it is recorded as rejected, with the reason).
* Pattern cameras: the end is the earliest of start + ``segment_seconds``, the start of the camera's next
  file, and the file's modification time when that is after the start.
* Wall-clock times convert to UTC in the site's time zone. A time the clocks skip (spring forward) is read
  with the offset before the change; a time that happens twice (fall back) is the occurrence the file's
  modification time fits: the latest start that is not after the modification time.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from cctv_ingest.backoff import Clock
from cctv_ingest.config import CONTAINERS, CameraConfig

logger = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".json"
IGNORED_SUFFIXES = (".part", ".tmp")
MAX_SIDECAR_BYTES = 64 * 1024
_CODEC_MAX = 32


@dataclass(frozen=True, slots=True)
class Segment:
    """A complete segment file, ready to queue."""

    path: Path
    camera: str
    start: datetime
    """UTC, aware."""
    end: datetime
    """UTC, aware."""
    container: str
    codec: str | None
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Unusable:
    """A complete file the agent cannot upload as it is (a broken sidecar); recorded as rejected."""

    path: Path
    camera: str
    size: int
    mtime_ns: int
    code: str
    message: str


@dataclass(slots=True)
class ScanResult:
    ready: list[Segment]
    unusable: list[Unusable]
    waiting: int
    """Files seen that are not complete (or not known to be) yet."""


Known = Callable[[str, int, int], bool]
"""Whether the spool already holds this (path, size, mtime_ns)."""


def to_rfc3339(moment: datetime) -> str:
    """UTC with a ``Z``; microseconds only when there are any."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}"
    return text + "Z"


def local_to_utc(naive: datetime, zone: ZoneInfo, hint: datetime | None = None) -> datetime:
    """A wall-clock time in ``zone`` as a UTC instant.

    A time the clocks skip is read with the offset from before the change. When the time happens twice
    (the clocks go back), ``hint`` (when the file was last written) picks the occurrence: the later one if
    it is not after the hint, else the earlier one.
    """
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return first
    if first.astimezone(zone).replace(tzinfo=None) != naive:
        return first  # skipped: fold=0 is the reading with the offset from before the change
    # Happens twice: fold=0 is the earlier occurrence.
    if hint is not None and second <= hint:
        return second
    return first


def is_ignored_name(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES)


def container_of(name: str) -> str | None:
    return CONTAINERS.get(Path(name).suffix.lower())


class Scanner:
    """Scans every camera folder; remembers what it saw so the next scan can tell which files held still.

    Used from one thread.
    """

    def __init__(
        self,
        cameras: Iterable[CameraConfig],
        zone: ZoneInfo,
        *,
        settle_seconds: float,
        clock: Clock,
    ) -> None:
        self.cameras = tuple(cameras)
        self.zone = zone
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._seen: dict[str, tuple[int, int]] = {}
        self._names: dict[str, dict[str, datetime | None]] = {camera.id: {} for camera in self.cameras}
        self._missing_folders: set[str] = set()

    def scan(self, known: Known) -> ScanResult:
        result = ScanResult([], [], 0)
        seen: dict[str, tuple[int, int]] = {}
        now = self.clock.time()
        for camera in self.cameras:
            files = self._list(camera)
            if camera.sidecar:
                self._scan_sidecar(camera, files, seen, now, known, result)
            else:
                self._scan_pattern(camera, files, seen, now, known, result)
        self._seen = seen
        return result

    # -- listing -----------------------------------------------------------------------------------------

    def _list(self, camera: CameraConfig) -> dict[str, os.stat_result]:
        """Regular files in the folder (not through links), by name, that are not ignored."""
        files: dict[str, os.stat_result] = {}
        folder = str(camera.folder)
        try:
            with os.scandir(camera.folder) as entries:
                for entry in entries:
                    if is_ignored_name(entry.name):
                        continue
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # gone between listing and stat
                    if stat.S_ISREG(info.st_mode):
                        files[entry.name] = info
        except OSError as exc:
            if folder not in self._missing_folders:
                self._missing_folders.add(folder)
                logger.warning("camera %s: cannot read folder %s: %s", camera.id, folder, exc.strerror)
            return files
        if folder in self._missing_folders:
            self._missing_folders.discard(folder)
            logger.info("camera %s: folder %s is readable again", camera.id, folder)
        return files

    def _complete(
        self, path: str, info: os.stat_result, now: float, seen: dict[str, tuple[int, int]]
    ) -> bool:
        identity = (info.st_size, info.st_mtime_ns)
        seen[path] = identity
        return self._seen.get(path) == identity and now - info.st_mtime_ns / 1e9 >= self.settle_seconds

    # -- pattern cameras ---------------------------------------------------------------------------------

    def _scan_pattern(
        self,
        camera: CameraConfig,
        files: Mapping[str, os.stat_result],
        seen: dict[str, tuple[int, int]],
        now: float,
        known: Known,
        result: ScanResult,
    ) -> None:
        starts = self._starts(camera, files)
        ordered = sorted(starts.items(), key=lambda item: (item[1], item[0]))
        for index, (name, naive) in enumerate(ordered):
            info = files[name]
            path = str(camera.folder / name)
            complete = self._complete(path, info, now, seen)
            if known(path, info.st_size, info.st_mtime_ns):
                continue
            if not complete:
                result.waiting += 1
                continue
            container = container_of(name)
            if container is None:  # the pattern's extension is checked in the config; a safety net
                continue
            mtime = _mtime(info)
            start = local_to_utc(naive, self.zone, mtime)
            end = start + timedelta(seconds=camera.segment_seconds)
            following = index + 1
            while following < len(ordered) and ordered[following][1] == naive:
                following += 1  # another file with the same start (another extension): not the next one
            if following < len(ordered):
                later_name, later_naive = ordered[following]
                later = local_to_utc(later_naive, self.zone, _mtime(files[later_name]))
                if later > start:
                    end = min(end, later)
            if mtime > start:
                end = min(end, mtime)
            result.ready.append(
                Segment(
                    path=camera.folder / name,
                    camera=camera.id,
                    start=start,
                    end=end,
                    container=container,
                    codec=None,
                    size=info.st_size,
                    mtime_ns=info.st_mtime_ns,
                )
            )

    def _starts(self, camera: CameraConfig, files: Mapping[str, os.stat_result]) -> dict[str, datetime]:
        """Start times of the files whose names match the pattern (parsed once per name, then cached)."""
        cache = self._names[camera.id]
        for gone in cache.keys() - files.keys():
            del cache[gone]
        starts: dict[str, datetime] = {}
        for name in files:
            if name not in cache:
                cache[name] = camera.start_time_from_name(name) if container_of(name) else None
            naive = cache[name]
            if naive is not None:
                starts[name] = naive
        return starts

    # -- sidecar cameras ---------------------------------------------------------------------------------

    def _scan_sidecar(
        self,
        camera: CameraConfig,
        files: Mapping[str, os.stat_result],
        seen: dict[str, tuple[int, int]],
        now: float,
        known: Known,
        result: ScanResult,
    ) -> None:
        for name in sorted(files):
            container = container_of(name)
            if container is None:
                continue
            info = files[name]
            path = str(camera.folder / name)
            complete = self._complete(path, info, now, seen)
            if known(path, info.st_size, info.st_mtime_ns):
                continue
            sidecar_info = files.get(name + SIDECAR_SUFFIX)
            sidecar_complete = sidecar_info is not None and self._complete(
                path + SIDECAR_SUFFIX, sidecar_info, now, seen
            )
            if not complete or sidecar_info is None:
                result.waiting += 1
                continue
            try:
                start, end, sidecar_container, codec = read_sidecar(camera.folder / (name + SIDECAR_SUFFIX))
            except SidecarError as exc:
                if not sidecar_complete:
                    result.waiting += 1  # perhaps still being written
                    continue
                result.unusable.append(
                    Unusable(
                        camera.folder / name,
                        camera.id,
                        info.st_size,
                        info.st_mtime_ns,
                        "invalid_sidecar",
                        f"{name}{SIDECAR_SUFFIX}: {exc}",
                    )
                )
                continue
            result.ready.append(
                Segment(
                    path=camera.folder / name,
                    camera=camera.id,
                    start=start,
                    end=end,
                    container=sidecar_container or container,
                    codec=codec,
                    size=info.st_size,
                    mtime_ns=info.st_mtime_ns,
                )
            )


class SidecarError(ValueError):
    """The sidecar cannot be used; the message says why (never quoting more than a field's name)."""


def read_sidecar(path: Path) -> tuple[datetime, datetime, str | None, str | None]:
    """(start, end, container or None, codec or None) from a segment's JSON sidecar; times in UTC."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise SidecarError(f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_SIDECAR_BYTES:
        raise SidecarError(f"larger than {MAX_SIDECAR_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise SidecarError("is not valid JSON") from None
    if not isinstance(data, dict):
        raise SidecarError("must be a JSON object")
    start = _sidecar_time(data, "start")
    end = _sidecar_time(data, "end")
    if end <= start:
        raise SidecarError("end must be after start")
    container = data.get("container")
    if container is not None and container not in CONTAINERS.values():
        raise SidecarError(f"container must be one of {', '.join(CONTAINERS.values())}")
    codec = data.get("codec")
    if codec is not None and not (
        isinstance(codec, str) and 0 < len(codec) <= _CODEC_MAX and codec.isascii() and codec.isprintable()
    ):
        raise SidecarError(f"codec must be a short name such as 'h264' (at most {_CODEC_MAX} characters)")
    return start, end, container, codec


def _sidecar_time(data: Mapping[str, object], key: str) -> datetime:
    value = data.get(key)
    if not isinstance(value, str):
        raise SidecarError(f"{key} must be an RFC 3339 time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SidecarError(f"{key} is not an RFC 3339 time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SidecarError(f"{key} has no UTC offset (write it as ...Z or ...+01:00)")
    return moment.astimezone(UTC)


def _mtime(info: os.stat_result) -> datetime:
    """The modification time, to the microsecond (floats would round it)."""
    seconds, nanoseconds = divmod(info.st_mtime_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=nanoseconds // 1000)
