"""Decide, for every frame, what is masked: from the tracks, the mode, the data subject and manual regions."""

from __future__ import annotations

import bisect
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cctv_gov.redaction.geometry import Box, head_region
from cctv_gov.redaction.schemas import Mode, RedactionOptions, Subject
from cctv_gov.redaction.tracking import Track

SUBJECT_NOT_CLEAR = "subject not clear"


class SubjectState(enum.StrEnum):
    CLEAR = "clear"  # found by a detector within the subject gap: left unmasked
    UNCERTAIN = "uncertain"  # only interpolated, or another person overlaps: masked, listed for review
    LOST = "lost"  # no track: masked, listed for review


@dataclass(slots=True)
class FramePlan:
    masks: list[Box] = field(default_factory=list)  # third parties, in the chosen style
    regions: list[Box] = field(default_factory=list)  # manual regions, in the chosen style
    keep: Box | None = None  # all-but-subject: the one area left clear (None: nothing)
    whole: str | None = None  # the whole frame is masked, and why
    subject: SubjectState | None = None

    @property
    def mask_count(self) -> int:
        return len(self.masks) + len(self.regions) + (1 if self.whole or self.keep is not None else 0)


def raw_box(track: Track, frame: int) -> Box | None:
    """The detector's box at ``frame``, interpolated between detections; None outside the detected span."""
    box = track.detected.get(frame)
    if box is not None:
        return box
    frames = track.frames()
    if not frames or frame < frames[0] or frame > frames[-1]:
        return None
    i = bisect.bisect_right(frames, frame)
    a, b = frames[i - 1], frames[i]
    return track.detected[a].lerp(track.detected[b], (frame - a) / (b - a))


@dataclass(slots=True)
class SubjectTracks:
    tracks: list[Track]
    states: list[SubjectState]
    keep: list[Box | None]
    anchor_frame: int
    matched: bool

    def spans(self) -> list[dict[str, Any]]:
        """Runs of frames where the subject was not clear, for human review."""
        out: list[dict[str, Any]] = []
        start: int | None = None
        for f, state in enumerate([*self.states, SubjectState.CLEAR]):
            if state is not SubjectState.CLEAR and start is None:
                start = f
            elif state is SubjectState.CLEAR and start is not None:
                kinds = {s.value for s in self.states[start:f]}
                out.append({"first_frame": start, "last_frame": f - 1, "states": sorted(kinds)})
                start = None
        return out


def _upper_half(person: Box) -> Box:
    return Box(person.x1, person.y1 - 0.05 * person.height, person.x2, person.y1 + 0.5 * person.height)


def _same_person(main: Track, other: Track, strong: float, share: float = 0.6) -> bool:
    shared = [f for f in other.detected if raw_box(main, f) is not None]
    weak = max(other.scores) < strong
    if not shared:
        return False
    on = 0
    for f in shared:
        mine, theirs = raw_box(main, f), other.detected[f]
        if mine is None:
            continue
        if main.kind == other.kind == "face":
            # A duplicate on the face, or a weak-only track stuck to it (the chin, a collar): the same head.
            on += mine.overlap_of_smaller(theirs) >= 0.5 or (weak and _centre_in(theirs, mine.scaled(2.0)))
        elif main.kind == "person" and other.kind == "face":
            on += _centre_in(theirs, _upper_half(mine))
        elif main.kind == "face" and other.kind == "person":
            on += _centre_in(mine, _upper_half(theirs))
    return on >= share * len(shared)


def _centre_in(box: Box | None, region: Box | None) -> bool:
    if box is None or region is None:
        return False
    return region.contains_point(*box.center)


def _nearest_frame(times: Sequence[float], seconds: float) -> int:
    return min(range(len(times)), key=lambda f: abs(times[f] - seconds)) if times else 0


def resolve_subject(
    subject: Subject,
    faces: list[Track],
    people: list[Track],
    times: Sequence[float],
    gap: int,
    face_pad: float,
    strong: float,
) -> SubjectTracks:
    count = len(times)
    anchor = _nearest_frame(times, subject.time)
    given = subject.box

    def best(tracks: list[Track]) -> Track | None:
        scored: list[tuple[float, Track]] = []
        for t in tracks:
            box = raw_box(t, anchor)
            if box is None or not given.scaled(1.2).contains_point(*box.center):
                continue
            scored.append((given.iou(box) + given.overlap_of_smaller(box), t))
        return max(scored, key=lambda s: s[0])[1] if scored else None

    person = best(people)
    face = best(faces)
    face_box = raw_box(face, anchor) if face is not None else None
    person_box = raw_box(person, anchor) if person is not None else None
    if face_box is not None and person_box is not None and not _centre_in(face_box, head_region(person_box)):
        # The two do not belong together: a box drawn round a body names the person, one round a face the face.
        if given.area > 4 * face_box.area:
            face = None
        else:
            person = None
    chosen: list[Track] = [t for t in (person, face) if t is not None]
    # Adopt the tracks that are the same person: a face on a chosen person's upper half, the person whose upper
    # half holds a chosen face, or another face track on top of a chosen face (a weak duplicate). Each must
    # hold on most of the frames the two share, so a passer-by crossing the subject is not adopted.
    grown = True
    while grown:
        grown = False
        for other in faces + people:
            if other in chosen:
                continue
            if any(_same_person(main, other, strong) for main in chosen):
                chosen.append(other)
                grown = True

    states: list[SubjectState] = [SubjectState.LOST] * count
    keep: list[Box | None] = [None] * count
    # Only a model's detection makes the subject clear: a follow by look alone leaves them uncertain.
    detected = sorted({f for t in chosen for f in t.detected if f not in t.followed})
    subject_people = [t for t in chosen if t.kind == "person"]
    others = [t for t in people if t not in chosen]
    for f in range(count):
        boxes = [b for t in chosen if (b := raw_box(t, f)) is not None]
        if not boxes:
            continue
        i = bisect.bisect_left(detected, f)
        near = min(
            (abs(detected[j] - f) for j in (i - 1, i) if 0 <= j < len(detected)),
            default=gap + 1,
        )
        crowded = False
        for mine in (raw_box(t, f) for t in subject_people):
            if mine is None:
                continue
            for other in others:
                theirs = raw_box(other, f)
                if theirs is not None and mine.iou(theirs) > 0.3:
                    crowded = True
        if near <= gap and not crowded:
            states[f] = SubjectState.CLEAR
            union = boxes[0]
            for b in boxes[1:]:
                union = union.union(b)
            keep[f] = union.scaled(face_pad if all(t.kind == "face" for t in chosen) else 1.1)
        else:
            states[f] = SubjectState.UNCERTAIN
    return SubjectTracks(chosen, states, keep, anchor, bool(chosen))


def build_plans(
    options: RedactionOptions,
    faces: list[Track],
    people: list[Track],
    times: Sequence[float],
    failed: dict[int, str],
    subject: SubjectTracks | None,
) -> list[FramePlan]:
    plans = [FramePlan() for _ in times]
    excluded: set[int] = {id(t) for t in subject.tracks} if subject is not None else set()
    strong = options.tuning.face_threshold
    for track in faces:
        weak = max(track.scores) < strong
        for f, box in track.boxes.items():
            if f >= len(plans) or _spared(track, f, subject, excluded):
                continue
            if weak and subject is not None and _on_subject(box, subject, f):
                continue  # a faint detection lying on the subject's own clear face is taken as the subject
            plans[f].masks.append(box)
    for track in people:
        for f, box in track.boxes.items():
            if f >= len(plans) or _spared(track, f, subject, excluded):
                continue
            if options.mode is Mode.PEOPLE:
                plans[f].masks.append(box)
            elif not _has_face(_upper_half(box), faces, f):
                # A person found without a face (none in the upper half of their box): mask the head.
                plans[f].masks.append(head_region(box))
    for f, plan in enumerate(plans):
        seconds = times[f]
        plan.regions = [r.box for r in options.regions if r.active(seconds)]
        if subject is not None:
            plan.subject = subject.states[f]
        if options.mode is Mode.ALL_BUT_SUBJECT:
            plan.keep = subject.keep[f] if subject is not None else None
            if plan.keep is None:
                plan.whole = f"{SUBJECT_NOT_CLEAR} (all-but-subject)"
            else:
                plan.masks = [m for m in plan.masks if m.intersection(plan.keep) > 0]
        if f in failed:
            plan.whole = failed[f]
            plan.keep = None
    return plans


def _has_face(area: Box, faces: list[Track], frame: int) -> bool:
    """A face track (detected or interpolated, not merely held) whose centre lies in ``area`` on ``frame``."""
    return any(_centre_in(raw_box(t, frame), area) for t in faces)


def _on_subject(box: Box, subject: SubjectTracks, frame: int) -> bool:
    keep = subject.keep[frame]
    if subject.states[frame] is not SubjectState.CLEAR or keep is None or box.area <= 0:
        return False
    return keep.intersection(box) > 0.3 * box.area


def _spared(track: Track, frame: int, subject: SubjectTracks | None, excluded: set[int]) -> bool:
    return subject is not None and id(track) in excluded and subject.states[frame] is SubjectState.CLEAR
