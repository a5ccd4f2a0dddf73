"""Axis-aligned boxes in frame pixels: (x1, y1) inclusive top left, (x2, y2) exclusive bottom right."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Box:
    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        return cls(x, y, x + w, y + h)

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def intersection(self, other: Box) -> float:
        w = min(self.x2, other.x2) - max(self.x1, other.x1)
        h = min(self.y2, other.y2) - max(self.y1, other.y1)
        return w * h if w > 0 and h > 0 else 0.0

    def iou(self, other: Box) -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def overlap_of_smaller(self, other: Box) -> float:
        smaller = min(self.area, other.area)
        return self.intersection(other) / smaller if smaller > 0 else 0.0

    def contains_point(self, x: float, y: float) -> bool:
        return self.x1 <= x < self.x2 and self.y1 <= y < self.y2

    def scaled(self, factor: float) -> Box:
        """The box grown (or shrunk) about its centre by ``factor`` on each side's length."""
        cx, cy = self.center
        hw, hh = self.width * factor / 2, self.height * factor / 2
        return Box(cx - hw, cy - hh, cx + hw, cy + hh)

    def grown(self, dx: float, dy: float) -> Box:
        return Box(self.x1 - dx, self.y1 - dy, self.x2 + dx, self.y2 + dy)

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x1, other.x1), min(self.y1, other.y1), max(self.x2, other.x2), max(self.y2, other.y2)
        )

    def lerp(self, other: Box, t: float) -> Box:
        return Box(
            self.x1 + (other.x1 - self.x1) * t,
            self.y1 + (other.y1 - self.y1) * t,
            self.x2 + (other.x2 - self.x2) * t,
            self.y2 + (other.y2 - self.y2) * t,
        )

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int] | None:
        """Integer pixel bounds clipped to a frame, rounded outwards; None when nothing is left."""
        x1 = max(0, int(self.x1 // 1))
        y1 = max(0, int(self.y1 // 1))
        x2 = min(width, int(-(-self.x2 // 1)))
        y2 = min(height, int(-(-self.y2 // 1)))
        if x2 <= x1 or y2 <= y1:
            return None
        return x1, y1, x2, y2

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def as_list(self) -> list[float]:
        return [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)]


def head_region(person: Box) -> Box:
    """Where a standing person's head is in a pedestrian box: the top fifth, the middle half, padded.

    HOG's people boxes carry margins around the body; the head lies in the upper quarter of the box and within
    its middle half. The region is generous on purpose: masking some shoulder is the safe failure.
    """
    w, h = person.width, person.height
    cx = (person.x1 + person.x2) / 2
    return Box(cx - 0.3 * w, person.y1 - 0.02 * h, cx + 0.3 * w, person.y1 + 0.3 * h)
