"""A ground-truth clip built from real imagery no one here drew, with every face's box known on every frame.

Faces: scikit-image's ``astronaut`` and ``camera`` and its 100-face ``lfw_subset``; ``messi5.jpg``,
``basketball1.png`` and ``basketball2.png`` from Debian's opencv-doc examples. Their face boxes below were
found with CenterFace and checked by eye on each image. Backgrounds: the frames of ``vtest.avi``, a real
pedestrian CCTV clip (opencv-doc). Each face crop moves along a straight path, changes scale, and may be hidden
for a few frames behind a flat occluder; the clip is written as MJPEG (each frame its own JPEG) so a test can
corrupt exactly one frame. Used by the tests (a small set) and by ``bench/redaction.py`` (the full set).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from cctv_gov.redaction.geometry import Box
from cctv_gov.redaction.plan import FramePlan

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
VTEST = OPENCV_DATA / "vtest.avi"
Image = NDArray[np.uint8]

# (image, face box x1, y1, x2, y2) in the image's own pixels.
NAMED_FACES = [
    ("astronaut", (181, 58, 270, 178)),
    ("camera", (202, 119, 258, 197)),
    ("messi5.jpg", (225, 93, 257, 135)),
    ("basketball1.png", (70, 93, 103, 134)),
    ("basketball1.png#2", (511, 62, 549, 125)),
    ("basketball2.png", (71, 94, 103, 133)),
    ("basketball2.png#2", (516, 63, 553, 125)),
]


def available() -> bool:
    return all((OPENCV_DATA / n).is_file() for n in ("vtest.avi", "messi5.jpg", "basketball1.png"))


def _source(name: str) -> Image:
    from skimage import data

    base = name.split("#")[0]
    if base == "astronaut":
        return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    if base == "camera":
        return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    image = cv2.imread(str(OPENCV_DATA / base))
    if image is None:
        raise FileNotFoundError(OPENCV_DATA / base)
    return image


@dataclass(slots=True)
class FaceCrop:
    name: str
    patch: Image
    face: Box  # inside the patch


def face_crops(lfw: int, exclude: tuple[str, ...] = ()) -> list[FaceCrop]:
    """Each named face with context around it (1.7x its box), then ``lfw`` faces of the LFW subset."""
    crops = []
    for name, (x1, y1, x2, y2) in NAMED_FACES:
        if name in exclude:
            continue
        image = _source(name)
        box = Box(x1, y1, x2, y2).scaled(1.7)
        px1, py1, px2, py2 = box.pixels(image.shape[1], image.shape[0]) or (0, 0, 1, 1)
        crops.append(
            FaceCrop(name, image[py1:py2, px1:px2].copy(), Box(x1 - px1, y1 - py1, x2 - px1, y2 - py1))
        )
    if lfw:
        from skimage import data

        faces = data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
        for i in range(lfw):
            gray = (faces[i % 100] * 255).astype(np.uint8)
            patch = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
            crops.append(FaceCrop(f"lfw_subset[{i % 100}]", patch, Box(0, 0, 25, 25)))
    return crops


@dataclass(slots=True)
class Actor:
    crop: FaceCrop
    first: int
    last: int
    start: tuple[float, float]  # face centre at ``first``
    end: tuple[float, float]
    height0: float  # face height in pixels at ``first``
    height1: float
    hidden: set[int] = field(default_factory=set)
    subject: bool = False

    def place(self, frame: int) -> tuple[float, Box]:
        """(scale of the patch, the face box in the frame) at ``frame``."""
        t = (frame - self.first) / max(1, self.last - self.first)
        cx = self.start[0] + (self.end[0] - self.start[0]) * t
        cy = self.start[1] + (self.end[1] - self.start[1]) * t
        height = self.height0 + (self.height1 - self.height0) * t
        scale = height / self.crop.face.height
        w, h = self.crop.face.width * scale, self.crop.face.height * scale
        return scale, Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


@dataclass(slots=True)
class Truth:
    path: Path
    fps: float
    frames: int
    width: int
    height: int
    actors: list[Actor]

    def faces(self, frame: int) -> Iterator[tuple[Actor, Box]]:
        """Visible faces on ``frame``, clipped to it."""
        for actor in self.actors:
            if actor.first <= frame <= actor.last and frame not in actor.hidden:
                _, box = actor.place(frame)
                clipped = Box(
                    max(0, box.x1), max(0, box.y1), min(self.width, box.x2), min(self.height, box.y2)
                )
                if clipped.area > 0:
                    yield actor, clipped

    def subject(self) -> Actor:
        return next(a for a in self.actors if a.subject)


def build(
    directory: Path,
    frames: int = 60,
    scale: float = 0.5,
    lanes: int = 3,
    lfw: int = 2,
    seed: int = 7,
    fps: float = 10.0,
    exclude: tuple[str, ...] = (),
) -> Truth:
    """Write ``truth.avi`` and return where every face is. ``scale`` shrinks vtest's 768x576 backgrounds."""
    rng = random.Random(seed)
    capture = cv2.VideoCapture(str(VTEST))
    backgrounds: list[Image] = []
    while len(backgrounds) < frames:
        ok, image = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        backgrounds.append(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    capture.release()
    height, width = backgrounds[0].shape[:2]
    lane = height / lanes
    crops = face_crops(lfw, exclude)
    actors: list[Actor] = []
    # Each lane holds one face at a time, so no two faces overlap; each face crosses its lane's width.
    per_lane = -(-len(crops) // lanes)
    span = frames // per_lane
    for i, crop in enumerate(crops):
        row, slot = i % lanes, i // lanes
        first, last = slot * span, min(frames - 1, (slot + 1) * span - 1)
        cy = lane * row + lane / 2
        h0 = rng.uniform(0.28, 0.42) * lane
        h1 = h0 * rng.uniform(0.75, 1.3)
        left_to_right = rng.random() < 0.5
        x0, x1 = width * 0.12, width * 0.88
        start, end = ((x0, cy), (x1, cy)) if left_to_right else ((x1, cy), (x0, cy))
        actor = Actor(
            crop, first, last, start, (end[0], cy + rng.uniform(-0.1, 0.1) * lane), h0, min(h1, 0.45 * lane)
        )
        if i % 2 == 1 and last - first > 12:  # a brief occlusion in every other path
            at = rng.randint(first + 4, last - 6)
            actor.hidden = {at, at + 1, at + 2}
        actors.append(actor)
    actors[0].subject = True
    path = directory / "truth.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    try:
        for f in range(frames):
            image = backgrounds[f].copy()
            for actor in actors:
                if actor.first <= f <= actor.last:
                    _paste(image, actor, f)
            writer.write(image)
    finally:
        writer.release()
    return Truth(path, fps, frames, width, height, actors)


def _paste(image: Image, actor: Actor, frame: int) -> None:
    scale, face = actor.place(frame)
    patch = actor.crop.patch
    resized = cv2.resize(
        patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    )
    ox = round(face.x1 - actor.crop.face.x1 * scale)
    oy = round(face.y1 - actor.crop.face.y1 * scale)
    h, w = image.shape[:2]
    x1, y1 = max(0, ox), max(0, oy)
    x2, y2 = min(w, ox + resized.shape[1]), min(h, oy + resized.shape[0])
    if x2 > x1 and y2 > y1:
        image[y1:y2, x1:x2] = resized[y1 - oy : y2 - oy, x1 - ox : x2 - ox]
    if frame in actor.hidden:
        # A flat grey occluder over the face and its surroundings: the face is not visible on this frame.
        cover = face.scaled(1.6).pixels(w, h)
        if cover is not None:
            image[cover[1] : cover[3], cover[0] : cover[2]] = (96, 104, 100)


# Scoring ------------------------------------------------------------------------------------------------


def masked_area(plan: FramePlan, width: int, height: int) -> NDArray[np.bool_]:
    """Pixels a plan leaves masked (what the output shows as masked)."""
    masked = np.zeros((height, width), dtype=bool)
    if plan.whole:
        masked[:] = True
        return masked
    if plan.keep is not None:
        masked[:] = True
        clear = plan.keep.pixels(width, height)
        if clear is not None:
            masked[clear[1] : clear[3], clear[0] : clear[2]] = False
    for box in [*plan.masks, *plan.regions]:
        bounds = box.pixels(width, height)
        if bounds is not None:
            masked[bounds[1] : bounds[3], bounds[0] : bounds[2]] = True
    return masked


@dataclass(slots=True)
class Score:
    third_party_boxes: int = 0
    masked_boxes: int = 0
    exposed_frames: list[int] = field(default_factory=list)
    subject_frames: int = 0
    subject_clear_frames: int = 0  # the middle of the subject's face (eyes, nose, mouth) wholly unmasked
    subject_untouched_frames: int = 0  # not one pixel of it masked
    false_mask_fraction: float = 0.0

    @property
    def recall(self) -> float:
        return self.masked_boxes / self.third_party_boxes if self.third_party_boxes else 1.0

    @property
    def subject_visibility(self) -> float:
        return self.subject_clear_frames / self.subject_frames if self.subject_frames else 1.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "face_recall": round(self.recall, 4),
            "third_party_faces": self.third_party_boxes,
            "exposed_frames": len(self.exposed_frames),
            "subject_visibility": round(self.subject_visibility, 4),
            "subject_untouched": round(self.subject_untouched_frames / max(1, self.subject_frames), 4),
            "false_mask_area": round(self.false_mask_fraction, 4),
        }


def score(truth: Truth, plans: list[FramePlan], subject_is_third_party: bool = False) -> Score:
    """Exact exposure: a third-party face counts as masked on a frame only if every pixel of it is masked."""
    result = Score()
    false_area = 0.0
    for f, plan in enumerate(plans[: truth.frames]):
        masked = masked_area(plan, truth.width, truth.height)
        faces_here = np.zeros_like(masked)
        exposed = False
        for actor, box in truth.faces(f):
            x1, y1, x2, y2 = box.pixels(truth.width, truth.height) or (0, 0, 0, 0)
            faces_here[y1:y2, x1:x2] = True
            covered = bool(masked[y1:y2, x1:x2].all())
            if actor.subject and not subject_is_third_party:
                result.subject_frames += 1
                ix1, iy1, ix2, iy2 = box.scaled(0.6).pixels(truth.width, truth.height) or (0, 0, 0, 0)
                result.subject_clear_frames += not masked[iy1:iy2, ix1:ix2].any()
                result.subject_untouched_frames += not masked[y1:y2, x1:x2].any()
                continue
            result.third_party_boxes += 1
            result.masked_boxes += covered
            exposed = exposed or not covered
        if exposed:
            result.exposed_frames.append(f)
        false_area += float((masked & ~faces_here).mean())
    result.false_mask_fraction = false_area / max(1, len(plans))
    return result
