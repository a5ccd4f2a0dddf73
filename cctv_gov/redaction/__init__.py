"""Redaction: mask third parties in a video before it is disclosed, keep the data subject clear, and report it.

A library with no HTTP and no database: ``redact(input, output, options)`` reads any video file, writes a new
H.264 MP4 working copy (the input is never touched) and returns a report. The CLI (``cctv-gov redact``) and, in
a later issue, export bundles call it.
"""

from cctv_gov.redaction.schemas import (
    MaskStyle,
    Mode,
    RedactionError,
    RedactionOptions,
    Region,
    Subject,
)
from cctv_gov.redaction.service import RedactionResult, redact

__all__ = [
    "MaskStyle",
    "Mode",
    "RedactionError",
    "RedactionOptions",
    "RedactionResult",
    "Region",
    "Subject",
    "redact",
]
