"""Canonical face, weighted Procrustes and head pose, as pure functions over (N, 468, 3) arrays.

Frames:
- *image*: pixels, x right, y down, z into the scene (MediaPipe's landmark depth: smaller is
  nearer the camera).
- *camera*: x right, y up, z towards the camera (the image frame with y and z flipped).
- *canonical*: MediaPipe's canonical face in centimetres, frontal: x towards the subject's
  left (the image's right for an unmirrored face seen from the front), y up, z out of the face.

Head pose is the rotation R that takes the canonical face into the camera frame, split as
``R = Rz(roll) @ Ry(yaw) @ Rx(-pitch)``, in degrees:
- ``yaw`` > 0: the face turns towards the image's right (the subject's own left);
- ``pitch`` > 0: the face tilts up (chin up, nose up);
- ``roll`` > 0: the face rotates counterclockwise in the image as the viewer sees it
  (the subject's head leans towards their right shoulder).
Mirroring an image flips the sign of yaw and roll and leaves pitch unchanged.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np

from .mesh import check_meshes
from .runtime import verified_npz

IMAGE_TO_CAMERA = np.array([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class CanonicalFace:
    """MediaPipe's neutral 3D face (centimetres): its points, Procrustes weights and triangles."""

    points: np.ndarray  # (468, 3) cm
    mirror: np.ndarray  # (468,) landmark i of a face is landmark mirror[i] of its mirror image
    procrustes_weights: np.ndarray  # (468,) MediaPipe's weights for the pose fit
    triangles: np.ndarray  # (T, 3) landmark indices


@functools.cache
def canonical_face() -> CanonicalFace:
    """The canonical face shipped in ``mien/data`` (loaded once, checked against the manifest)."""
    data = verified_npz("data/canonical_face.npz")
    return CanonicalFace(
        data["points"].astype(np.float64),
        data["mirror"].astype(np.intp),
        data["procrustes_weights"].astype(np.float64),
        data["triangles"].astype(np.intp),
    )


@dataclass(frozen=True)
class Pose:
    """Similarity transforms from canonical to camera frame, one per face:
    ``camera = scale * rotation @ canonical + translation``; angles in degrees."""

    rotation: np.ndarray  # (N, 3, 3)
    scale: np.ndarray  # (N,) pixels per centimetre
    translation: np.ndarray  # (N, 3)
    yaw: np.ndarray
    pitch: np.ndarray
    roll: np.ndarray

    def take(self, index) -> "Pose":
        """The faces at ``index`` (an integer array or a boolean mask)."""
        return Pose(self.rotation[index], self.scale[index], self.translation[index], self.yaw[index],
                    self.pitch[index], self.roll[index])

    @staticmethod
    def concat(poses: list["Pose"]) -> "Pose":
        """The faces of several batches, in order."""
        return Pose(*(np.concatenate([getattr(p, f.name) for p in poses]) for f in fields(Pose)))


@dataclass(frozen=True)
class _Source:
    """The fixed side of a weighted Procrustes fit: normalised weights (P,), the points' weighted
    centre (3,), the points less that centre (P, 3), their weighted spread, and the centred points
    times their weights."""

    weights: np.ndarray
    centre: np.ndarray
    centred: np.ndarray
    spread: float
    weighted: np.ndarray


@functools.cache
def _canonical_source() -> tuple[np.ndarray, _Source]:
    """The canonical face's points that head pose is fitted on (MediaPipe's weights are zero for all
    but 33) and their side of the fit, computed once."""
    face = canonical_face()
    used = np.flatnonzero(face.procrustes_weights)
    w = face.procrustes_weights[used] / face.procrustes_weights[used].sum()
    centre = w @ face.points[used]
    centred = face.points[used] - centre
    return used, _Source(w, centre, centred, float(np.einsum("p,pk,pk->", w, centred, centred)), w[:, None] * centred)


def weighted_procrustes(source: _Source, target: np.ndarray):
    """The similarity (scale, rotation, translation) per face minimising
    sum_i w_i |s R source_i + t - target_i|^2, for targets (N, P, 3)."""
    mu_t = source.weights @ target
    cov = (target - mu_t[:, None]).transpose(0, 2, 1) @ source.weighted
    u, sing, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.ones((len(target), 3))
    fix[:, 2] = d
    rotation = u @ (fix[:, :, None] * vt)
    scale = (sing * fix).sum(1) / source.spread
    translation = mu_t - scale[:, None] * (rotation @ source.centre)
    return scale, rotation, translation


def euler_from_rotation(rotation: np.ndarray):
    """(yaw, pitch, roll) in degrees for R = Rz(roll) Ry(yaw) Rx(-pitch)."""
    yaw = np.arcsin(np.clip(-rotation[:, 2, 0], -1.0, 1.0))
    pitch = -np.arctan2(rotation[:, 2, 1], rotation[:, 2, 2])
    roll = np.arctan2(rotation[:, 1, 0], rotation[:, 0, 0])
    return np.degrees(yaw), np.degrees(pitch), np.degrees(roll)


def rotation_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation from yaw, pitch and roll in degrees (the inverse of ``euler_from_rotation``)."""
    y, p, r = np.radians([yaw, -pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_pose(meshes: np.ndarray) -> Pose:
    """Head pose of (N, 468, 3) image-frame meshes from a weighted fit of the canonical face."""
    used, source = _canonical_source()
    # contiguous: numpy multiplies strided stacks another way, and the layout of this selection depends on N
    camera = np.ascontiguousarray(check_meshes(meshes)[:, used], np.float64) * IMAGE_TO_CAMERA
    scale, rotation, translation = weighted_procrustes(source, camera)
    yaw, pitch, roll = euler_from_rotation(rotation)
    return Pose(rotation, scale, translation, yaw, pitch, roll)


def to_canonical_frame(meshes: np.ndarray, pose: Pose) -> np.ndarray:
    """Remove head pose: (N, P, 3) image-frame points (meshes, or any points of each face) → canonical
    frame, centimetres."""
    camera = check_meshes(meshes, "points", points=None).astype(np.float64) * IMAGE_TO_CAMERA
    return np.einsum("nji,npj->npi", pose.rotation, camera - pose.translation[:, None]) / pose.scale[:, None, None]


def from_canonical_frame(points: np.ndarray, yaw: float, pitch: float, roll: float, scale: float, centre_xy) -> np.ndarray:
    """Place canonical-frame points (P, 3) into an image frame at a given pose (for tests and drawing)."""
    camera = scale * points @ rotation_from_euler(yaw, pitch, roll).T
    camera[:, 0] += centre_xy[0]
    camera[:, 1] -= centre_xy[1]
    return camera * IMAGE_TO_CAMERA


EYEBALL_RADIUS_CM = 1.2
EYE_DEPTH_LANDMARKS = ((33, 133, 159, 145), (362, 263, 386, 374))  # the image-left eye, then the image-right eye


def gaze_angles(meshes: np.ndarray, centres: np.ndarray, corners: np.ndarray, pose: Pose) -> np.ndarray:
    """Estimated gaze (N, 2): yaw and pitch in degrees, head pose plus eye-in-head rotation,
    with head pose's sign conventions (yaw > 0 towards the image's right, pitch > 0 up).

    ``centres`` (N, 2, 2) and ``corners`` (N, 2, 2, 2): iris centres and eye corners in pixels,
    image-left eye first, from the iris model. Eye-in-head rotation is where the iris centre sits
    relative to the midpoint of its eye's corners, in the pose-removed frame (depth taken from the
    mesh around the eye), as arcsin(offset / eyeball radius), averaged over both eyes. It is an
    estimate: the iris's resting place relative to the corners varies between people, and
    nothing here was checked against measured gaze."""
    meshes = np.asarray(meshes, np.float64)
    eye_angles = np.zeros((len(meshes), 2, 2))
    for e, depth_ids in enumerate(EYE_DEPTH_LANDMARKS):
        depth = np.repeat(meshes[:, list(depth_ids), 2].mean(1)[:, None, None], 3, axis=1)
        xy = np.concatenate([corners[:, e], centres[:, e, None]], axis=1)
        canonical = to_canonical_frame(np.concatenate([xy, depth], axis=2), pose)
        offset = canonical[:, 2, :2] - canonical[:, :2, :2].mean(1)
        eye_angles[:, e] = np.degrees(np.arcsin(np.clip(offset / EYEBALL_RADIUS_CM, -1.0, 1.0)))
    eye = eye_angles.mean(1)
    return np.stack([pose.yaw + eye[:, 0], pose.pitch + eye[:, 1]], axis=1)
