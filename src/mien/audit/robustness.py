"""Robustness (the same faces, slightly changed) and strata (accuracy by measured face conditions).

Perturbations act on (H, W, 3) uint8 RGB images at their own size; sizes (shift, blur, patch) are
relative to the image side, so a 48x48 FER image and a 480x480 crop get the same relative change.
Random perturbations draw from ``numpy.random.default_rng([seed, crc32(image name)])`` (see
:func:`image_rng`): reruns match, and another tool can reproduce the changed images exactly.

Strata come from mien's own measurements (head yaw and pitch, inter-ocular distance, brightness of the
face centre, mien's ``reliable`` flag) made by :class:`mien.analyzer.Analyzer` on each image, which
finds faces in small images (FERPlus: 48x48) by mien's one rule for them (:mod:`mien.small_faces`),
exactly as ``mien analyze`` does.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from . import metrics as M

# ---- perturbations ---------------------------------------------------------------------------------


def _affine(img: np.ndarray, angle: float = 0.0, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    h, w = img.shape[:2]
    mat = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
    mat[0, 2] += dx
    mat[1, 2] += dy
    return cv2.warpAffine(img, mat, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flip(img, rng):
    """The image mirrored left to right. Every perturbation takes an (H, W, 3) uint8 image and the image's ``rng``."""
    return np.ascontiguousarray(img[:, ::-1])


def rotate_plus10(img, rng):
    """The image rotated 10° counterclockwise about its centre (borders replicated)."""
    return _affine(img, angle=10.0)


def rotate_minus10(img, rng):
    """The image rotated 10° clockwise about its centre (borders replicated)."""
    return _affine(img, angle=-10.0)


def scale_jitter(img, rng):
    """Zoom by a random factor in [0.9, 1.1] about the centre."""
    return _affine(img, scale=float(rng.uniform(0.9, 1.1)))


def shift_jitter(img, rng):
    """Shift by a random offset of up to 8% of the side in x and y."""
    h, w = img.shape[:2]
    return _affine(img, dx=float(rng.uniform(-0.08, 0.08) * w), dy=float(rng.uniform(-0.08, 0.08) * h))


def jpeg30(img, rng):
    """The image after a round trip through JPEG at quality 30."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def blur(img, rng):
    """Gaussian blur, sigma 1 px per 48 px of side."""
    return cv2.GaussianBlur(img, (0, 0), sigmaX=max(img.shape[:2]) / 48.0)


def brighter(img, rng):
    """The image with 40 grey levels (of 255) added, clipped."""
    return np.clip(img.astype(np.int16) + 40, 0, 255).astype(np.uint8)


def darker(img, rng):
    """The image with 40 grey levels (of 255) taken away, clipped."""
    return np.clip(img.astype(np.int16) - 40, 0, 255).astype(np.uint8)


def lower_contrast(img, rng):
    """The image with its contrast about its mean scaled by 0.6."""
    m = img.mean()
    return np.clip((img - m) * 0.6 + m, 0, 255).round().astype(np.uint8)


def higher_contrast(img, rng):
    """The image with its contrast about its mean scaled by 1.4, clipped."""
    m = img.mean()
    return np.clip((img - m) * 1.4 + m, 0, 255).round().astype(np.uint8)


def occlusion(img, rng):
    """A mid-grey square, 20% of the side, at a random place inside the central 70% of the image."""
    h, w = img.shape[:2]
    s = max(1, int(round(0.2 * min(h, w))))
    x = int(rng.uniform(0.15 * w, 0.85 * w - s))
    y = int(rng.uniform(0.15 * h, 0.85 * h - s))
    out = img.copy()
    out[y:y + s, x:x + s] = 128
    return out


@dataclass(frozen=True)
class Perturbation:
    """One change applied to every image: ``key`` (in tables and prediction files), ``label`` (on the
    card) and ``fn(image, rng) -> image``."""

    key: str
    label: str
    fn: Callable


PERTURBATIONS = (
    Perturbation("flip", "horizontal flip", flip),
    Perturbation("rotate_plus10", "rotation +10°", rotate_plus10),
    Perturbation("rotate_minus10", "rotation −10°", rotate_minus10),
    Perturbation("scale", "scale jitter (×0.9–1.1)", scale_jitter),
    Perturbation("shift", "shift jitter (±8% of the side)", shift_jitter),
    Perturbation("jpeg30", "JPEG quality 30", jpeg30),
    Perturbation("blur", "Gaussian blur (σ = side/48)", blur),
    Perturbation("brighter", "brightness +40 levels", brighter),
    Perturbation("darker", "brightness −40 levels", darker),
    Perturbation("low_contrast", "contrast ×0.6", lower_contrast),
    Perturbation("high_contrast", "contrast ×1.4", higher_contrast),
    Perturbation("occlusion", "grey patch, 20% of the side", occlusion),
)


def image_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream of one image: keyed by the seed and the image's name (its relative path), so a
    perturbed image is the same whatever subset or order it is processed in, here or in another tool."""
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def perturb(images: list[np.ndarray], names: list[str], p: Perturbation, seed: int = 0) -> list[np.ndarray]:
    """The images changed by ``p``, each with its own random stream (:func:`image_rng` of ``seed`` and
    its name), so the result does not depend on order or subset."""
    return [p.fn(im, image_rng(seed, n)) for im, n in zip(images, names)]


def robustness(predict, images, names, labels, clean_probs, *, seed: int = 0, samples: int = 1000,
               perturbations=PERTURBATIONS, progress=None) -> list[dict]:
    """Per perturbation: accuracy, drop from the clean accuracy (with a paired 95% bootstrap interval)
    and the share of images whose top class changed (no prediction counts as wrong, and as a change
    from a prediction).

    ``predict(perturbation, changed_images) -> (N, 8)``; a model that cannot be run (a predictions file
    with rows for changed images) may ignore the images and look its rows up by ``perturbation.key``;
    it returns None for a perturbation it has no predictions for (that row is left out).
    """
    y = np.asarray(labels)
    clean_top = M.top_classes(clean_probs)
    clean_ok = (clean_top == y).astype(np.float64)
    rows = []
    for j, p in enumerate(perturbations):
        probs = predict(p, perturb(images, names, p, seed) if images else [])
        if probs is None:
            continue
        top = M.top_classes(probs)
        ok = (top == y).astype(np.float64)
        diff = clean_ok - ok
        rows.append({"key": p.key, "label": p.label, "accuracy": float(ok.mean()),
                     "drop": float(diff.mean()),
                     "drop_ci95": M.bootstrap_mean_ci(diff, samples=samples, seed=seed + 10 + j),
                     "changed": float((top != clean_top).mean())})
        if progress:
            progress(p.label)
    return rows


# ---- strata from mien's measurements ---------------------------------------------------------------------

def measure_faces(images: list[np.ndarray], progress=None) -> dict[str, np.ndarray]:
    """mien's measurements of the highest-scoring face in each image (NaN / found=False when none)."""
    from ..analyzer import Analyzer, Options

    analyzer = Analyzer(Options(detector="short", iris=False, action_units=False, perceived=False))
    n = len(images)
    out = {k: np.full(n, np.nan) for k in ("yaw", "pitch", "iod_px", "brightness")}
    out["found"] = np.zeros(n, bool)
    out["reliable"] = np.zeros(n, bool)
    for i, img in enumerate(images):
        faces = analyzer.analyze(img)
        if len(faces):
            best = int(np.argmax(faces.scores))
            out["found"][i] = True
            out["reliable"][i] = bool(faces.quality.reliable[best])
            out["yaw"][i], out["pitch"][i] = faces.pose.yaw[best], faces.pose.pitch[best]
            out["iod_px"][i] = faces.quality.iod_px[best]
            out["brightness"][i] = faces.quality.brightness[best]
        if progress and (i + 1) % 500 == 0:
            progress(i + 1)
    return out


YAW_EDGES = (0.0, 10.0, 20.0, 30.0, np.inf)
PITCH_EDGES = (-np.inf, -15.0, -5.0, 5.0, 15.0, np.inf)
EXPOSURE_EDGES = (0.0, 0.3, 0.45, 0.6, np.inf)


def _edge(x: float) -> str:
    return "∞" if x == np.inf else ("−∞" if x == -np.inf else f"{x:g}")


def _bins(values: np.ndarray, edges, unit: str) -> list[tuple[str, np.ndarray]]:
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (values >= lo) & (values < hi)
        if lo == -np.inf:
            name = f"< {_edge(hi)}{unit}"
        elif hi == np.inf:
            name = f"≥ {_edge(lo)}{unit}"
        else:
            name = f"{_edge(lo)} to {_edge(hi)}{unit}"
        out.append((name, m))
    return out


def strata(faces: dict[str, np.ndarray], correct: np.ndarray) -> dict:
    """Accuracy (95% Wilson interval) by |yaw|, pitch, face size (tertiles of inter-ocular distance),
    exposure and mien's reliable flag. ``correct``: (N,) bools, the model's top class == the majority."""
    ok = np.asarray(correct, bool)
    found = faces["found"]
    overall = float(ok.mean()) if len(ok) else float("nan")
    groups: dict[str, list[tuple[str, np.ndarray]]] = {}
    with np.errstate(invalid="ignore"):
        groups["head yaw |°|"] = _bins(np.abs(faces["yaw"]), YAW_EDGES, "°")
        groups["head pitch (> 0 chin up)"] = _bins(faces["pitch"], PITCH_EDGES, "°")
        iod = faces["iod_px"]
        if found.sum() >= 3:
            q = np.nanquantile(iod[found], [1 / 3, 2 / 3])
            groups["face size (eye distance, px)"] = [
                (f"< {q[0]:.1f} px", iod < q[0]), (f"{q[0]:.1f} to {q[1]:.1f} px", (iod >= q[0]) & (iod < q[1])),
                (f"≥ {q[1]:.1f} px", iod >= q[1])]
        groups["exposure (face-centre grey level, 0–1)"] = _bins(faces["brightness"], EXPOSURE_EDGES, "")
    groups["mien quality check"] = [("reliable", found & faces["reliable"]), ("not reliable", found & ~faces["reliable"]),
                                    ("no face found", ~found)]
    out = {"overall_accuracy": overall, "faces_found": int(found.sum()), "images": int(len(ok)), "groups": {}}
    for gname, bins in groups.items():
        rows = []
        for name, m in bins:
            n = int(m.sum())
            hits = int(ok[m].sum())
            lo, hi = M.wilson_interval(hits, n)
            rows.append({"bin": name, "images": n, "accuracy": hits / n if n else float("nan"), "ci95": (lo, hi),
                         "below_overall": bool(n and hi < overall)})
        out["groups"][gname] = rows
    return out
