"""The redaction report (JSON) and the contact sheet (PNG) a General Manager reviews before a disclosure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from cctv_gov.redaction.detectors import Image
from cctv_gov.redaction.masking import outline
from cctv_gov.redaction.plan import FramePlan, SubjectState

SHEET_COLUMNS = 4
THUMB_WIDTH = 360
RED = (0, 0, 255)
GREEN = (0, 200, 0)
YELLOW = (0, 220, 255)
MAGENTA = (255, 0, 255)


def sample_frames(plans: Sequence[FramePlan], count: int = 12, extra: int = 4) -> list[int]:
    """Evenly spaced frames, plus the first frames of fail-safe and subject-not-clear runs (for review)."""
    total = len(plans)
    if total == 0:
        return []
    chosen = {round(i * (total - 1) / max(1, count - 1)) for i in range(min(count, total))}
    flagged = [f for f, p in enumerate(plans) if p.whole and (f == 0 or not plans[f - 1].whole)]
    lost = [
        f
        for f, p in enumerate(plans)
        if p.subject not in (None, SubjectState.CLEAR)
        and (f == 0 or plans[f - 1].subject is SubjectState.CLEAR)
    ]
    chosen.update(flagged[:extra])
    chosen.update(lost[:extra])
    return sorted(chosen)


def annotate(image: Image, plan: FramePlan, frame: int, seconds: float) -> Image:
    """A thumbnail of the redacted frame with every mask outlined and the frame's number and time."""
    shown = image.copy()
    for box in plan.masks:
        outline(shown, box, RED)
    for box in plan.regions:
        outline(shown, box, YELLOW)
    if plan.keep is not None:
        outline(shown, plan.keep, GREEN, 3)
    if plan.whole:
        cv2.rectangle(shown, (0, 0), (shown.shape[1] - 1, shown.shape[0] - 1), MAGENTA, 6)
    scale = THUMB_WIDTH / shown.shape[1]
    thumb = np.asarray(
        cv2.resize(shown, (THUMB_WIDTH, max(1, round(shown.shape[0] * scale))), interpolation=cv2.INTER_AREA),
        dtype=np.uint8,
    )
    label = f"#{frame} {seconds:.2f}s"
    if plan.whole:
        label += " WHOLE FRAME MASKED"
    elif plan.subject is not None and plan.subject is not SubjectState.CLEAR:
        label += f" subject {plan.subject.value}"
    cv2.rectangle(thumb, (0, 0), (THUMB_WIDTH, 20), (0, 0, 0), -1)
    cv2.putText(thumb, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return thumb


def contact_sheet(thumbs: Sequence[Image], path: Path) -> None:
    if not thumbs:
        thumbs = [np.zeros((20, THUMB_WIDTH, 3), dtype=np.uint8)]
    height = max(t.shape[0] for t in thumbs)
    rows = -(-len(thumbs) // SHEET_COLUMNS)
    sheet = np.full((rows * (height + 4), SHEET_COLUMNS * (THUMB_WIDTH + 4), 3), 32, dtype=np.uint8)
    for i, thumb in enumerate(thumbs):
        r, c = divmod(i, SHEET_COLUMNS)
        y, x = r * (height + 4), c * (THUMB_WIDTH + 4)
        sheet[y : y + thumb.shape[0], x : x + thumb.shape[1]] = thumb
    ok, encoded = cv2.imencode(".png", sheet)
    if not ok:
        raise OSError("PNG encoding failed")
    path.write_bytes(encoded.tobytes())
