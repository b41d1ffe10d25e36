"""How much to trust each face: size, sharpness, exposure, pose and landmark presence.

Each measure is computed from the mesh and the 192x192 face crop the landmark model saw,
and compared with a documented threshold; ``reliable`` is true when all of them pass and
``reasons`` names the ones that failed. Thresholds are defaults of ``QualityThresholds``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .mesh import check_meshes, interocular_distance

# Sharpness is measured at a fixed scale relative to the face (the 1.5x face crop resized to
# 64 px, so the face spans ~40 px, about FER2013's 48 px), so it does not reward big faces.
SHARPNESS_SIZE = 64


NOT_DETECTED = "not_detected"  # the check that fails every face the small-image search found, which video never runs

# Every check, in the order ``reasons`` lists failures, and what its failure means.
CHECKS = {
    "small_face": "the eyes are closer than min_iod_px pixels apart: too few pixels for the measures",
    "blurry": "Laplacian contrast below min_sharpness at a fixed scale",
    "underexposed": "face centre darker than min_brightness",
    "overexposed": "face centre brighter than max_brightness",
    "clipped": "more than max_clipped of the face centre is black or white clipped",
    "extreme_pose": "head turned more than max_yaw or tilted more than max_pitch degrees",
    "low_presence": "the landmark model's face-presence probability is below min_presence",
    NOT_DETECTED: "found by the small-image search (mien.small_faces), which no detector placed: it may not be a face",
}


@dataclass(frozen=True)
class QualityThresholds:
    """The limits of the reliability checks (``CHECKS``); a face passing all of them is ``reliable``.

    min_iod_px: least distance between the eye centres, pixels. min_sharpness: least Laplacian
    contrast at 64 px. min_brightness, max_brightness: mean grey level of the face centre, 0..1.
    max_clipped: largest share of face-centre pixels clipped black or white, 0..1. max_yaw,
    max_pitch: largest head turn and tilt, degrees. min_presence: least face-presence probability
    of the landmark model, 0..1."""

    min_iod_px: float = 15.0  # eye-centre distance; FER2013's 48 px faces have about 18
    min_sharpness: float = 0.35  # std of the Laplacian / std of the face crop, at 64 px
    min_brightness: float = 0.12  # mean grey level of the face centre, 0..1
    max_brightness: float = 0.92
    max_clipped: float = 0.25  # share of face-centre pixels at 0..5 or 250..255
    max_yaw: float = 45.0
    max_pitch: float = 35.0
    min_presence: float = 0.9


@dataclass(frozen=True)
class Quality:
    """The quality measures of N faces, whether each is reliable, and which checks failed."""

    iod_px: np.ndarray
    sharpness: np.ndarray
    brightness: np.ndarray
    clipped: np.ndarray
    reliable: np.ndarray
    reasons: tuple[str, ...]  # ";"-joined failure names per face, "" when reliable

    def take(self, index) -> "Quality":
        """The faces at ``index`` (an integer array or a boolean mask)."""
        picked = np.arange(len(self.reasons))[index]
        return Quality(self.iod_px[picked], self.sharpness[picked], self.brightness[picked], self.clipped[picked],
                       self.reliable[picked], tuple(self.reasons[i] for i in picked))

    @staticmethod
    def concat(batches: list["Quality"]) -> "Quality":
        """The faces of several batches, in order."""
        arrays = (np.concatenate([getattr(q, name) for q in batches]) for name in ("iod_px", "sharpness", "brightness", "clipped", "reliable"))
        return Quality(*arrays, tuple(r for q in batches for r in q.reasons))


def crop_measures(crop: np.ndarray) -> tuple[float, float, float]:
    """(sharpness, brightness, clipped share) of one RGB face crop."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_AREA)
    lo, hi = SHARPNESS_SIZE // 4, 3 * SHARPNESS_SIZE // 4
    centre = small[lo:hi, lo:hi]
    _, lap_sd = cv2.meanStdDev(cv2.Laplacian(small, cv2.CV_32F)[lo:hi, lo:hi])
    mean, sd = cv2.meanStdDev(centre)
    clipped = 1.0 - cv2.countNonZero(cv2.inRange(centre, 6, 249)) / centre.size  # at most 5 or at least 250
    return float(lap_sd[0, 0] / max(sd[0, 0], 1.0)), float(mean[0, 0] / 255.0), clipped


def assess(meshes: np.ndarray, crops: Sequence[np.ndarray], presence: np.ndarray, yaw: np.ndarray, pitch: np.ndarray,
           thresholds: QualityThresholds = QualityThresholds(), searched: np.ndarray | None = None) -> Quality:
    """Quality of N faces from their meshes (pixels), the crops the landmark model saw (an array, or a
    list of crops), presence and pose, and which faces the small-image search found (``searched``,
    default none): each measure, the checks in ``CHECKS`` against ``thresholds``, and the failed ones per face."""
    iod = interocular_distance(check_meshes(meshes))
    measures = np.array([crop_measures(c) for c in crops], np.float64).reshape(-1, 3)
    sharp, bright, clipped = measures.T
    t = thresholds
    checks = {
        "small_face": iod < t.min_iod_px,
        "blurry": sharp < t.min_sharpness,
        "underexposed": bright < t.min_brightness,
        "overexposed": bright > t.max_brightness,
        "clipped": clipped > t.max_clipped,
        "extreme_pose": (np.abs(yaw) > t.max_yaw) | (np.abs(pitch) > t.max_pitch),
        "low_presence": presence < t.min_presence,
        NOT_DETECTED: np.zeros(len(iod), bool) if searched is None else np.asarray(searched, bool),
    }
    failed = np.stack([checks[name] for name in CHECKS], axis=1) if len(iod) else np.zeros((0, len(CHECKS)), bool)
    reasons = tuple(";".join(n for n, f in zip(CHECKS, row) if f) for row in failed.tolist())
    return Quality(iod, sharp, bright, clipped, ~failed.any(axis=1), reasons)
