"""Face boxes and six keypoints from MediaPipe's BlazeFace detectors.

Two models ship: *short range* (128x128 input, faces that fill much of the frame, up to
about 2 m from the camera) and *full range* (192x192 input, small and distant faces, about
three times the short range's cost). ``both`` runs both and merges their boxes. ``auto`` runs
the full-range model only where the short-range one cannot see: when the short range finds no
face, or a face narrower than ``FULL_RANGE_BELOW`` of the image's longer side (see
:func:`needs_full_range`); then it merges as ``both`` does. So close-ups cost one small model and
group shots and distant faces still get both.

Coordinates are image pixels, x to the right and y down, with pixel ``(i, j)`` covering
``[j, j+1) x [i, i+1)`` as in OpenCV. Keypoint order follows BlazeFace: subject's right eye,
left eye, nose tip, mouth centre, right ear tragion, left ear tragion (the subject's right
eye is on the image's left in an unmirrored photo).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import cv2
import numpy as np

from .checks import check_rgb
from .errors import InputError
from .pixels import warp_rgb

from .runtime import TFLiteModel


class DetectorRange(str, enum.Enum):
    """Which BlazeFace model: SHORT (faces within about 2 m), FULL (small, distant faces), BOTH, or
    AUTO (short range, and full range too where the short range cannot see: ``needs_full_range``)."""

    SHORT = "short"
    FULL = "full"
    AUTO = "auto"
    BOTH = "both"


@dataclass(frozen=True)
class _DetectorSpec:
    model: str
    size: int
    strides: tuple[int, ...]
    anchors_per_layer: int


_SPECS = {
    DetectorRange.SHORT: _DetectorSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
    DetectorRange.FULL: _DetectorSpec("face_detection_full_range_sparse.tflite", 192, (4,), 1),
}

NMS_IOU = 0.3
# The short-range model finds faces down to about 0.12 of the image's longer side
# (benchmarks/detector_rule.py); faces at about the same distance as the narrowest one it found
# may be 1.5 times narrower still, and those only the full-range model sees.
FULL_RANGE_BELOW = 0.18
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear", "left_ear")


@dataclass(frozen=True)
class Detections:
    """Faces found in one image: ``boxes`` (N, 4) as x0, y0, x1, y1 pixels, ``scores`` (N,),
    ``keypoints`` (N, 6, 2) pixels; ``ranges``: the models that looked."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    ranges: tuple[DetectorRange, ...] = ()

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> "Detections":
        """No faces."""
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32))


def ssd_anchor_centres(size: int, strides: tuple[int, ...], anchors_per_layer: int) -> np.ndarray:
    """Anchor centres (A, 2) in [0, 1], in the order BlazeFace's outputs use.

    Consecutive layers with the same stride share one feature map, as in MediaPipe's
    SsdAnchorsCalculator with ``fixed_anchor_size``.
    """
    centres = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        same = 0
        while i < len(strides) and strides[i] == stride:
            same += 1
            i += 1
        cells = int(np.ceil(size / stride))
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(grid, same * anchors_per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def letterbox_transform(height: int, width: int, size: int) -> tuple[np.ndarray, float, float, float]:
    """Affine matrix that fits the whole image, centred and zero-padded, into a size x size
    square; also returns the square's side in image pixels and its top-left corner."""
    side = float(max(height, width))
    x0 = (width - side) / 2.0
    y0 = (height - side) / 2.0
    scale = size / side
    matrix = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]], np.float32)
    return matrix, side, x0, y0


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, size: int, min_score: float):
    """BlazeFace raw outputs → (boxes, scores, keypoints) in [0, 1] of the input square."""
    logits = np.clip(raw_scores.reshape(-1).astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    keep = scores >= min_score
    raw = raw_boxes.reshape(-1, 16)[keep] / size
    a = anchors[keep]
    centre = raw[:, 0:2] + a
    half = raw[:, 2:4] / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return boxes, scores[keep].astype(np.float32), keypoints


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0, y0, x1, y1 box with each of (N, 4) boxes."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float = NMS_IOU):
    """MediaPipe's weighted non-max suppression: each kept face is the score-weighted mean
    of the boxes and keypoints that overlap the best remaining box; it keeps the best score."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    out_boxes, out_scores, out_kps = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        overlap = box_iou(boxes[top], boxes[remaining]) > iou_threshold
        members = remaining[overlap]
        w = scores[members][:, None]
        out_boxes.append((boxes[members] * w).sum(0) / w.sum())
        out_kps.append((keypoints[members] * w[:, :, None]).sum(0) / w.sum())
        out_scores.append(scores[top])
        remaining = remaining[~overlap]
    if not out_scores:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 6, 2), np.float32)
    return np.array(out_boxes, np.float32), np.array(out_scores, np.float32), np.array(out_kps, np.float32)


def needs_full_range(short_range_boxes: np.ndarray, longer_side: float) -> bool:
    """``auto``'s rule: run the full-range model too when the short-range one found no face, or a
    face narrower than ``FULL_RANGE_BELOW`` of the image's longer side (a scene with small faces,
    some of which only the full range may see). A close-up with no face that narrow gets the
    short range alone, so a much smaller face far behind it is missed: ``both`` finds it."""
    widths = short_range_boxes[:, 2] - short_range_boxes[:, 0]
    return not len(widths) or bool((widths < FULL_RANGE_BELOW * longer_side).any())


class FaceDetector:
    """BlazeFace face detection on RGB uint8 images (H, W, 3)."""

    def __init__(self, detector_range: DetectorRange | str = DetectorRange.AUTO, min_score: float = 0.5, num_threads: int = 1):
        self.range = DetectorRange(detector_range)
        self.min_score = float(min_score)
        both = self.range in (DetectorRange.AUTO, DetectorRange.BOTH)
        kinds = [DetectorRange.SHORT, DetectorRange.FULL] if both else [self.range]
        self._stages = {}
        for kind in kinds:
            spec = _SPECS[kind]
            anchors = ssd_anchor_centres(spec.size, spec.strides, spec.anchors_per_layer)
            self._stages[kind] = (spec, anchors, TFLiteModel(spec.model, num_threads))

    @property
    def ranges(self) -> tuple[DetectorRange, ...]:
        """The models this detector may run (both for ``auto`` and ``both``)."""
        return tuple(self._stages)

    def __call__(self, image: np.ndarray, max_faces: int | None = None, only: DetectorRange | None = None,
                 full_range: bool = False) -> Detections:
        """Faces in an RGB image; ``only`` runs just one of this detector's ``ranges``; ``full_range``
        makes ``auto`` run and merge both models as ``both`` does."""
        if only is not None and only not in self._stages:
            raise InputError(f"this detector runs {[r.value for r in self.ranges]}, not {DetectorRange(only).value!r}")
        h, w = check_rgb(image).shape[:2]
        ran = [only or self.ranges[0]]
        found = [self._run(image, ran[0])]
        boxes, scores, kps = weighted_nms(*found[0])
        if only is None and len(self.ranges) > 1 and (self.range is DetectorRange.BOTH or full_range
                                                      or needs_full_range(boxes, max(h, w))):
            ran.append(DetectorRange.FULL)
            found.append(self._run(image, DetectorRange.FULL))
            boxes, scores, kps = weighted_nms(*(np.concatenate(parts) for parts in zip(*found)))
        if max_faces is not None:
            boxes, scores, kps = boxes[:max_faces], scores[:max_faces], kps[:max_faces]
        return Detections(boxes, scores, kps, tuple(ran))

    def looks_again(self, det: Detections) -> bool:
        """Whether ``auto`` should look again with both models when the landmark model rejects every
        face of ``det``: the short range's box may have put it off a face the merged box places well."""
        return self.range is DetectorRange.AUTO and DetectorRange.FULL not in det.ranges

    def _run(self, image: np.ndarray, kind: DetectorRange) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One model's faces before merging: boxes (M, 4), scores (M,), keypoints (M, 6, 2), image pixels."""
        spec, anchors, model = self._stages[kind]
        matrix, side, x0, y0 = letterbox_transform(*image.shape[:2], spec.size)
        square = warp_rgb(image, matrix, spec.size, border=cv2.BORDER_CONSTANT)
        tensor = (square.astype(np.float32) * (2.0 / 255.0) - 1.0)[None]
        raw_boxes, raw_scores = model(tensor)
        boxes, scores, kps = decode(raw_boxes, raw_scores, anchors, spec.size, self.min_score)
        offset = np.array([x0, y0], np.float32)
        return boxes * side + np.tile(offset, 2), scores, kps * side + offset
