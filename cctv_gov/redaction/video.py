"""Video in and out through PyAV (FFmpeg): read any file frame by frame, write H.264 in MP4.

A frame that cannot be decoded (or that FFmpeg flags corrupt, or whose size differs from the stream's) is
yielded with ``image=None`` so the caller masks that frame whole instead of skipping it: the output keeps the
input's frame count and timing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import cv2
import numpy as np

from cctv_gov.redaction.detectors import Image
from cctv_gov.redaction.schemas import RedactionError


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frame_estimate: int
    codec: str
    has_audio: bool

    def describe(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": float(self.fps),
            "codec": self.codec,
            "has_audio": self.has_audio,
        }


@dataclass(frozen=True, slots=True)
class FrameItem:
    index: int
    seconds: float
    image: Image | None
    error: str | None = None


def _open(path: Path) -> Any:
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError) as exc:
        raise RedactionError(
            "unreadable_video", f"{path.name}: not a video FFmpeg can open ({exc})"
        ) from None


def probe(path: Path) -> VideoInfo:
    with _open(path) as container:
        if not container.streams.video:
            raise RedactionError("no_video_stream", f"{path.name} has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise RedactionError("unreadable_video", f"{path.name}: the video stream has no frame size")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        fps = Fraction(rate).limit_denominator(100000)
        estimate = int(stream.frames or 0)
        if not estimate and stream.duration and stream.time_base:
            estimate = int(float(stream.duration * stream.time_base) * float(fps))
        if not estimate and container.duration:
            estimate = int(container.duration / 1_000_000 * float(fps))
        return VideoInfo(
            width=int(ctx.width),
            height=int(ctx.height),
            fps=fps,
            frame_estimate=estimate,
            codec=str(ctx.name),
            has_audio=bool(container.streams.audio),
        )


class VideoReader:
    """Every frame of the first video stream, in order, as BGR arrays; audio packets go to a sink if asked."""

    def __init__(self, path: Path, info: VideoInfo) -> None:
        self._container: Any = _open(path)
        self._info = info
        self.audio_stream: Any = self._container.streams.audio[0] if self._container.streams.audio else None

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._container.close()

    def frames(self, audio_sink: Any = None) -> Iterator[FrameItem]:
        info = self._info
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        streams = [stream]
        if audio_sink is not None and self.audio_stream is not None:
            streams.append(self.audio_stream)
        index = 0
        for packet in self._container.demux(streams):
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    audio_sink(packet)
                continue
            seconds = (
                float(packet.pts * packet.time_base) if packet.pts is not None else index / float(info.fps)
            )
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                yield FrameItem(index, seconds, None, f"decode failed: {type(exc).__name__}")
                index += 1
                continue
            for frame in decoded:
                when = float(frame.time) if frame.time is not None else index / float(info.fps)
                if frame.is_corrupt:
                    yield FrameItem(index, when, None, "decoder marked the frame corrupt")
                elif frame.width != info.width or frame.height != info.height:
                    yield FrameItem(index, when, None, f"frame size {frame.width}x{frame.height} changed")
                else:
                    yield FrameItem(index, when, _bgr(frame))
                index += 1


def _bgr(frame: Any) -> Image:
    """A decoded frame as BGR; 4:2:0 frames of even size through OpenCV (faster than FFmpeg's scaler)."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        planes = frame.to_ndarray()  # (height * 3 / 2, width): Y then U then V, as I420
        return np.asarray(cv2.cvtColor(planes, cv2.COLOR_YUV2BGR_I420), dtype=np.uint8)
    return np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)


class H264Writer:
    """H.264 (x264, yuv420p) in MP4 with the moov atom first, so browsers and police players open it."""

    def __init__(
        self, path: Path, info: VideoInfo, crf: int, preset: str, audio_template: Any = None
    ) -> None:
        self._container: Any = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        # yuv420p needs even sides: pad the right and bottom edge by one black pixel where needed.
        self.width = info.width + info.width % 2
        self.height = info.height + info.height % 2
        stream = self._container.add_stream("libx264", rate=info.fps)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": preset}
        self._stream = stream
        self._audio: Any = None
        if audio_template is not None:
            try:
                self._audio = self._container.add_stream_from_template(audio_template)
            except (av.error.FFmpegError, ValueError) as exc:
                self._container.close()
                raise RedactionError(
                    "audio_not_supported", f"cannot keep the audio track in MP4 ({exc}); leave audio out"
                ) from None
        self._index = 0

    def write(self, image: Image) -> None:
        if image.shape[1] != self.width or image.shape[0] != self.height:
            padded = np.zeros((self.height, self.width, 3), dtype=np.uint8)
            padded[: image.shape[0], : image.shape[1]] = image
            image = padded
        # OpenCV's BT.601 conversion is about 10 ms a 720p frame faster than FFmpeg's generic scaler path.
        yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = self._index
        self._index += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def write_audio(self, packet: Any) -> None:
        if self._audio is not None:
            packet.stream = self._audio
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()
