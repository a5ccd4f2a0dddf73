"""Redaction: mask third parties in a video before it is disclosed, keep the data subject clear, and report it.

A library with no HTTP and no database: ``service.redact(input, output, options)`` reads any video file, writes a
new H.264 MP4 working copy (the input is never touched) and returns a report; ``schemas`` holds the options.
The CLI (``cctv-gov redact``, in ``commands``) and, in a later issue, export bundles call it. Nothing is
imported here, so the service's CLI starts without OpenCV or FFmpeg installed (they come with the
``redaction`` extra).
"""
