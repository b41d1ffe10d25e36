"""Checks at the public entry points: pixels in, or an ``InputError`` that says what came instead.

The one check for meshes is :func:`mien.mesh.check_meshes`.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError


def check_rgb(rgb, what: str = "image") -> np.ndarray:
    """``rgb`` if it is an RGB uint8 array shaped (H, W, 3) with both sides >= 1, else ``InputError``."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"{what}: expected an RGB uint8 numpy array shaped (H, W, 3), got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise InputError(f"{what}: expected an RGB uint8 image of shape (H, W, 3), got {rgb.dtype} {rgb.shape}")
    return rgb


def to_rgb(image, what: str = "image") -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of a numpy array (checked, not converted) or a PIL image (any mode)."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        from .images import pil_to_rgb

        return np.ascontiguousarray(pil_to_rgb(image))
    return check_rgb(image, what)
