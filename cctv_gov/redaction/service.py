"""``redact``: two passes over a video. The first decodes every frame and runs the detectors; tracks, the
subject and a plan for every frame are then built from the whole clip; the second pass decodes again, masks
each frame by its plan and encodes H.264. The input is only read; the output is written to a temporary file
beside it and renamed into place once complete.
"""

from __future__ import annotations

import contextlib
import json
import queue
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cctv_gov.kit.stream import sha256_file
from cctv_gov.redaction.detectors import (
    CenterFace,
    Detection,
    FaceDetector,
    HogPeople,
    ModelInfo,
    ModelUnavailable,
)
from cctv_gov.redaction.follow import Follower
from cctv_gov.redaction.masking import mask_box, mask_pixels
from cctv_gov.redaction.plan import (
    SUBJECT_NOT_CLEAR,
    FramePlan,
    SubjectState,
    SubjectTracks,
    build_plans,
    resolve_subject,
)
from cctv_gov.redaction.report import annotate, contact_sheet, sample_frames
from cctv_gov.redaction.schemas import MaskStyle, Mode, RedactionError, RedactionOptions, Tuning, every
from cctv_gov.redaction.tracking import Track, fill, link
from cctv_gov.redaction.video import FrameItem, H264Writer, VideoInfo, VideoReader, probe

REPORT_FORMAT = "cctv-gov-redaction-report/1"
Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class Models:
    faces: FaceDetector | None
    people: HogPeople | None
    error: str | None = None
    info: list[ModelInfo] = field(default_factory=list)


def load_models(tuning: Tuning, face_model: Path | None = None, backend: str = "auto") -> Models:
    """Both detectors, or none and the reason (every frame is then masked whole)."""
    try:
        faces = CenterFace(face_model, backend=backend)
        people = HogPeople(tuning.person_max_side)
    except ModelUnavailable as exc:
        return Models(None, None, str(exc))
    return Models(faces, people, None, [faces.info, people.info])


@dataclass(slots=True)
class RedactionResult:
    output: Path
    report: dict[str, Any]
    plans: list[FramePlan]
    tracks: list[Track]
    subject: SubjectTracks | None


@dataclass(slots=True)
class Analysis:
    """What the detectors found on every frame of one input; rendering it needs no model."""

    source: Path
    info: VideoInfo
    input_hash: str
    models: Models
    tuning: Tuning
    faces: dict[int, list[Detection]]
    people: dict[int, list[Detection]]
    face_frames: list[int]
    person_frames: list[int]
    failed: dict[int, str]
    times: list[float]
    seconds: float
    followed: int = 0  # weak face detections found by following a face's look between model hits


def redact(
    source: Path,
    destination: Path,
    options: RedactionOptions,
    *,
    report_path: Path | None = None,
    sheet_path: Path | None = None,
    progress: Progress | None = None,
    models: Models | None = None,
    overwrite: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RedactionResult:
    """Analyse ``source`` and render the redacted copy at ``destination`` (see ``analyse`` and ``render``)."""
    _check_paths(source, destination, overwrite, report_path, sheet_path)
    analysis = analyse(source, options.tuning, models=models, progress=progress)
    return render(
        analysis,
        destination,
        options,
        report_path=report_path,
        sheet_path=sheet_path,
        progress=progress,
        overwrite=overwrite,
        clock=clock,
    )


def analyse(
    source: Path, tuning: Tuning, *, models: Models | None = None, progress: Progress | None = None
) -> Analysis:
    """Pass 1: decode every frame and run the detectors (faces and people at their tuning's intervals);
    frames that cannot be decoded or analysed are noted for the fail-safe."""
    if not source.is_file():
        raise RedactionError("input_not_found", f"{source}: no such file")
    info = probe(source)
    started = time.perf_counter()
    input_hash = sha256_file(source)
    models = models if models is not None else load_models(tuning)
    found = Analysis(source, info, input_hash, models, tuning, {}, {}, [], [], {}, [], 0.0)
    face_every = every(tuning.face_interval_seconds, float(info.fps))
    follower = Follower(
        max(1, round(tuning.follow_seconds * float(info.fps))),
        tuning.follow_threshold,
        tuning.face_low_threshold,
    )
    person_every = every(tuning.person_interval_seconds, float(info.fps))
    # The people detector runs in a worker thread of its own beside the face model (both release the GIL),
    # at most two frames behind; results are collected in frame order.
    pending: deque[tuple[int, Future[list[Detection]]]] = deque()

    def collect(limit: int) -> None:
        while len(pending) > limit:
            frame, future = pending.popleft()
            try:
                found.people[frame] = future.result()
                found.person_frames.append(frame)
            except Exception as exc:  # noqa: BLE001 - any inference failure masks the frame whole
                found.failed[frame] = f"inference failed: {type(exc).__name__}"

    with VideoReader(source, info) as reader, ThreadPoolExecutor(1, thread_name_prefix="people") as pool:
        for item in _prefetch(reader.frames()):
            found.times.append(item.seconds)
            f = item.index
            if item.image is None:
                found.failed[f] = item.error or "frame could not be decoded"
            elif models.faces is None or models.people is None:
                found.failed[f] = f"model unavailable: {models.error}"
            else:
                if f % person_every == 0:
                    pending.append(
                        (f, pool.submit(models.people.detect, item.image, tuning.person_threshold))
                    )
                try:
                    detected = None
                    if f % face_every == 0:
                        detected = models.faces.detect(
                            item.image, tuning.face_low_threshold, tuning.face_min_side
                        )
                    gray = np.asarray(cv2.cvtColor(item.image, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
                    followed = follower.update(f, gray, detected)
                    if detected is not None or followed:
                        found.faces[f] = (detected or []) + followed
                        found.face_frames.append(f)
                        found.followed += len(followed)
                except Exception as exc:  # noqa: BLE001 - any inference failure masks the frame whole
                    found.failed[f] = f"inference failed: {type(exc).__name__}"
                collect(2)
            if progress is not None:
                progress("analyse", f + 1, max(info.frame_estimate, f + 1))
        collect(0)
    for frame in found.failed:
        found.faces.pop(frame, None)
        found.people.pop(frame, None)
    found.face_frames = [f for f in found.face_frames if f not in found.failed]
    found.person_frames = [f for f in found.person_frames if f not in found.failed]
    if not found.times:
        raise RedactionError("no_frames", f"{source.name}: no frame could be read")
    found.seconds = time.perf_counter() - started
    return found


def render(
    analysis: Analysis,
    destination: Path,
    options: RedactionOptions,
    *,
    report_path: Path | None = None,
    sheet_path: Path | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RedactionResult:
    """Tracks, the subject and a plan per frame from the whole clip; then pass 2: mask and encode."""
    source, info = analysis.source, analysis.info
    _check_paths(source, destination, overwrite, report_path, sheet_path)
    if options.tuning != analysis.tuning:
        raise RedactionError("tuning_mismatch", "render with the tuning the analysis was made with")
    if sha256_file(source) != analysis.input_hash:
        raise RedactionError("input_changed", f"{source.name} changed since it was analysed")
    started = time.perf_counter()
    tuning = options.tuning
    fps = float(info.fps)
    times, failed = analysis.times, analysis.failed
    count = len(times)
    max_gap = max(1, round(tuning.max_gap_seconds * fps))
    hold = max(1, round(tuning.hold_seconds * fps))
    # Hysteresis, as in ByteTrack: weak face detections are linked too, and a track is kept if one of its
    # detections is strong or it holds enough weak ones; a side-on or small face scores low on most frames.
    faces = [
        t
        for t in link(analysis.faces, analysis.face_frames, "face", max_gap, 1, tuning.face_threshold)
        if max(t.scores) >= tuning.face_threshold or len(t.detected) >= tuning.confirm_hits
    ]
    people = link(analysis.people, analysis.person_frames, "person", max_gap, len(faces) + 1)
    for track in faces:
        fill(track, count, hold, tuning.motion_pad, every(tuning.face_interval_seconds, fps), tuning.face_pad)
    for track in people:
        fill(track, count, hold, tuning.motion_pad, every(tuning.person_interval_seconds, fps), 1.1)
    subject = None
    if options.subject is not None:
        gap = max(1, round(tuning.subject_gap_seconds * fps))
        subject = resolve_subject(
            options.subject, faces, people, times, gap, tuning.face_pad, tuning.face_threshold
        )
    plans = build_plans(options, faces, people, times, failed, subject)

    samples = set(sample_frames(plans)) if sheet_path is not None else set()
    thumbs = []
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.partial")
    try:
        with VideoReader(source, info) as reader:
            template = reader.audio_stream if options.keep_audio else None
            writer = H264Writer(partial, info, options.crf, options.preset, template)
            try:
                written = 0
                sink = writer.write_audio if template is not None else None
                for item in _prefetch(reader.frames(sink)):
                    if item.index >= count:
                        break  # a second decode never yields more frames than the first; guard anyway
                    plan = plans[item.index]
                    if item.image is None and not plan.whole:
                        plan.whole = item.error or "frame could not be decoded"
                    image = _apply(item, plan, info, options.style)
                    writer.write(image)
                    written += 1
                    if item.index in samples:
                        thumbs.append(annotate(image, plan, item.index, item.seconds))
                    if progress is not None:
                        progress("encode", written, count)
                while written < count:  # frames the second decode lost are written masked, never skipped
                    writer.write(_blank(info))
                    plans[written].whole = plans[written].whole or "frame missing on second decode"
                    written += 1
                writer.close()
            except BaseException:
                writer.abort()
                raise
        partial.replace(destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()

    report = _report(analysis, destination, options, faces, people, plans, subject)
    report["elapsed_seconds"] = round(analysis.seconds + time.perf_counter() - started, 3)
    report["created_at"] = clock().isoformat()
    if sheet_path is not None:
        contact_sheet(thumbs, sheet_path)
        report["contact_sheet"] = {
            "file": sheet_path.name,
            "frames": sorted(samples),
            "sha256": sha256_file(sheet_path),
        }
    if report_path is not None:
        report_path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return RedactionResult(destination, report, plans, faces + people, subject)


def _check_paths(
    source: Path, destination: Path, overwrite: bool, report_path: Path | None, sheet_path: Path | None
) -> None:
    if not source.is_file():
        raise RedactionError("input_not_found", f"{source}: no such file")
    if destination.exists():
        if destination.resolve() == source.resolve() or destination.samefile(source):
            raise RedactionError(
                "output_is_input", "the output must be a new file: the master is never changed"
            )
        if not overwrite:
            raise RedactionError("output_exists", f"{destination} exists (choose a new name or --overwrite)")
    if not destination.parent.is_dir():
        raise RedactionError("output_dir_missing", f"{destination.parent}: no such directory")
    if destination.suffix.lower() != ".mp4":
        raise RedactionError("output_not_mp4", "the output is H.264 in MP4: name it *.mp4")
    for extra in (report_path, sheet_path):
        if extra is not None and extra.resolve() in (source.resolve(), destination.resolve()):
            raise RedactionError("output_is_input", f"{extra}: the report and sheet need files of their own")


def _prefetch(frames: Iterator[FrameItem], depth: int = 8) -> Iterator[FrameItem]:
    """Decode in a thread of its own (FFmpeg releases the GIL) while the caller detects or encodes."""
    items: queue.Queue[FrameItem | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            items.put(exc)

    thread = threading.Thread(target=run, name="redaction-decode", daemon=True)
    thread.start()
    try:
        while True:
            got = items.get()
            if got is None:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        thread.join(timeout=5)


def _blank(info: VideoInfo) -> Any:

    return np.zeros((info.height, info.width, 3), dtype=np.uint8)


def _apply(item: FrameItem, plan: FramePlan, info: VideoInfo, style: MaskStyle) -> Any:
    image = item.image
    if image is None or (plan.whole and plan.keep is None and not plan.whole.startswith(SUBJECT_NOT_CLEAR)):
        return _blank(info)  # fail-safe: undecodable, uninspected or unanalysed frames go out black
    if plan.whole:
        mask_pixels(image, 0, 0, info.width, info.height, style)
        return image
    if plan.keep is not None:
        clear = plan.keep.pixels(info.width, info.height)
        saved = image[clear[1] : clear[3], clear[0] : clear[2]].copy() if clear else None
        mask_pixels(image, 0, 0, info.width, info.height, style)
        if clear is not None and saved is not None:
            image[clear[1] : clear[3], clear[0] : clear[2]] = saved
    for box in plan.masks:
        mask_box(image, box, style)
    for box in plan.regions:
        mask_box(image, box, style)
    return image


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _report(
    analysis: Analysis,
    destination: Path,
    options: RedactionOptions,
    faces: list[Track],
    people: list[Track],
    plans: list[FramePlan],
    subject: SubjectTracks | None,
) -> dict[str, Any]:
    source, info, models, times = analysis.source, analysis.info, analysis.models, analysis.times
    failed = {
        f: p.whole for f, p in enumerate(plans) if p.whole and not p.whole.startswith(SUBJECT_NOT_CLEAR)
    }
    subject_part: dict[str, Any] | None = None
    if subject is not None and options.subject is not None:
        clear = sum(1 for s in subject.states if s is SubjectState.CLEAR)
        subject_part = {
            "given": {"time": options.subject.time, "box": options.subject.box.as_list()},
            "anchor_frame": subject.anchor_frame,
            "matched": subject.matched,
            "tracks": [t.id for t in subject.tracks],
            "clear_frames": clear,
            "review": subject.spans(),
        }
    return {
        "format": REPORT_FORMAT,
        "tool": {"name": "cctv-gov", "version": _package_version("cctv-gov")},
        "input": {
            "file": source.name,
            "sha256": analysis.input_hash,
            "bytes": source.stat().st_size,
            **info.describe(),
        },
        "output": {
            "file": destination.name,
            "sha256": sha256_file(destination),
            "bytes": destination.stat().st_size,
            "container": "mp4",
            "codec": "h264 (libx264)",
            "audio": bool(options.keep_audio and info.has_audio),
        },
        "frames": len(plans),
        "models": [m.describe() for m in models.info],
        "model_error": models.error,
        "parameters": options.describe(),
        "mask_counts": [p.mask_count for p in plans],
        "tracks": [t.describe() for t in faces + people],
        "subject": subject_part,
        "fail_safe_frames": [
            {"frame": f, "seconds": round(times[f], 3), "reason": reason}
            for f, reason in sorted(failed.items())
        ],
        "manual_regions": [r.describe() for r in options.regions],
        "summary": {
            "frames_with_masks": sum(1 for p in plans if p.mask_count),
            "fail_safe_frames": len(failed),
            "face_tracks": len(faces),
            "person_tracks": len(people),
            "mode_note": "whole picture masked except the subject"
            if options.mode is Mode.ALL_BUT_SUBJECT
            else None,
        },
    }
