"""Mask styles applied in place to boxes of a BGR frame."""

from __future__ import annotations

import cv2

from cctv_gov.redaction.detectors import Image
from cctv_gov.redaction.geometry import Box
from cctv_gov.redaction.schemas import MaskStyle

PIXELATE_BLOCKS = 6  # at most this many blocks across a mask's longer side
PIXELATE_MIN_BLOCK = 12  # pixels; a face smaller than one block becomes one flat colour


def mask_box(image: Image, box: Box, style: MaskStyle) -> bool:
    """Mask ``box`` (clipped to the frame); False if nothing of it lies in the frame."""
    bounds = box.pixels(image.shape[1], image.shape[0])
    if bounds is None:
        return False
    x1, y1, x2, y2 = bounds
    mask_pixels(image, x1, y1, x2, y2, style)
    return True


def mask_pixels(image: Image, x1: int, y1: int, x2: int, y2: int, style: MaskStyle) -> None:
    region = image[y1:y2, x1:x2]
    h, w = region.shape[:2]
    if style is MaskStyle.SOLID:
        region[:] = 0
    elif style is MaskStyle.PIXELATE:
        block = max(PIXELATE_MIN_BLOCK, -(-max(w, h) // PIXELATE_BLOCKS))
        small = cv2.resize(
            region, (max(1, -(-w // block)), max(1, -(-h // block))), interpolation=cv2.INTER_AREA
        )
        region[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    else:
        # Blur a 1/8 copy hard and scale it back: a kernel of about a third of the box for the cost of a small one.
        small = cv2.resize(region, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
        sigma = max(2.0, max(small.shape[:2]) / 3)
        small = cv2.GaussianBlur(small, (0, 0), sigma)
        region[:] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def outline(image: Image, box: Box, color: tuple[int, int, int], thickness: int = 2) -> None:
    bounds = box.pixels(image.shape[1], image.shape[0])
    if bounds is not None:
        x1, y1, x2, y2 = bounds
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, thickness)
