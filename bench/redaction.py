"""Redaction benchmark: cctv-gov's redaction against the deface CLI on the same clips in the same run.

Speed: frames per second of ``redact`` (faces mode, defaults) and of ``deface`` (default settings, installed in
the benchmark's own virtual environment under .bench/) on 720p and 1080p clips made from vtest.avi (a real CCTV
clip, scaled up). Quality: both run on the full ground-truth set (every face of tests/redaction/groundtruth.py,
side-on heads included, 20 LFW faces); a face counts as masked on a frame only if every pixel of its box is
masked. For deface its masks are read from its output (``--replacewith solid``: black pixels); for cctv-gov from
its plans. Ends with one JSON line of every figure and its target.

    .venv/bin/python bench/redaction.py [--frames 120] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import av
import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cctv_gov.redaction.schemas import Mode, RedactionOptions  # noqa: E402
from cctv_gov.redaction.service import redact  # noqa: E402
from tests.redaction import groundtruth as gt  # noqa: E402

DEFACE_ENV = ROOT / ".bench" / "deface-venv"


def deface_bin() -> Path:
    exe = DEFACE_ENV / "bin" / "deface"
    if not exe.exists():
        print("== installing deface 1.5.0 into", DEFACE_ENV.relative_to(ROOT), flush=True)
        venv.create(DEFACE_ENV, with_pip=True)
        subprocess.run([str(DEFACE_ENV / "bin" / "pip"), "install", "-q", "deface==1.5.0"], check=True)
    return exe


def scaled_clip(directory: Path, width: int, height: int, frames: int) -> Path:
    capture = cv2.VideoCapture(str(gt.VTEST))
    path = directory / f"vtest_{height}p.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for _ in range(frames):
            ok, image = capture.read()
            if not ok:
                break
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def run_deface(exe: Path, source: Path, out: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(exe), str(source), "-o", str(out), *extra], check=True, capture_output=True)
    return time.perf_counter() - started


def run_ours(source: Path, out: Path) -> tuple[float, object]:
    started = time.perf_counter()
    result = redact(source, out, RedactionOptions(mode=Mode.FACES), overwrite=True)
    return time.perf_counter() - started, result


def deface_score(truth: gt.Truth, output: Path) -> gt.Score:
    """Masks read back from deface's output: black pixels (solid replacement) count as masked."""
    score = gt.Score()
    with av.open(str(output)) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    for f, image in enumerate(frames[: truth.frames]):
        masked = image.max(axis=2) <= 24
        exposed = False
        for _actor, box in truth.faces(f):
            x1, y1, x2, y2 = box.pixels(truth.width, truth.height) or (0, 0, 0, 0)
            score.third_party_boxes += 1
            covered = bool(masked[y1:y2, x1:x2].all())
            score.masked_boxes += covered
            exposed = exposed or not covered
        if exposed:
            score.exposed_frames.append(f)
    return score


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--quick", action="store_true", help="40 frames, for a smoke run")
    args = parser.parse_args()
    frames = 40 if args.quick else args.frames
    if not gt.available():
        sys.exit("needs Debian's opencv-doc examples (apt-get install opencv-doc)")
    exe = deface_bin()
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    figures: dict[str, float | int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, (w, h) in {"720p": (1280, 720), "1080p": (1920, 1080)}.items():
            clip = scaled_clip(work, w, h, frames)
            ours_s, _ = run_ours(clip, work / f"ours_{label}.mp4")
            deface_s = run_deface(exe, clip, work / f"deface_{label}.mp4")
            figures[f"ours_fps_{label}"] = round(frames / ours_s, 2)
            figures[f"deface_fps_{label}"] = round(frames / deface_s, 2)
            figures[f"ratio_{label}"] = round(deface_s / ours_s, 2)
            print(
                f"{label}: cctv-gov {frames / ours_s:.2f} fps, deface {frames / deface_s:.2f} fps, "
                f"ratio {deface_s / ours_s:.2f}",
                flush=True,
            )
        truth = gt.build(
            work, frames=300 if not args.quick else 60, scale=1.0, lfw=20 if not args.quick else 2
        )
        _, result = run_ours(truth.path, work / "ours_truth.mp4")
        ours = gt.score(truth, result.plans, subject_is_third_party=True)  # type: ignore[attr-defined]
        # The data subject kept clear: the same analysis rendered with the subject named, in both modes.
        from cctv_gov.redaction.schemas import Subject
        from cctv_gov.redaction.service import analyse, render

        actor = truth.subject()
        _, face = actor.place(actor.first + 5)
        subject = Subject((actor.first + 5) / truth.fps, face.scaled(1.3))
        found = analyse(truth.path, RedactionOptions().tuning)
        for mode in (Mode.FACES, Mode.ALL_BUT_SUBJECT):
            plans = render(
                found, work / "subject.mp4", RedactionOptions(mode=mode, subject=subject), overwrite=True
            )
            kept = gt.score(truth, plans.plans)
            key = mode.value.replace("-", "_")
            figures[f"subject_visibility_{key}"] = round(kept.subject_visibility, 4)
            figures[f"subject_untouched_{key}"] = round(
                kept.subject_untouched_frames / max(1, kept.subject_frames), 4
            )
            figures[f"exposed_frames_{key}_with_subject"] = len(kept.exposed_frames)
            print(f"subject in {mode.value}: {kept.as_dict()}", flush=True)
        run_deface(exe, truth.path, work / "deface_truth.mp4", "--replacewith", "solid")
        theirs = deface_score(truth, work / "deface_truth.mp4")
        print(f"ground truth ({truth.frames} frames, {len(truth.actors)} faces): cctv-gov {ours.as_dict()}")
        print(f"ground truth: deface recall {theirs.recall:.4f}, exposed frames {len(theirs.exposed_frames)}")
        figures.update(
            {
                "ours_recall": round(ours.recall, 4),
                "ours_exposed_frames": len(ours.exposed_frames),
                "ours_false_mask_area": round(ours.false_mask_fraction, 4),
                "deface_recall": round(theirs.recall, 4),
                "deface_exposed_frames": len(theirs.exposed_frames),
            }
        )
    # vtest.avi itself, people mode: the share of frames with people found in which every one is masked.
    with tempfile.TemporaryDirectory() as tmp:
        from cctv_gov.redaction.schemas import Tuning
        from cctv_gov.redaction.service import analyse, render

        found = analyse(gt.VTEST, Tuning())
        people = render(found, Path(tmp) / "vtest.mp4", RedactionOptions(mode=Mode.PEOPLE))
        with_people = all_masked = 0
        for frame, detections in found.people.items():
            if not detections:
                continue
            with_people += 1
            info = found.info
            masked = gt.masked_area(people.plans[frame], info.width, info.height)
            all_masked += all(
                masked[y1:y2, x1:x2].all()
                for d in detections
                for x1, y1, x2, y2 in [d.box.pixels(info.width, info.height) or (0, 0, 0, 0)]
            )
        share = all_masked / with_people if with_people else 1.0
        print(
            f"vtest.avi people mode: {all_masked}/{with_people} frames with people found have every one masked"
        )
        figures["vtest_people_frames_all_masked"] = round(share, 4)
    targets = {
        "ratio_720p": ">= 2.0",
        "ratio_1080p": ">= 2.0",
        "ours_recall": ">= deface_recall",
        "ours_exposed_frames": "== 0",
        "subject_visibility_faces": ">= 0.95",
        "subject_visibility_all_but_subject": ">= 0.95",
        "ours_fps_720p": ">= 25 (stretch)",
        "vtest_people_frames_all_masked": "== 1.0",
    }
    print(json.dumps({"bench": "redaction", "frames": frames, "figures": figures, "targets": targets}))


if __name__ == "__main__":
    main()
