"""Face landmarks (MediaPipe Face Mesh), found once per image and cached on disk by the image's hash."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from models.errors import NoFaceFound

# MediaPipe Face Mesh indices (subject's right = image left).
LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
EYE_R = {"outer": 33, "inner": 133, "upper": [246, 161, 160, 159, 158, 157, 173],
         "lower": [7, 163, 144, 145, 153, 154, 155], "brow": [70, 63, 105, 66, 107]}  # fmt: skip
EYE_L = {"outer": 263, "inner": 362, "upper": [466, 388, 387, 386, 385, 384, 398],
         "lower": [249, 390, 373, 374, 380, 381, 382], "brow": [300, 293, 334, 296, 336]}  # fmt: skip
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]  # fmt: skip
CHIN, NOSE_TIP, FOREHEAD = 152, 1, 10

_LOCK = threading.Lock()  # the MediaPipe graph is not safe to share between threads


def image_hash(rgb: np.ndarray) -> str:
    """Content hash of a decoded image (independent of its file format)."""
    h = hashlib.sha256()
    h.update(str(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()[:32]


def detect_landmarks(rgb: np.ndarray) -> np.ndarray:
    """(468, 2) float32 pixel coordinates of the most prominent face; NoFaceFound when there is none.

    Face Mesh's own detector only sees faces that fill much of the image, so when it finds none, the
    full-range face detector locates the face and the mesh runs again on a crop around it.
    """
    points = _mesh(rgb)
    if points is None:
        box = _detect_box(rgb)
        if box is not None:
            x0, y0, x1, y1 = box
            crop = points = _mesh(rgb[y0:y1, x0:x1])
            points = None if crop is None else crop + np.array([x0, y0], np.float32)
    if points is None:
        raise NoFaceFound(
            "no face was found in the image",
            allowed="a photo with one clearly visible, roughly frontal face (at least ~100 px wide)",
        )
    return points


def _mesh(rgb: np.ndarray) -> np.ndarray | None:
    import mediapipe as mp

    with _LOCK, mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        result = mesh.process(np.ascontiguousarray(rgb))
    if not result.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    pts = result.multi_face_landmarks[0].landmark
    return np.array([(p.x * w, p.y * h) for p in pts[:468]], dtype=np.float32)


def _detect_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """Square box (2.2x the detected face) around the most confident face, from the full-range detector."""
    import mediapipe as mp

    with _LOCK, mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as det:
        result = det.process(np.ascontiguousarray(rgb))
    if not result.detections:
        return None
    h, w = rgb.shape[:2]
    best = max(result.detections, key=lambda d: d.score[0]).location_data.relative_bounding_box
    cx, cy = (best.xmin + best.width / 2) * w, (best.ymin + best.height / 2) * h
    half = 1.1 * max(best.width * w, best.height * h)
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    return x0, y0, int(min(w, cx + half)), int(min(h, cy + half))


def cached_landmarks(rgb: np.ndarray, cache_dir: Path | None) -> np.ndarray:
    """Landmarks from the disk cache keyed by the image hash, detected and stored on a miss."""
    if cache_dir is None:
        return detect_landmarks(rgb)
    path = Path(cache_dir) / f"{image_hash(rgb)}.npy"
    if path.exists():
        return np.load(path)
    points = detect_landmarks(rgb)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    with os.fdopen(fd, "wb") as f:
        np.save(f, points)
    os.replace(tmp, path)
    return points


def crop_box(points: np.ndarray, image_shape: tuple[int, int], scale: float = 2.0) -> tuple[int, int, int]:
    """Square head-and-shoulders box (x0, y0, side) around the face, kept inside the image where possible."""
    oval = points[FACE_OVAL]
    (x0, y0), (x1, y1) = oval.min(0), oval.max(0)
    side = scale * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.12 * side  # lower the centre: room for neck and shoulders
    h, w = image_shape
    side = min(side, w, h)
    bx = float(np.clip(cx - side / 2, 0, w - side))
    by = float(np.clip(cy - side / 2, 0, h - side))
    return int(round(bx)), int(round(by)), int(round(side))
