"""Pictures of action units for people to look at: the regions and movement vectors of the units
that are present, drawn on the image, and a bar chart of intensities (a PNG-ready RGB array via
OpenCV). No plotting library needed."""
from __future__ import annotations

import cv2
import numpy as np

from .actions import action_units
from .geometry import IMAGE_TO_CAMERA, head_pose

PRESENT = (255, 140, 0)
ABSENT = (150, 150, 150)
THRESHOLD = (220, 40, 40)
# one colour per AU number (RGB), cycled
PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255))


def unit_colour(number: int) -> tuple[int, int, int]:
    """The colour (RGB) that marks action unit ``number`` in every picture."""
    numbers = sorted({u.number for u in action_units()})
    return PALETTE[numbers.index(number) % len(PALETTE)]


def draw_units(rgb: np.ndarray, mesh: np.ndarray, units, intensity: np.ndarray, min_intensity: float = 1.0,
               labels: bool = True) -> np.ndarray:
    """Copy of ``rgb`` with, for every unit whose intensity is at least ``min_intensity`` (1 = present),
    the outline of the landmarks its measure reads and an arrow per moving landmark along the unit's
    movement, scaled by the intensity. ``mesh``: the face's (468, 3) image-frame landmarks in pixels;
    ``units``: the action units, with their (K,) ``intensity``. ``labels``: write each unit's name
    beside it (off when a legend names the colours instead)."""
    out = rgb.copy()
    mesh = np.asarray(mesh, np.float64)
    pose = head_pose(mesh[None])
    rot, scale = pose.rotation[0], float(pose.scale[0])
    thick = max(1, round(max(rgb.shape[:2]) / 800))
    iod_px = float(np.linalg.norm(mesh[[263, 362], :2].mean(0) - mesh[[33, 133], :2].mean(0)))
    font = max(0.35, iod_px / 200)
    for u, value in zip(units, np.asarray(intensity, float)):
        if not np.isfinite(value) or value < min_intensity:
            continue
        colour = unit_colour(u.number)
        region = np.round(mesh[list(u.landmarks), :2] * 16).astype(np.int32)
        if len(region) >= 3:
            cv2.polylines(out, [cv2.convexHull(region)], True, colour, thick, cv2.LINE_AA, shift=4)
        length = min(value, 3.0) * 0.12 * iod_px
        for ids, d in u.movement:
            arrow = (rot @ np.asarray(d)) * IMAGE_TO_CAMERA * scale
            norm = np.linalg.norm(arrow[:2])
            if norm < 1e-9:  # movement along the line of sight: mark the landmark instead
                for j in ids:
                    cv2.circle(out, tuple(np.round(mesh[j, :2]).astype(int)), thick + 2, colour, thick, cv2.LINE_AA)
                continue
            step = arrow[:2] / np.linalg.norm(arrow) * length
            for j in ids:
                p0 = mesh[j, :2]
                cv2.arrowedLine(out, tuple(np.round(p0).astype(int)), tuple(np.round(p0 + step).astype(int)), colour,
                                thick, cv2.LINE_AA, tipLength=0.3)
        if labels:
            anchor = mesh[list(u.moving), :2].mean(0)
            cv2.putText(out, u.label, tuple(np.round(anchor + [4, -4]).astype(int)), cv2.FONT_HERSHEY_SIMPLEX, font,
                        colour, max(1, thick - 1), cv2.LINE_AA)
    return out


def _bars(units, intensity: np.ndarray, present: np.ndarray, max_value: float):
    for u, v, p in zip(units, np.asarray(intensity, float), np.asarray(present, bool)):
        yield u, (0.0 if not np.isfinite(v) else min(float(v), max_value)), float(v), bool(p)


def intensity_chart(units, intensity: np.ndarray, present: np.ndarray, width: int = 520, row: int = 16,
                    max_value: float = 3.0, title: tuple[str, ...] = (), warning: str = "") -> np.ndarray:
    """Horizontal bars of one face's (K,) ``intensity`` for its ``units`` as an RGB uint8 image; present
    units (``present``, (K,) bools) are orange and a red line marks the occurrence threshold (1).
    ``title``: lines above the bars (file, face); ``warning``: a line in red (an unreliable face)."""
    label_w, pad, line = 230, 8, 18
    heading = [(text, (30, 30, 30)) for text in title] + ([(warning, THRESHOLD)] if warning else [])
    top = pad + line * len(heading)
    n = len(units)
    out = np.full((top + pad + row * n + 18, width, 3), 255, np.uint8)
    for k, (text, colour) in enumerate(heading):
        cv2.putText(out, _fit(text, width - 2 * pad, 0.45), (pad, pad + line * k + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)
    plot_w = width - label_w - pad * 2
    for r, (u, clipped, v, is_present) in enumerate(_bars(units, intensity, present, max_value)):
        y = top + r * row
        cv2.putText(out, u.column, (pad, y + row - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (30, 30, 30), 1, cv2.LINE_AA)
        x1 = label_w + int(round(plot_w * clipped / max_value))
        cv2.rectangle(out, (label_w, y + 2), (max(label_w + 1, x1), y + row - 3), PRESENT if is_present else ABSENT, -1)
        text = "n/a" if not np.isfinite(v) else f"{v:.2f}"
        cv2.putText(out, text, (min(x1 + 3, width - 40), y + row - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (60, 60, 60), 1, cv2.LINE_AA)
    xt = label_w + int(round(plot_w / max_value))
    cv2.line(out, (xt, top), (xt, top + row * n), THRESHOLD, 1, cv2.LINE_AA)
    cv2.putText(out, "intensity (1 = occurrence threshold)", (label_w, top + row * n + 14), cv2.FONT_HERSHEY_SIMPLEX,
                0.36, (30, 30, 30), 1, cv2.LINE_AA)
    return out


def _fit(text: str, width_px: int, scale: float) -> str:
    """``text`` shortened with an ellipsis until it fits ``width_px`` at this font scale."""
    while len(text) > 4 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width_px:
        text = "..." + text[len(text) // 8 + 4:]
    return text
