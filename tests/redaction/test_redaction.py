"""Redaction on a ground-truth clip: every mode, the subject, manual regions, the fail-safe and the report."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cctv_gov.cli import main
from cctv_gov.redaction.detectors import CenterFace, Detection, centerface_path
from cctv_gov.redaction.geometry import Box
from cctv_gov.redaction.masking import mask_box
from cctv_gov.redaction.plan import SubjectState
from cctv_gov.redaction.schemas import (
    MaskStyle,
    Mode,
    RedactionError,
    RedactionOptions,
    Region,
    Subject,
    Tuning,
    every,
)
from cctv_gov.redaction.service import Analysis, Models, analyse, load_models, redact, render
from tests.redaction import groundtruth as gt


def _subject(truth: gt.Truth) -> Subject:
    actor = truth.subject()
    frame = actor.first + 5
    _, face = actor.place(frame)
    return Subject(frame / truth.fps, face.scaled(1.3))


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_faces_mode_masks_every_third_party_face(truth: gt.Truth, analysis: Analysis, out: Path) -> None:
    result = render(analysis, out, RedactionOptions(mode=Mode.FACES))
    score = gt.score(truth, result.plans, subject_is_third_party=True)
    assert score.third_party_boxes > 100
    assert score.exposed_frames == []
    assert score.recall == 1.0
    assert score.false_mask_fraction < 0.4  # the clip's real passers-by are masked too, outside the truth


def test_faces_mode_keeps_the_subject_clear(truth: gt.Truth, analysis: Analysis, out: Path) -> None:
    result = render(analysis, out, RedactionOptions(mode=Mode.FACES, subject=_subject(truth)))
    score = gt.score(truth, result.plans)
    assert score.exposed_frames == []
    assert score.subject_frames >= 15
    assert score.subject_visibility >= 0.95
    assert result.subject is not None
    assert result.subject.matched


def test_people_mode_masks_whole_people_and_faces(truth: gt.Truth, analysis: Analysis, out: Path) -> None:
    result = render(analysis, out, RedactionOptions(mode=Mode.PEOPLE))
    score = gt.score(truth, result.plans, subject_is_third_party=True)
    assert score.exposed_frames == []
    # Every person the detector found is under a mask on every frame it was found.
    found = 0
    for frame, detections in analysis.people.items():
        masked = gt.masked_area(result.plans[frame], truth.width, truth.height)
        for det in detections:
            x1, y1, x2, y2 = det.box.pixels(truth.width, truth.height) or (0, 0, 0, 0)
            found += 1
            assert masked[y1:y2, x1:x2].all(), (frame, det.box)
    assert found > 20


def test_all_but_subject_shows_only_the_subject(truth: gt.Truth, analysis: Analysis, out: Path) -> None:
    result = render(analysis, out, RedactionOptions(mode=Mode.ALL_BUT_SUBJECT, subject=_subject(truth)))
    score = gt.score(truth, result.plans)
    assert score.exposed_frames == []
    assert score.subject_visibility >= 0.95
    assert score.false_mask_fraction > 0.9  # everything but the subject
    # Where the subject is not in the picture the whole frame is masked and listed for review.
    actor = truth.subject()
    after = actor.last + 3
    assert result.plans[after].whole
    assert result.plans[after].subject is SubjectState.LOST
    review = result.report["subject"]["review"]
    assert any(span["first_frame"] <= after <= span["last_frame"] for span in review)


class DropFrames:
    """A real detector, with its detections on some frames thrown away (a detector that misses).

    The analysis calls a detector on every ``step``-th frame, in order, so call k looks at frame k * step."""

    def __init__(self, model: Any, frames: set[int], step: int) -> None:
        self._model = model
        self._frames = frames
        self._step = step
        self._calls = 0
        self.info = model.info

    def detect(self, frame_bgr: np.ndarray, threshold: float, *args: int) -> list[Detection]:
        frame = self._calls * self._step
        self._calls += 1
        found: list[Detection] = self._model.detect(frame_bgr, threshold, *args)
        return [] if frame in self._frames else found


def _steps(truth: gt.Truth) -> tuple[int, int]:
    tuning = Tuning()
    return every(tuning.face_interval_seconds, truth.fps), every(tuning.person_interval_seconds, truth.fps)


def test_a_face_missed_for_two_frames_stays_masked(truth: gt.Truth, analysis: Analysis, out: Path) -> None:
    # The face model looks every 0.3 s (every third frame at 10 fps): two misses in a row leave eight frames
    # with no face from the model at all.
    face_step, _ = _steps(truth)
    missed = {13 * face_step, 14 * face_step}
    real = load_models(Tuning())
    assert real.faces is not None
    assert isinstance(real.faces, CenterFace)
    models = Models(DropFrames(real.faces, missed, face_step), real.people, None, real.info)
    blind = analyse(truth.path, Tuning(), models=models)
    assert all(d.followed for f in missed for d in blind.faces.get(f, []))  # nothing from the model there
    assert all(any(not d.followed for d in analysis.faces[f]) for f in missed)  # the real model did see faces
    result = render(blind, out, RedactionOptions(mode=Mode.FACES))
    score = gt.score(truth, result.plans, subject_is_third_party=True)
    assert score.exposed_frames == []
    assert all(any(True for _ in truth.faces(f)) for f in missed)


def test_subject_lost_or_uncertain_is_masked_and_listed(truth: gt.Truth, out: Path) -> None:
    # Both detectors miss everything on frames 5-16: beyond the subject gap (3 frames) from the detections on
    # either side, the subject must be masked and listed.
    lost = set(range(5, 17))
    face_step, person_step = _steps(truth)
    real = load_models(Tuning())
    assert real.faces is not None
    assert real.people is not None
    people = DropFrames(real.people, lost, person_step)
    models = Models(DropFrames(real.faces, lost, face_step), people, None, real.info)  # type: ignore[arg-type]
    blind = analyse(truth.path, Tuning(), models=models)
    result = render(blind, out, RedactionOptions(mode=Mode.ALL_BUT_SUBJECT, subject=_subject(truth)))
    assert result.subject is not None
    unclear = {f for f in lost if result.subject.states[f] is not SubjectState.CLEAR}
    assert len(unclear) >= 3  # beyond the subject gap, the subject is no longer clear
    for f in unclear:
        assert result.plans[f].whole  # all-but-subject: nothing shown
    spans = result.report["subject"]["review"]
    assert any(span["first_frame"] <= min(unclear) <= span["last_frame"] for span in spans)


def test_manual_regions_are_masked_on_their_frames_only(
    truth: gt.Truth, analysis: Analysis, out: Path
) -> None:
    static = Region(Box.from_xywh(0, 0, 80, 60))
    timed = Region(Box.from_xywh(300, 500, 100, 50), start=1.0, end=2.0)
    result = render(analysis, out, RedactionOptions(regions=(static, timed)))
    for f, plan in enumerate(result.plans):
        seconds = analysis.times[f]
        assert static.box in plan.regions
        assert (timed.box in plan.regions) == (1.0 <= seconds <= 2.0)
    frames = _decode(out)
    source = cv2.VideoCapture(str(truth.path))
    ok, first = source.read()
    assert ok
    region = frames[0][0:60, 0:80].astype(float)
    original = first[0:60, 0:80].astype(float)
    assert np.abs(region - original).mean() > 3  # changed
    assert len(np.unique(region.reshape(-1, 3)[:, 1] // 8)) <= 40  # a few flat blocks, not a picture
    report = result.report
    assert report["manual_regions"][1] == {
        "box": [300.0, 500.0, 400.0, 550.0],
        "start": 1.0,
        "end": 2.0,
        "label": "",
    }


def test_a_corrupt_frame_is_masked_whole(truth: gt.Truth, tmp_path: Path) -> None:
    data = bytearray(truth.path.read_bytes())
    starts = []
    i = data.find(b"\xff\xd8\xff")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\xff\xd8\xff", i + 3)
    data[starts[10] : starts[10] + 600] = b"\x00" * 600  # frame 10's JPEG header is gone
    broken = tmp_path / "broken.avi"
    broken.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    result = redact(broken, out, RedactionOptions())
    assert [e["frame"] for e in result.report["fail_safe_frames"]] == [10]
    frames = _decode(out)
    assert len(frames) == truth.frames
    assert frames[10].max() <= 20  # black (allowing for the encoder)
    assert frames[11].mean() > 40


def test_a_missing_model_masks_every_frame(truth: gt.Truth, tmp_path: Path) -> None:
    models = load_models(Tuning(), face_model=tmp_path / "missing.onnx")
    assert models.faces is None
    assert models.error
    out = tmp_path / "out.mp4"
    result = redact(truth.path, out, RedactionOptions(), models=models)
    assert len(result.report["fail_safe_frames"]) == truth.frames
    assert result.report["model_error"]
    frames = _decode(out)
    assert len(frames) == truth.frames
    assert max(int(f.max()) for f in frames) <= 20


def test_report_hashes_and_the_master_is_untouched(truth: gt.Truth, tmp_path: Path) -> None:
    before = hashlib.sha256(truth.path.read_bytes()).hexdigest()
    out, report_path, sheet = tmp_path / "o.mp4", tmp_path / "r.json", tmp_path / "s.png"
    result = redact(truth.path, out, RedactionOptions(), report_path=report_path, sheet_path=sheet)
    report = json.loads(report_path.read_text())
    assert report == json.loads(json.dumps(result.report))
    assert report["input"]["sha256"] == before == hashlib.sha256(truth.path.read_bytes()).hexdigest()
    assert report["output"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    model = report["models"][0]
    assert model["name"] == "CenterFace"
    assert model["file_sha256"] == hashlib.sha256(centerface_path().read_bytes()).hexdigest()
    assert report["parameters"]["mode"] == "faces"
    assert "tuning" in report["parameters"]
    assert len(report["mask_counts"]) == truth.frames
    assert report["tracks"]
    assert report["contact_sheet"]["sha256"] == hashlib.sha256(sheet.read_bytes()).hexdigest()
    assert cv2.imread(str(sheet)) is not None
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert not container.streams.audio
    assert len(_decode(out)) == truth.frames


def test_default_mask_cannot_be_sharpened_back() -> None:
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[58:178, 181:270].copy()
    masked = face.copy()
    assert RedactionOptions().style is MaskStyle.PIXELATE
    mask_box(masked, Box(0, 0, face.shape[1], face.shape[0]), MaskStyle.PIXELATE)
    sharpened = cv2.filter2D(masked, -1, np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32))

    def detail(image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(float)
        return (gray - cv2.GaussianBlur(gray, (0, 0), 2)).ravel()

    correlation = np.corrcoef(detail(face), detail(sharpened))[0, 1]
    assert abs(correlation) < 0.2
    assert len(np.unique(masked.reshape(-1, 3), axis=0)) <= 6 * 6


@pytest.mark.parametrize(
    ("build", "code"),
    [
        (lambda: Subject.parse("1,2"), "invalid_subject"),
        (lambda: Subject.parse("1,2,3,0,5"), "invalid_subject"),
        (lambda: Region.parse("1,2,3"), "invalid_region"),
        (lambda: Region.parse("1,2,3,4@5"), "invalid_region"),
        (lambda: Region.parse("1,2,3,4@5-2"), "invalid_region"),
        (lambda: RedactionOptions(mode=Mode.ALL_BUT_SUBJECT), "subject_required"),
        (lambda: RedactionOptions(crf=99), "invalid_option"),
    ],
)
def test_bad_options_are_refused(build: object, code: str) -> None:
    with pytest.raises(RedactionError) as err:
        build()  # type: ignore[operator]
    assert err.value.code == code


def test_bad_paths_are_refused_before_anything_is_written(truth: gt.Truth, tmp_path: Path) -> None:
    copy = tmp_path / "master.avi"
    shutil.copy(truth.path, copy)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep")
    cases = [
        (copy, copy, "output_is_input"),
        (copy, existing, "output_exists"),
        (copy, tmp_path / "out.avi", "output_not_mp4"),
        (copy, tmp_path / "nope" / "o.mp4", "output_dir_missing"),
        (tmp_path / "absent.avi", tmp_path / "o.mp4", "input_not_found"),
    ]
    for source, destination, code in cases:
        with pytest.raises(RedactionError) as err:
            redact(source, destination, RedactionOptions())
        assert err.value.code == code
    assert existing.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.mp4", "master.avi"]
    not_video = tmp_path / "notes.txt"
    not_video.write_text("not a video")
    with pytest.raises(RedactionError) as err:
        redact(not_video, tmp_path / "o.mp4", RedactionOptions())
    assert err.value.code == "unreadable_video"
    assert not (tmp_path / "o.mp4").exists()


def test_cli_redacts_with_report_and_contact_sheet(truth: gt.Truth, tmp_path: Path) -> None:
    out, report, sheet = tmp_path / "o.mp4", tmp_path / "r.json", tmp_path / "s.png"
    subject = _subject(truth)
    b = subject.box
    result = CliRunner().invoke(
        main,
        [
            "redact",
            str(truth.path),
            str(out),
            "--mode",
            "all-but-subject",
            "--subject",
            f"{subject.time},{b.x1},{b.y1},{b.width},{b.height}",
            "--region",
            "0,0,50,50@0-1",
            "--report",
            str(report),
            "--contact-sheet",
            str(sheet),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert summary["frames"] == truth.frames
    assert summary["subject_review_spans"] >= 1
    assert json.loads(report.read_text())["parameters"]["mode"] == "all-but-subject"
    assert sheet.stat().st_size > 1000
    refused = CliRunner().invoke(main, ["redact", str(truth.path), str(out)])
    assert refused.exit_code != 0
    assert "output_exists" in refused.output


def _clip_with_audio(path: Path, frames: int = 20) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        for i in range(frames):
            image = np.full((240, 320, 3), 40 + i * 5, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        samples = (np.sin(np.arange(16000 * frames // 10) * 2 * np.pi * 440 / 16000) * 0.3).astype(np.float32)
        chunk = 1024
        for start in range(0, len(samples), chunk):
            frame = av.AudioFrame.from_ndarray(
                samples[None, start : start + chunk], format="flt", layout="mono"
            )
            frame.sample_rate = 16000
            frame.pts = start
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)


def test_audio_is_dropped_unless_kept(tmp_path: Path) -> None:
    source = tmp_path / "with_audio.mp4"
    _clip_with_audio(source)
    with av.open(str(source)) as container:
        assert container.streams.audio
    dropped, kept = tmp_path / "dropped.mp4", tmp_path / "kept.mp4"
    report = redact(source, dropped, RedactionOptions()).report
    assert report["output"]["audio"] is False
    with av.open(str(dropped)) as container:
        assert not container.streams.audio
    report = redact(source, kept, RedactionOptions(keep_audio=True)).report
    assert report["output"]["audio"] is True
    with av.open(str(kept)) as container:
        assert container.streams.audio
        packets = sum(1 for p in container.demux(container.streams.audio[0]) if p.size)
    assert packets > 10
    assert len(_decode(kept)) == 20


def test_the_service_cli_starts_without_the_redaction_libraries() -> None:
    # scripts/serve installs cctv-gov without the redaction extra: its CLI must not import OpenCV or FFmpeg.
    import subprocess
    import sys

    code = (
        "import sys, cctv_gov.cli; print(sorted(m for m in ('cv2', 'av', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
