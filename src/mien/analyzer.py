"""The image pipeline: pixels → faces → landmarks → pose and quality → results."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .detect import DetectorRange, FaceDetector
from . import actions
from .perceived import CLASSES as PERCEIVED_CLASSES, Perceived, PerceivedModel, aligned_face_crops
from .geometry import gaze_angles, head_pose, to_canonical_frame
from .images import ImageReadError, read_image
from .landmarks import FaceMesher, IrisLocator, Meshes, distinct_faces, roi_from_detections
from .quality import QualityThresholds, assess
from .results import FaceResult, ImageResult  # noqa: F401  (ImageResult is re-exported)


@dataclass(frozen=True)
class AnalyzerOptions:
    detector: DetectorRange | str = DetectorRange.AUTO
    min_detection_score: float = 0.5
    min_presence: float = 0.5  # faces whose landmark presence is below this are dropped, as in MediaPipe
    max_faces: int = 32
    iris: bool = True
    action_units: bool = True
    perceived: bool = True
    keep_landmarks: bool = True
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    num_threads: int = 1


@dataclass(frozen=True)
class FaceBatch:
    """Everything the pipeline measured for the faces of one image, as arrays (N first)."""

    boxes: np.ndarray
    scores: np.ndarray
    meshes: Meshes
    pose: object
    quality: object
    iris: np.ndarray | None
    gaze: np.ndarray | None  # (N, 2) yaw, pitch degrees, when iris is on
    actions: actions.ActionUnitResult | None
    perceived: Perceived | None


class Analyzer:
    """Reusable pipeline for still images; create once, call on many images."""

    def __init__(self, options: AnalyzerOptions | None = None):
        self.options = options or AnalyzerOptions()
        o = self.options
        self.detector = FaceDetector(o.detector, o.min_detection_score, o.num_threads)
        self.mesher = FaceMesher(o.num_threads)
        self.iris_locator = IrisLocator(o.num_threads) if o.iris else None
        self.perceiver = PerceivedModel(o.num_threads) if o.perceived else None

    def measure(self, rgb: np.ndarray) -> FaceBatch:
        det = self.detector(rgb, max_faces=self.options.max_faces)
        meshes = self.mesher(rgb, roi_from_detections(det))
        keep = np.flatnonzero(meshes.presence >= self.options.min_presence)
        keep = keep[distinct_faces(meshes.points[keep], det.scores[keep] * meshes.presence[keep])]
        return self.measure_meshes(rgb, det.boxes[keep], det.scores[keep], meshes.take(keep))

    def measure_meshes(self, rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, meshes: Meshes,
                       baseline: np.ndarray | None = None, perceive: np.ndarray | None = None) -> FaceBatch:
        """Pose, quality, iris and action units for faces whose meshes are known (from detection
        or tracking). ``baseline``: per-face neutral action-unit measures (N, K), else the population neutral.
        ``perceive``: (N,) bools, the faces to run the perceived-expression model on (default all);
        the others get NaN probabilities, for the caller to fill."""
        pose = head_pose(meshes.points)
        quality = assess(meshes.points, meshes.crops, meshes.presence, pose.yaw, pose.pitch, self.options.quality)
        irises = self.iris_locator(rgb, meshes.points) if self.iris_locator is not None else None
        iris = irises.centres if irises is not None else None
        gaze = gaze_angles(meshes.points, irises.centres, irises.corners, pose) if irises is not None else None
        units = actions.analyse(to_canonical_frame(meshes.points, pose), baseline) if self.options.action_units else None
        perceived = None
        if self.perceiver is not None:
            wanted = np.arange(len(meshes.points)) if perceive is None else np.flatnonzero(perceive)
            logits = np.full((len(meshes.points), len(PERCEIVED_CLASSES)), np.nan, np.float32)
            if len(wanted):
                logits[wanted] = self.perceiver.logits(aligned_face_crops(rgb, meshes.points[wanted]))
            perceived = self.perceiver.from_logits(logits, reliable=quality.reliable)
        return FaceBatch(boxes, scores, meshes, pose, quality, iris, gaze, units, perceived)

    def analyze_array(self, rgb: np.ndarray, source: str = "<array>", frame: int = 0) -> ImageResult:
        check_rgb(rgb)
        return self.result(rgb, self.measure(rgb), source, frame)

    def result(self, rgb: np.ndarray, batch: FaceBatch, source: str, frame: int = 0, extras: list[dict] | None = None) -> ImageResult:
        faces = tuple(self._face_result(batch, i, extras[i] if extras else {}) for i in range(len(batch.scores)))
        h, w = rgb.shape[:2]
        return ImageResult(source, frame, "ok" if faces else "no_face", "", w, h, faces)

    def analyze_file(self, path: str | Path) -> ImageResult:
        try:
            rgb = read_image(path)
        except ImageReadError as exc:
            return ImageResult.failed(str(path), str(exc))
        return self.analyze_array(rgb, str(path))

    def _face_result(self, b: FaceBatch, i: int, extra: dict) -> FaceResult:
        if b.actions is not None:
            extra = {**b.actions.columns(i), **extra}
        if b.perceived is not None:
            extra = {**b.perceived.columns(i), **extra}
        x0, y0, x1, y1 = (float(v) for v in b.boxes[i])
        q = b.quality
        return FaceResult(
            box=(x0, y0, x1 - x0, y1 - y0), score=float(b.scores[i]), presence=float(b.meshes.presence[i]),
            yaw=float(b.pose.yaw[i]), pitch=float(b.pose.pitch[i]), roll=float(b.pose.roll[i]),
            iod_px=float(q.iod_px[i]), sharpness=float(q.sharpness[i]), brightness=float(q.brightness[i]),
            clipped=float(q.clipped[i]), reliable=bool(q.reliable[i]), quality_reasons=q.reasons[i],
            iris=None if b.iris is None else b.iris[i],
            gaze=None if b.gaze is None else b.gaze[i],
            landmarks=b.meshes.points[i] if self.options.keep_landmarks else None,
            extra=extra,
        )


def check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
