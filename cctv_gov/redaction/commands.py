"""``cctv-gov redact``: the redaction engine from a shell, on any video file, with no server running."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["faces", "people", "all-but-subject"]),
    default="faces",
    show_default=True,
    help="What to mask: every face, whole people, or everything but the data subject.",
)
@click.option(
    "--style", type=click.Choice(["pixelate", "solid", "blur"]), default="pixelate", show_default=True
)
@click.option("--subject", metavar="T,x,y,w,h", help="The data subject: seconds, then a box around them.")
@click.option(
    "--region",
    "regions",
    multiple=True,
    metavar="x,y,w,h[@START-END]",
    help="A box always masked (a screen, a plate); with @START-END seconds only then. Repeatable.",
)
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Report (JSON)."
)
@click.option(
    "--contact-sheet",
    "sheet_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Contact sheet (PNG).",
)
@click.option("--keep-audio", is_flag=True, help="Keep the audio track (dropped by default).")
@click.option("--overwrite", is_flag=True, help="Replace DESTINATION if it exists (never the input).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def redact(
    source: Path,
    destination: Path,
    mode: str,
    style: str,
    subject: str | None,
    regions: tuple[str, ...],
    report_path: Path | None,
    sheet_path: Path | None,
    keep_audio: bool,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Mask third parties in SOURCE and write DESTINATION (H.264 MP4). Needs no server and no database.

    SOURCE is only read. Frames that cannot be decoded or analysed are masked whole; the report lists them,
    every track, and where the subject was not clear (masked too, for review).
    """
    from cctv_gov.redaction.schemas import (
        MaskStyle,
        Mode,
        RedactionError,
        RedactionOptions,
        Region,
        Subject,
    )

    try:
        from cctv_gov.redaction.service import redact as run_redaction
    except ImportError as exc:
        raise click.ClickException(
            f"redaction needs its extra ({exc.name} is missing): pip install 'cctv-gov[redaction]'"
        ) from None

    try:
        options = RedactionOptions(
            mode=Mode(mode),
            style=MaskStyle(style),
            subject=Subject.parse(subject) if subject else None,
            regions=tuple(Region.parse(r) for r in regions),
            keep_audio=keep_audio,
        )
    except RedactionError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    bar = _RedactionProgress(quiet)
    try:
        result = run_redaction(
            source,
            destination,
            options,
            report_path=report_path,
            sheet_path=sheet_path,
            progress=bar.update,
            overwrite=overwrite,
        )
    except RedactionError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    finally:
        bar.close()
    report = result.report
    if report["model_error"]:
        click.echo(f"warning: {report['model_error']}; every frame was masked whole", err=True)
    click.echo(
        json.dumps(
            {
                "output": str(result.output),
                "sha256": report["output"]["sha256"],
                "frames": report["frames"],
                "fail_safe_frames": len(report["fail_safe_frames"]),
                "subject_review_spans": len(report["subject"]["review"]) if report["subject"] else None,
                "report": str(report_path) if report_path else None,
                "contact_sheet": str(sheet_path) if sheet_path else None,
            },
            indent=2,
        )
    )


class _RedactionProgress:
    """One bar over both passes (analyse, then mask and encode), with an ETA, on stderr."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._bar: Any = None
        self._position = 0

    def update(self, stage: str, done: int, total: int) -> None:
        if self._quiet:
            return
        if self._bar is None:
            self._bar = click.progressbar(
                length=2 * total, label="redacting", show_eta=True, show_percent=True, file=sys.stderr
            )
            self._bar.__enter__()
        target = done if stage == "analyse" else total + done
        if stage != "analyse" and self._bar.length != 2 * total:
            self._bar.length = 2 * total  # the first pass learns the true frame count
        if target > self._position:
            self._bar.update(target - self._position)
            self._position = target

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
