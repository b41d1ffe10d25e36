"""Pixel operations shared by the detector, the landmark models and the crops they see."""
from __future__ import annotations

import math

import cv2
import numpy as np

# Bilinear sampling reads up to this many pixels past the floor of a source coordinate.
_SAMPLE_REACH = 2
# Widening costs per pixel of the window, four channels save per pixel of the square: beyond about
# 10 to 16 window pixels per square pixel (128 and 192 px squares, benchmarks/crop_warps.py
# --break-even), e.g. a 1280x720 frame letterboxed for the detector, the window is warped as it is.
WIDEST_WINDOW = 10.0
# Below this side the two extra colour conversions cost more than four channels save, however small
# the window (64 px iris crops: 1.1 to 2.6 times the three-channel warp's time, same benchmark).
SMALLEST_WIDENED = 128


def warp_rgb(image: np.ndarray, matrix: np.ndarray, size: int, border: int = cv2.BORDER_REPLICATE,
             out: np.ndarray | None = None) -> np.ndarray:
    """``cv2.warpAffine`` of an RGB uint8 ``image`` into a ``size`` x ``size`` square, bilinear, by the
    2x3 ``matrix`` (image pixels to square pixels); ``border``: what lies outside the image
    (BORDER_CONSTANT: black); into ``out`` if given.

    OpenCV's bilinear warp has vector kernels for four channels and none for three, so the part of
    the image the square samples is widened to four channels first: the same pixels up to one level
    of rounding (the matrix is shifted to that part), in about half the time. A square smaller than
    ``SMALLEST_WIDENED`` or a part much larger than the square (``WIDEST_WINDOW``) is not widened:
    that would cost more than it saves."""
    height, width = image.shape[:2]
    window = _sampled_window(matrix, size, height, width) if size >= SMALLEST_WIDENED else None
    if (window is None or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3
            or window_per_square_pixel(window, size) > WIDEST_WINDOW):
        return cv2.warpAffine(image, matrix, (size, size), dst=out, flags=cv2.INTER_LINEAR, borderMode=border)
    x0, y0, x1, y1 = window
    part = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2RGBA)
    shifted = np.asarray(matrix, np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)
    square = cv2.warpAffine(part, shifted, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)
    return cv2.cvtColor(square, cv2.COLOR_RGBA2RGB, dst=out)


def _sampled_window(matrix: np.ndarray, size: int, height: int, width: int) -> tuple[int, int, int, int] | None:
    """x0, y0, x1, y1 of the image pixels a warp into a size x size square can read, or None when
    the matrix cannot be inverted, the square is empty or it samples none of the image."""
    (a, b, c), (d, e, f) = np.asarray(matrix, np.float64).tolist()
    det = a * e - b * d
    if size < 1 or not math.isfinite(det) or det == 0.0:
        return None
    xs, ys = [], []
    for u, v in ((0, 0), (size, 0), (0, size), (size, size)):
        xs.append((e * (u - c) - b * (v - f)) / det)
        ys.append((a * (v - f) - d * (u - c)) / det)
    if not all(map(math.isfinite, xs + ys)):
        return None
    x0 = min(max(math.floor(min(xs)) - _SAMPLE_REACH, 0), width)
    y0 = min(max(math.floor(min(ys)) - _SAMPLE_REACH, 0), height)
    x1 = min(max(math.ceil(max(xs)) + _SAMPLE_REACH, 0), width)
    y1 = min(max(math.ceil(max(ys)) + _SAMPLE_REACH, 0), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def window_per_square_pixel(window: tuple[int, int, int, int], size: int) -> float:
    """Pixels of the ``window`` (x0, y0, x1, y1) per pixel of the size x size square."""
    x0, y0, x1, y1 = window
    return (x1 - x0) * (y1 - y0) / (size * size)
