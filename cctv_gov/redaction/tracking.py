"""Offline tracking: link per-frame detections into tracks over the whole clip, then fill every frame a track
spans (interpolating across missed frames), hold it before its first and after its last detection, and pad each
box for the motion between detections. A face the detector misses for a frame or two stays masked.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cctv_gov.redaction.detectors import Detection
from cctv_gov.redaction.geometry import Box


@dataclass(slots=True)
class Track:
    id: int
    kind: str  # "face" or "person"
    detected: dict[int, Box] = field(default_factory=dict)  # frame -> box found by the detector
    scores: list[float] = field(default_factory=list)
    boxes: dict[int, Box] = field(default_factory=dict)  # frame -> box to mask (filled, held, padded)
    followed: set[int] = field(default_factory=set)  # detected frames found by following, not by a model
    _sorted: list[int] = field(default_factory=list, repr=False)

    @property
    def first(self) -> int:
        return next(iter(self.detected))  # detections are added in frame order

    @property
    def last(self) -> int:
        return next(reversed(self.detected))

    def frames(self) -> list[int]:
        """Detected frames in order (cached: detections are only added while linking)."""
        if len(self._sorted) != len(self.detected):
            self._sorted = sorted(self.detected)
        return self._sorted

    def velocity(self, frame: int) -> tuple[float, float]:
        """Centre motion per frame around ``frame``, from the nearest detections on either side."""
        frames = self.frames()
        i = bisect.bisect_right(frames, frame)
        if 0 < i < len(frames):
            a, b = frames[i - 1], frames[i]
        elif i >= 2:
            a, b = frames[i - 2], frames[i - 1]
        elif len(frames) >= 2:
            a, b = frames[0], frames[1]
        else:
            return (0.0, 0.0)
        (ax, ay), (bx, by) = self.detected[a].center, self.detected[b].center
        # A link across a long gap can join two different objects; no face or body moves more than its own
        # size per frame, so the estimate is capped there (it only sets padding and extrapolation).
        box = self.detected[b]
        vx = max(-box.width, min(box.width, (bx - ax) / (b - a)))
        vy = max(-box.height, min(box.height, (by - ay) / (b - a)))
        return (vx, vy)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "first_frame": min(self.boxes) if self.boxes else self.first,
            "last_frame": max(self.boxes) if self.boxes else self.last,
            "detected_frames": len(self.detected),
            "filled_frames": len(self.boxes) - len(set(self.boxes) & set(self.detected)),
            "max_score": round(max(self.scores), 3) if self.scores else None,
        }


def _predict(track: Track, frame: int) -> Box:
    last = track.last
    vx, vy = track.velocity(last)
    return track.detected[last].shifted(vx * (frame - last), vy * (frame - last))


def _match_scores(
    predicted: NDArray[np.float64], unseen: NDArray[np.float64], found: Sequence[Detection], strong: float
) -> NDArray[np.float64]:
    """Scores (tracks x detections) of linking each detection to each track; 0 means never.

    Overlap (IoU above 0.05) scores its IoU. Fast or small objects move further than their own size between
    detections, the more so the longer they went unseen: a strong candidate of a similar size is also
    accepted within a reach that grows with the gap (up to three box sides), a weak one only within one side,
    so that noise does not chain far-apart detections into one track. Such a link scores under any overlap,
    nearer first.
    """
    boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in found], dtype=np.float64)
    is_strong = np.array([d.score >= strong for d in found])
    p, b = predicted[:, None, :], boxes[None, :, :]
    inter_w = np.clip(np.minimum(p[..., 2], b[..., 2]) - np.maximum(p[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(p[..., 3], b[..., 3]) - np.maximum(p[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_p = (p[..., 2] - p[..., 0]) * (p[..., 3] - p[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_p + area_b - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    distance = np.hypot(
        (p[..., 0] + p[..., 2] - b[..., 0] - b[..., 2]) / 2,
        (p[..., 1] + p[..., 3] - b[..., 1] - b[..., 3]) / 2,
    )
    side = np.maximum(np.maximum(p[..., 2] - p[..., 0], p[..., 3] - p[..., 1]), 1.0)
    grow = np.minimum(3.0, 1 + 0.75 * np.maximum(0, unseen - 1))[:, None]
    reach = side * np.where(is_strong[None, :], grow, 1.0)
    ratio = np.divide(area_b, area_p, out=np.zeros_like(inter), where=area_p > 0)
    near = (distance < reach) & (ratio > 0.4) & (ratio < 2.5)
    return np.where(iou > 0.05, iou, np.where(near, 0.01 / (1 + distance), 0.0))


def link(
    detections: Mapping[int, Sequence[Detection]],
    evaluated: Iterable[int],
    kind: str,
    max_gap: int,
    first_id: int,
    strong: float = 0.0,
) -> list[Track]:
    """Greedy frame-to-frame association on predicted boxes; a track ends after ``max_gap`` frames unseen.
    Detections scoring under ``strong`` are weak: they join a track only close to where it is predicted."""
    tracks: list[Track] = []
    active: list[Track] = []
    next_id = first_id
    for frame in sorted(evaluated):
        active = [t for t in active if frame - t.last <= max_gap]
        found = list(detections.get(frame, ()))
        used_tracks: set[int] = set()
        used_dets: set[int] = set()
        if active and found:
            predicted = np.array([_predict(t, frame).as_tuple() for t in active], dtype=np.float64)
            unseen = np.array([frame - t.last for t in active], dtype=np.float64)
            scores = _match_scores(predicted, unseen, found, strong)
            rows, cols = np.nonzero(scores > 0)
            for k in np.argsort(-scores[rows, cols], kind="stable"):
                ti, di = int(rows[k]), int(cols[k])
                if ti in used_tracks or di in used_dets:
                    continue
                used_tracks.add(ti)
                used_dets.add(di)
                active[ti].detected[frame] = found[di].box
                active[ti].scores.append(found[di].score)
                if found[di].followed:
                    active[ti].followed.add(frame)
        for di, det in enumerate(found):
            if di not in used_dets:
                track = Track(
                    next_id, kind, {frame: det.box}, [det.score], followed={frame} if det.followed else set()
                )
                next_id += 1
                tracks.append(track)
                active.append(track)
    return tracks


def fill(track: Track, frame_count: int, hold: int, motion_pad: float, stride: int, pad: float) -> None:
    """Give ``track`` a mask box on every frame from ``first - hold`` to ``last + hold``.

    Detected frames keep their box; frames between detections are interpolated; the held frames before and
    after extrapolate the track's motion and keep growing. Each box is scaled by ``pad`` and widened by the
    motion over ``motion_pad + stride`` frames, so a fast face stays inside its mask between detections.
    """
    frames = sorted(track.detected)
    raw: dict[int, Box] = {}
    for a, b in itertools.pairwise(frames):
        for f in range(a, b):
            raw[f] = track.detected[a].lerp(track.detected[b], (f - a) / (b - a))
    raw[frames[-1]] = track.detected[frames[-1]]
    first, last = frames[0], frames[-1]
    v_first, v_last = track.velocity(first), track.velocity(last)
    start = track.detected[first]
    end = track.detected[last]
    for step in range(1, hold + 1):
        if first - step >= 0:
            moved = start.shifted(-v_first[0] * step, -v_first[1] * step)
            raw[first - step] = moved.union(start).scaled(1 + 0.02 * step)
        if last + step < frame_count:
            moved = end.shifted(v_last[0] * step, v_last[1] * step)
            raw[last + step] = moved.union(end).scaled(1 + 0.02 * step)
    for f, box in raw.items():
        vx, vy = track.velocity(f)
        reach = motion_pad + stride
        interpolated = 1.0 if f in track.detected else 1.1
        track.boxes[f] = box.scaled(pad * interpolated).grown(abs(vx) * reach, abs(vy) * reach)
