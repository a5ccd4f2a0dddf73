"""Follow faces between and after detector hits by their look, so a face the model loses for a moment (a
head turning side-on, motion blur) keeps its track.

Every face the model finds with a strong score leaves a template: its grey patch from that frame. On every
frame, each template not refreshed by the model on that frame is searched for near where its motion puts it
(normalised cross-correlation on a patch scaled to at most ``MATCH_SIDE`` pixels). A good match is reported as
a weak detection, which the tracker links like any other. Templates change only on model hits, so a follow
cannot drift onto the background for longer than ``follow_frames`` after the last hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from cctv_gov.redaction.detectors import Detection
from cctv_gov.redaction.geometry import Box

Gray = NDArray[np.uint8]
MATCH_SIDE = 24  # templates are matched at this size at most: cheap for large faces, exact enough for masks
MIN_CORRELATION = 0.6


@dataclass(slots=True)
class _Template:
    box: Box
    patch: Gray
    hit: int  # frame of the last model hit
    at: int  # frame of the last known position
    vx: float = 0.0
    vy: float = 0.0


class Follower:
    def __init__(self, follow_frames: int, strong: float, score: float) -> None:
        self._follow = follow_frames
        self._strong = strong
        self._score = score
        self._templates: list[_Template] = []

    def update(self, frame: int, gray: Gray, detections: list[Detection] | None) -> list[Detection]:
        """Feed one frame (``detections`` is None where the model did not run); returns the follows."""
        refreshed: set[int] = set()
        if detections:
            for det in detections:
                index = self._match(det.box)
                if index is not None:
                    self._refresh(self._templates[index], frame, gray, det.box)
                    refreshed.add(index)
                elif det.score >= self._strong:
                    patch = _crop(gray, det.box)
                    if patch is not None:
                        self._templates.append(_Template(det.box, patch, frame, frame))
                        refreshed.add(len(self._templates) - 1)
        self._templates = [
            t for i, t in enumerate(self._templates) if i in refreshed or frame - t.hit <= self._follow
        ]
        followed: list[Detection] = []
        for template in self._templates:
            if template.at == frame:
                continue
            box = self._search(template, frame, gray)
            if box is not None:
                followed.append(Detection(box, self._score, followed=True))
        return followed

    def _match(self, box: Box) -> int | None:
        best, best_iou = None, 0.3
        for i, t in enumerate(self._templates):
            iou = t.box.iou(box)
            if iou > best_iou:
                best, best_iou = i, iou
        return best

    def _refresh(self, template: _Template, frame: int, gray: Gray, box: Box) -> None:
        if frame > template.at:
            (ax, ay), (bx, by) = template.box.center, box.center
            template.vx, template.vy = (bx - ax) / (frame - template.at), (by - ay) / (frame - template.at)
        patch = _crop(gray, box)
        if patch is not None:
            template.patch = patch
        template.box, template.hit, template.at = box, frame, frame

    def _search(self, template: _Template, frame: int, gray: Gray) -> Box | None:
        steps = frame - template.at
        guess = template.box.shifted(template.vx * steps, template.vy * steps)
        reach = max(template.box.width, template.box.height) * 0.75 + max(abs(template.vx), abs(template.vy))
        height, width = gray.shape[:2]
        area = guess.grown(reach, reach).pixels(width, height)
        if area is None:
            return None
        x1, y1, x2, y2 = area
        scale = min(1.0, MATCH_SIDE / max(template.patch.shape[:2]))
        patch = _resize(template.patch, scale)
        region = _resize(gray[y1:y2, x1:x2], scale)
        if region.shape[0] < patch.shape[0] or region.shape[1] < patch.shape[1] or patch.size < 16:
            return None
        result = cv2.matchTemplate(region, patch, cv2.TM_CCOEFF_NORMED)
        _, best, _, (mx, my) = cv2.minMaxLoc(result)
        if best < MIN_CORRELATION:
            return None
        found = Box.from_xywh(x1 + mx / scale, y1 + my / scale, template.box.width, template.box.height)
        (ax, ay), (bx, by) = template.box.center, found.center
        template.vx, template.vy = (bx - ax) / steps, (by - ay) / steps
        template.box, template.at = found, frame
        return found


def _crop(gray: Gray, box: Box) -> Gray | None:
    bounds = box.pixels(gray.shape[1], gray.shape[0])
    if bounds is None:
        return None
    x1, y1, x2, y2 = bounds
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    return gray[y1:y2, x1:x2].copy()


def _resize(image: Gray, scale: float) -> Gray:
    if scale >= 1.0:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
