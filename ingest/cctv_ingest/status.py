"""``cctv-ingest status``: what the spool holds, read without the service (and without writing)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cctv_ingest.progress import human_bytes, human_duration
from cctv_ingest.spool import PENDING, Spool, State

MAX_ERRORS_SHOWN = 20
MAX_REJECTED_SHOWN = 100


def _time(epoch: float | None) -> str | None:
    if epoch is None or epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(spool: Spool, now: float) -> dict[str, Any]:
    """Everything ``status`` shows, as plain JSON-ready data."""
    states = {state.value: 0 for state in State}
    cameras: dict[str, dict[str, int]] = {}
    for camera, state, count in spool.query(
        "SELECT camera, state, count(*) FROM segments GROUP BY camera, state ORDER BY camera, state"
    ):
        states[state] += count
        cameras.setdefault(camera, {})[state] = count
    pending_files, pending_bytes = spool.count(PENDING)
    pending = [state.value for state in PENDING]
    marks = ", ".join("?" for _ in pending)
    oldest = spool.rows(f"state IN ({marks})", pending, order="created_at, id", limit=1)
    waiting = spool.rows(
        f"state IN ({marks}) AND last_error_code IS NOT NULL",
        pending,
        order="updated_at DESC, id",
        limit=MAX_ERRORS_SHOWN,
    )
    rejected = spool.rows("state = 'rejected'", (), order="updated_at DESC, id", limit=MAX_REJECTED_SHOWN)
    retrying = spool.query(
        f"SELECT count(*) FROM segments WHERE state IN ({marks}) AND next_attempt_at > ?",  # noqa: S608
        (*pending, now),
    )[0][0]
    delete_problems = spool.rows(
        "state = 'registered' AND last_error_code IS NOT NULL",
        (),
        order="updated_at DESC, id",
        limit=MAX_ERRORS_SHOWN,
    )
    site_slug = spool.get_meta("site_slug")
    return {
        "spool": str(spool.path),
        "site": None
        if site_slug is None
        else {
            "slug": site_slug,
            "id": spool.get_meta("site_id"),
            "timezone": spool.get_meta("site_timezone"),
        },
        "states": states,
        "cameras": cameras,
        "pending": {
            "files": pending_files,
            "bytes": pending_bytes,
            "waiting_for_retry": retrying,
            "oldest": None
            if not oldest
            else {
                "path": oldest[0].path,
                "camera": oldest[0].camera,
                "start": oldest[0].start_utc,
                "state": oldest[0].state.value,
                "queued_at": _time(oldest[0].created_at),
                "waiting_seconds": max(0.0, now - oldest[0].created_at),
            },
        },
        "errors": [
            {
                "path": row.path,
                "camera": row.camera,
                "state": row.state.value,
                "code": row.last_error_code,
                "message": row.last_error,
                "attempts": row.attempts,
                "at": _time(row.updated_at),
                "next_attempt_at": _time(row.next_attempt_at),
            }
            for row in waiting + delete_problems
        ],
        "rejected": [
            {
                "path": row.path,
                "camera": row.camera,
                "start": row.start_utc,
                "code": row.last_error_code,
                "message": row.last_error,
                "at": _time(row.updated_at),
            }
            for row in rejected
        ],
        "rejected_total": states[State.REJECTED.value],
    }


def render(data: Mapping[str, Any], now: float) -> str:
    lines = [f"spool       {data['spool']}"]
    site = data["site"]
    if site is not None:
        lines.append(f"site        {site['slug']} (id {site['id']}, time zone {site['timezone']})")
    else:
        lines.append("site        not known yet (the agent has not reached the service)")
    states: Mapping[str, int] = data["states"]
    lines.append("states      " + ", ".join(f"{state} {count}" for state, count in states.items()))
    pending = data["pending"]
    text = f"pending     {pending['files']} file(s), {human_bytes(pending['bytes'])}"
    if pending["waiting_for_retry"]:
        text += f"; {pending['waiting_for_retry']} waiting to retry"
    lines.append(text)
    oldest = pending["oldest"]
    if oldest is not None:
        lines.append(
            f"oldest      queued {oldest['queued_at']} ({human_duration(oldest['waiting_seconds'])} ago), "
            f"{oldest['state']}: {oldest['path']}"
        )
    if data["cameras"]:
        lines.append("cameras")
        width = max(len(camera) for camera in data["cameras"])
        for camera, counts in data["cameras"].items():
            shown = ", ".join(f"{state} {count}" for state, count in counts.items())
            lines.append(f"  {camera:<{width}}  {shown}")
    if data["errors"]:
        lines.append("last errors")
        for error in data["errors"]:
            text = f"  {error['path']} ({error['state']}): {error['code']}: {error['message']}"
            if error["attempts"]:
                text += f" [attempt {error['attempts']}"
                if error["next_attempt_at"]:
                    text += f", next {error['next_attempt_at']}"
                text += "]"
            lines.append(text)
    if data["rejected"]:
        count = len(data["rejected"])
        total = data["rejected_total"]
        more = f", latest {count} shown" if total > count else ""
        lines.append(f"rejected    {total} file(s), kept on disk; retried when the agent next starts{more}")
        for rejected in data["rejected"]:
            lines.append(f"  {rejected['path']}: {rejected['code']}: {rejected['message']}")
    return "\n".join(lines)
