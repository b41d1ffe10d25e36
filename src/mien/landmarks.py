"""468-point 3D face mesh and iris centres.

Follows MediaPipe's face-landmark graph: a square region of interest around each face,
rotated so that the eyes are level and enlarged 1.5x, is warped to 192x192 and fed to
``face_landmark.tflite``; the 468 points come back in image pixels. ``z`` is depth in the
same pixel scale, relative to the face's centre, smaller is nearer the camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .detect import Detections
from .checks import check_rgb
from .mesh import EYE_CORNERS, LANDMARK_COUNT, check_meshes, OUTER_EYE_CORNERS, eye_centres, interocular_distance
from .pixels import warp_rgb
from .runtime import TFLiteModel

MESH_INPUT = 192
IRIS_INPUT = 64
ROI_SCALE = 1.5
IRIS_ROI_SCALE = 2.3
# Eye corners (outer, inner as seen on the image's left eye; inner, outer on the right one)
# used to place the iris model's region. The model expects the image-left eye; the other is mirrored.


@dataclass(frozen=True)
class Roi:
    """Rotated squares: ``centre`` (N, 2) pixels, ``side`` (N,) pixels, ``angle`` (N,) radians,
    positive clockwise on screen (image y points down)."""

    centre: np.ndarray
    side: np.ndarray
    angle: np.ndarray


def _normalise_angle(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def roi_from_points(start: np.ndarray, end: np.ndarray, box_min: np.ndarray, box_max: np.ndarray, scale: float) -> Roi:
    """MediaPipe's DetectionsToRects + RectTransformation: centre of the box, rotation that
    levels the start→end vector, square on the long side, enlarged by ``scale``."""
    d = end - start
    angle = _normalise_angle(-np.arctan2(-d[:, 1], d[:, 0]))
    size = box_max - box_min
    return Roi((box_min + box_max) / 2.0, size.max(axis=1) * scale, angle)


def roi_from_detections(det: Detections) -> Roi:
    """The landmark model's regions of interest from detector boxes and eye keypoints."""
    return roi_from_points(det.keypoints[:, 0], det.keypoints[:, 1], det.boxes[:, :2], det.boxes[:, 2:], ROI_SCALE)


def mesh_boxes(meshes: np.ndarray) -> np.ndarray:
    """(N, 4) x0, y0, x1, y1: the bounding boxes of (N, 468, 3) meshes."""
    if not len(meshes):
        return np.zeros((0, 4), np.float32)
    xy = np.ascontiguousarray(meshes[:, :, :2].transpose(0, 2, 1))  # numpy reduces a contiguous last axis 4x as fast
    return np.concatenate([xy.min(2), xy.max(2)], axis=1)


def roi_from_mesh(mesh: np.ndarray, boxes: np.ndarray | None = None) -> Roi:
    """Region for the next video frame from this frame's mesh (tracking); ``boxes``: its
    ``mesh_boxes`` when already known."""
    a, b = OUTER_EYE_CORNERS
    boxes = mesh_boxes(mesh) if boxes is None else boxes
    return roi_from_points(mesh[:, a, :2], mesh[:, b, :2], boxes[:, :2], boxes[:, 2:], ROI_SCALE)


def roi_to_tensor_matrix(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """Affine matrix mapping image pixels into a size x size tensor of the rotated square."""
    c, s = np.cos(angle), np.sin(angle)
    k = size / side
    rot = np.array([[c, s], [-s, c]]) * k
    shift = size / 2.0 - rot @ centre
    return np.hstack([rot, shift[:, None]]).astype(np.float32)


def tensor_to_image(points: np.ndarray, centre: np.ndarray, side: np.ndarray, angle: np.ndarray, size: int) -> np.ndarray:
    """Map (N, P, 3) tensor coordinates back to image pixels; z is scaled like x."""
    k = (side / size)[:, None]
    u = (points[..., 0] - size / 2.0) * k
    v = (points[..., 1] - size / 2.0) * k
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x = centre[:, 0:1] + c * u - s * v
    y = centre[:, 1:2] + s * u + c * v
    return np.stack([x, y, points[..., 2] * k], axis=-1).astype(np.float32)


def crop_rotated(image: np.ndarray, centre: np.ndarray, side: float, angle: float, size: int, mirror: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
    """A size x size crop of a square region (centre, side, angle in radians), optionally mirrored; into ``out`` if given."""
    matrix = roi_to_tensor_matrix(centre, side, angle, size)
    if mirror:
        matrix = np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0]], np.float32) @ np.vstack([matrix, [0, 0, 1]])
    return warp_rgb(image, matrix, size, out=out)


SAME_FACE_IOD = 1.25


def distinct_faces(points: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Indices (sorted) of the meshes to keep when several landed on one face: two meshes are the
    same face when their eye midpoints are closer than SAME_FACE_IOD inter-ocular distances (two
    real faces side by side are at least about 2.5 apart); the one with the higher priority stays."""
    if len(points) < 2:
        return np.arange(len(points))
    mid = eye_centres(points[..., :2]).mean(1)
    iod = interocular_distance(points)
    keep: list[int] = []
    for i in np.argsort(-np.asarray(priority), kind="stable"):
        if all(np.linalg.norm(mid[i] - mid[j]) >= SAME_FACE_IOD * max(iod[i], iod[j]) for j in keep):
            keep.append(int(i))
    return np.array(sorted(keep), np.intp)


@dataclass(frozen=True)
class Meshes:
    """``points`` (N, 468, 3) pixels; ``presence`` (N,) the model's face-presence probability;
    ``crops`` (N, 192, 192, 3) the rotated face crops the model saw (RGB uint8)."""

    points: np.ndarray
    presence: np.ndarray
    crops: np.ndarray

    def take(self, index) -> "Meshes":
        """The faces at ``index``."""
        return Meshes(self.points[index], self.presence[index], self.crops[index])

    @staticmethod
    def empty() -> "Meshes":
        """No faces."""
        return Meshes(np.zeros((0, LANDMARK_COUNT, 3), np.float32), np.zeros(0, np.float32), np.zeros((0, MESH_INPUT, MESH_INPUT, 3), np.uint8))


class FaceMesher:
    """MediaPipe's face-landmark model: 468 points per region of interest."""

    def __init__(self, num_threads: int = 1):
        self._model = TFLiteModel("face_landmark.tflite", num_threads)

    def __call__(self, image: np.ndarray, roi: Roi) -> Meshes:
        check_rgb(image)
        n = len(roi.side)
        raw = np.zeros((n, LANDMARK_COUNT, 3), np.float32)
        presence = np.zeros(n, np.float32)
        crops = np.empty((n, MESH_INPUT, MESH_INPUT, 3), np.uint8)
        for i in range(n):
            crop_rotated(image, roi.centre[i], roi.side[i], roi.angle[i], MESH_INPUT, out=crops[i])
            points, flag = self._model(np.multiply(crops[i], np.float32(1.0 / 255.0), dtype=np.float32)[None])
            raw[i] = points.reshape(LANDMARK_COUNT, 3)
            presence[i] = 1.0 / (1.0 + np.exp(-float(flag.reshape(-1)[0])))
        return Meshes(tensor_to_image(raw, roi.centre, roi.side, roi.angle, MESH_INPUT), presence, crops)


@dataclass(frozen=True)
class Irises:
    """Per face and eye (the image-left eye first): ``centres`` (N, 2, 2) iris centres and
    ``corners`` (N, 2, 2, 2) the eye's outer and inner corner, pixels, all from the iris model,
    so that the iris's position within the eye is measured by one model."""

    centres: np.ndarray
    corners: np.ndarray


# Indices of the eye corners among the iris model's 71 contour points (its first 16 points follow
# the face mesh's eye outline starting at the outer corner; point 8 is the inner corner).
IRIS_MODEL_CORNERS = (0, 8)


class IrisLocator:
    """MediaPipe's iris model: iris centres and eye corners of each face's two eyes."""

    def __init__(self, num_threads: int = 1):
        self._model = TFLiteModel("iris_landmark.tflite", num_threads)

    def __call__(self, image: np.ndarray, mesh: np.ndarray) -> Irises:
        check_rgb(image)
        mesh = check_meshes(mesh, dims=2)
        n = len(mesh)
        points = np.zeros((n, 2, 3, 2), np.float32)  # centre, outer corner, inner corner
        for e, (a, b) in enumerate(EYE_CORNERS):
            mirror = e == 1
            p0, p1 = mesh[:, a, :2], mesh[:, b, :2]
            roi = roi_from_points(p0, p1, np.minimum(p0, p1), np.maximum(p0, p1), IRIS_ROI_SCALE)
            for i in range(n):
                crop = crop_rotated(image, roi.centre[i], roi.side[i], roi.angle[i], IRIS_INPUT, mirror=mirror)
                contour, iris = self._model((crop.astype(np.float32) * (1.0 / 255.0))[None])
                picked = np.vstack([iris.reshape(5, 3)[:1], contour.reshape(71, 3)[list(IRIS_MODEL_CORNERS)]])
                if mirror:
                    picked[:, 0] = IRIS_INPUT - picked[:, 0]
                back = tensor_to_image(picked[None], roi.centre[i : i + 1], roi.side[i : i + 1], roi.angle[i : i + 1], IRIS_INPUT)
                points[i, e] = back[0, :, :2]
        return Irises(points[:, :, 0], points[:, :, 1:])
