"""Facts about MediaPipe's 468-point face mesh, stated once, and the one check for mesh arrays.

Landmarks are in image pixels (x right, y down, z depth in pixel scale) unless a function says
otherwise. "Left" and "right" here are the image's: landmarks 33/133 are the outer/inner corner of
the eye on the image's left (the subject's right eye in an unmirrored photo), 362/263 the inner/outer
corner of the eye on the image's right.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

LANDMARK_COUNT = 468
EYE_CORNERS = ((33, 133), (362, 263))  # image-left eye (outer, inner), image-right eye (inner, outer)
OUTER_EYE_CORNERS = (33, 263)
_EYE_CORNER_INDEX = np.array(EYE_CORNERS).ravel()


def check_meshes(meshes, what: str = "meshes", dims: int = 3, points: int | None = LANDMARK_COUNT) -> np.ndarray:
    """``meshes`` as an array shaped (N, 468, ``dims``) (or (N, P, ``dims``) for any P when ``points``
    is None), or an ``InputError`` that says what came instead."""
    m = np.asarray(meshes)
    if m.ndim != 3 or (points is not None and m.shape[1] != points) or m.shape[2] < dims:
        raise InputError(f"{what}: expected an array shaped (N, {points or 'P'}, {dims}), got shape {m.shape}")
    if m.dtype.kind not in "fiu":  # floating or integer
        raise InputError(f"{what}: expected real numbers, got dtype {m.dtype}")
    return m


def eye_centres(meshes: np.ndarray) -> np.ndarray:
    """(N, 2, D): the centre (mean of the two corners) of the image-left eye, then the image-right eye."""
    corners = meshes[:, _EYE_CORNER_INDEX]
    return (corners[:, 0::2] + corners[:, 1::2]) / 2


def interocular_distance(meshes: np.ndarray, dims: int = 2) -> np.ndarray:
    """(N,) distance between the eye centres, the face-size unit: in the image plane (``dims=2``,
    x and y) or in 3D (``dims=3``, e.g. for pose-removed meshes)."""
    eyes = eye_centres(meshes[..., :dims])
    return np.linalg.norm(eyes[:, 0] - eyes[:, 1], axis=1)
