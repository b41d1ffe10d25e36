"""Perceived expression: what human observers would call a face, as a calibrated distribution.

mien measures faces, not feelings. This model predicts how a crowd of FERPlus annotators would
label a face (neutral, happiness, surprise, sadness, anger, disgust, fear, contempt). It says nothing
about what the person feels: ``perceived_happiness = 0.9`` means that about 90% of observers would
call the face happy, not that the person is happy. See docs/perceived.md (model card).

Pipeline: (N, 468, 3) image-pixel meshes → :func:`aligned_face_crops` (FER2013-framed 48x48 grey)
→ :class:`PerceivedModel` (onnxruntime, one thread by default; temperature-scaled softmax;
abstention) → :class:`Perceived`, which ``mien.Faces`` carries and ``mien.to_frame`` writes as the
``perceived_*`` columns.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .mesh import check_meshes, eye_centres
from .runtime import REPAIR_HINT, ModelFileError, onnx_session, verified_json, verified_model_path

CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
UNCERTAIN = "uncertain"
# Why the top label is "uncertain": these, ";"-joined; "" when there is a label.
LOW_SHARE, UNRELIABLE_FACE, NOT_MEASURED = "low_share", "unreliable_face", "not_measured"
MODEL_NAME = "perceived.onnx"
SIDECAR_NAME = "perceived.json"
FACE_SIZE = 48

# FER2013 framing, measured with training/measure_framing.py (result in training/framing.json):
# 600 seeded-random FERPlus Train images (593 with a face), each upscaled with
# tests/oracle_inputs.upscale_with_border (4x bicubic + 64 px border) and run through
# Analyzer(AnalyzerOptions(detector="short", iris=False)); eye centres = mean of landmarks 33,133
# and of 362,263, mapped back to 48x48 pixels with (p - 64) / 4. Medians: image-left eye
# (15.08, 18.88), image-right eye (32.68, 18.74), midpoint (24.00, 18.97), inter-ocular distance
# 17.32 px (IQR 15.8-18.9), median roll -0.9°. Coordinates are pixel centres (x right, y down).
FER_EYE_MID = (24.003, 18.969)
FER_IOD = 17.317
FER_EYE_LEFT = (FER_EYE_MID[0] - FER_IOD / 2, FER_EYE_MID[1])  # image-left eye (landmarks 33, 133)
FER_EYE_RIGHT = (FER_EYE_MID[0] + FER_IOD / 2, FER_EYE_MID[1])  # image-right eye (landmarks 362, 263)
_SUPERSAMPLE = 4  # warp at 4x then area-downsample, so big faces are not aliased


@dataclass(frozen=True)
class Perceived:
    """Perceived expression of N faces.

    probabilities: (N, 8) float32 over ``CLASSES``, temperature-calibrated, rows sum to 1.
    top: N labels, a class name or ``"uncertain"`` (top probability below the threshold, or the
    face was marked unreliable). top_p: (N,) top probability. entropy: (N,) in nats (0 .. ln 8).
    abstain_reason: N strings, why the top is "uncertain" (LOW_SHARE, UNRELIABLE_FACE, NOT_MEASURED,
    ";"-joined), "" when it is a label.
    """

    probabilities: np.ndarray
    top: tuple[str, ...]
    top_p: np.ndarray
    entropy: np.ndarray
    abstain_reason: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.top)

    def take(self, index) -> "Perceived":
        """The faces at ``index`` (an integer array or a boolean mask)."""
        picked = np.arange(len(self.top))[index]
        return Perceived(self.probabilities[picked], tuple(self.top[i] for i in picked), self.top_p[picked],
                         self.entropy[picked], tuple(self.abstain_reason[i] for i in picked))

    @staticmethod
    def concat(batches: list["Perceived"]) -> "Perceived":
        """The faces of several batches, in order."""
        return Perceived(np.concatenate([b.probabilities for b in batches]), tuple(t for b in batches for t in b.top),
                         np.concatenate([b.top_p for b in batches]), np.concatenate([b.entropy for b in batches]),
                         tuple(r for b in batches for r in b.abstain_reason))


@functools.cache
def model_card() -> dict:
    """The sidecar perceived.json: sha256, provenance, temperature and abstention threshold."""
    return verified_json(f"models/{SIDECAR_NAME}")


def preprocess(faces: np.ndarray) -> np.ndarray:
    """(48,48), (N,48,48), (N,48,48,1) grey or (N,48,48,3) RGB, any real dtype in 0..255 → (N,1,48,48) float32."""
    x = np.asarray(faces)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4 and x.shape[-1] == 3:
        x = np.stack([cv2.cvtColor(f.astype(np.uint8) if f.dtype != np.float32 else f, cv2.COLOR_RGB2GRAY)
                      for f in x])
    elif x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (FACE_SIZE, FACE_SIZE):
        raise InputError(f"expected 48x48 grey faces shaped (N,48,48), (N,48,48,1) or (N,48,48,3); got {np.shape(faces)}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"expected real-valued pixels 0..255, got dtype {x.dtype}")
    return x.astype(np.float32)[:, None]


def entropy_nats(p: np.ndarray) -> np.ndarray:
    """(N,) entropy in nats of (N, K) distributions."""
    q = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(q)).sum(1)


@dataclass(frozen=True)
class Calibration:
    """Maps logits to calibrated probabilities: ``softmax(matrix @ log_softmax(logits) + bias)``.

    Temperature scaling is ``matrix = I / T``, ``bias = 0``; a diagonal matrix with a bias is vector
    scaling of the log-probabilities, a full one Dirichlet calibration (Kull et al. 2019). The sidecar
    holds either ``temperature`` alone or a ``calibration`` object with ``matrix`` and ``bias``.
    """

    matrix: np.ndarray  # (8, 8)
    bias: np.ndarray  # (8,)

    @staticmethod
    def from_temperature(t: float) -> "Calibration":
        """Temperature scaling by ``t`` (> 1 softens the probabilities, < 1 sharpens them)."""
        return Calibration(np.eye(len(CLASSES)) / float(t), np.zeros(len(CLASSES)))

    @staticmethod
    def from_card(card: dict) -> "Calibration":
        """The calibration a model sidecar (``perceived.json``, as a dict) holds: its ``calibration``
        matrix and bias, else its ``temperature``. Raises ModelFileError when the shapes are not 8x8 and 8."""
        if "calibration" not in card:
            return Calibration.from_temperature(card["temperature"])
        c = card["calibration"]
        matrix, bias = np.asarray(c["matrix"], np.float64), np.asarray(c["bias"], np.float64)
        if matrix.shape != (len(CLASSES), len(CLASSES)) or bias.shape != (len(CLASSES),):
            raise ModelFileError(f"model sidecar calibration must be an 8x8 matrix and 8 biases, got "
                                 f"{matrix.shape} and {bias.shape}. {REPAIR_HINT}")
        return Calibration(matrix, bias)

    @property
    def temperature(self) -> float:
        """T when this is temperature scaling, else NaN."""
        t = 1.0 / self.matrix[0, 0]
        plain = np.allclose(self.matrix, np.eye(len(CLASSES)) / t) and not self.bias.any()
        return float(t) if plain else float("nan")

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        z = np.asarray(logits, np.float64)
        # a product and a sum per row rather than a matrix product, which BLAS sums another way for a single row
        z = (log_softmax(z)[:, None, :] * self.matrix).sum(2) + self.bias
        return np.exp(log_softmax(z))


def energy_score(logits: np.ndarray) -> np.ndarray:
    """(N,) log-sum-exp of each row of logits: low for faces unlike the training faces (Liu et al. 2020)."""
    m = logits.max(1)
    return m + np.log(np.exp(logits - m[:, None]).sum(1))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, K) logits, computed stably (the rows' log-probabilities)."""
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


class PerceivedModel:
    """The shipped perceived-expression model; create once, call on many batches of faces.

    ``folder``: load ``perceived.onnx`` and ``perceived.json`` from there instead (a candidate model
    being compared; its file is not checked against the manifest).
    """

    def __init__(self, num_threads: int = 1, threshold: float | None = None, temperature: float | None = None,
                 folder: Path | None = None):
        card = model_card() if folder is None else json.loads((Path(folder) / SIDECAR_NAME).read_text())
        self.calibration = Calibration.from_temperature(temperature) if temperature is not None else Calibration.from_card(card)
        self.threshold = float(card["abstain_threshold"] if threshold is None else threshold)
        self.min_energy = float(card.get("ood_min_energy", -np.inf))
        path = verified_model_path(MODEL_NAME) if folder is None else Path(folder) / MODEL_NAME
        self._session = onnx_session(path, num_threads)
        self._input = self._session.get_inputs()[0].name

    @property
    def temperature(self) -> float:
        """T when the calibration is temperature scaling, else NaN (see ``Calibration.temperature``)."""
        return self.calibration.temperature

    def logits(self, faces: np.ndarray) -> np.ndarray:
        """Uncalibrated (N, 8) logits."""
        x = preprocess(faces)
        if len(x) == 0:
            return np.zeros((0, len(CLASSES)), np.float32)
        return self._session.run(None, {self._input: x})[0]

    def from_logits(self, logits: np.ndarray, reliable=None) -> Perceived:
        """Calibrated shares of (N, 8) logits, with top label and entropy. A face whose logits'
        log-sum-exp (energy score) is below the sidecar's ``ood_min_energy`` is far from the training
        faces and gets top label ``"uncertain"``."""
        z = np.asarray(logits, np.float64).reshape(-1, len(CLASSES))
        familiar = energy_score(z) >= self.min_energy
        trusted = familiar if reliable is None else familiar & np.asarray(reliable, bool).reshape(-1)
        return self.from_probabilities(self.calibration(z), trusted)

    def from_probabilities(self, p: np.ndarray, reliable=None) -> Perceived:
        """Top label (or uncertain), top share and entropy of (N, 8) calibrated probabilities."""
        p = np.asarray(p, np.float64).reshape(-1, len(CLASSES))
        top_p = p.max(1)
        measured = np.isfinite(p).all(1)
        low = measured & ~(top_p >= self.threshold)
        unreliable = measured & ~np.asarray(True if reliable is None else reliable, bool).reshape(-1)
        reasons = tuple(";".join(name for name, hit in ((UNRELIABLE_FACE, u), (LOW_SHARE, lo), (NOT_MEASURED, not m)) if hit)
                        for m, lo, u in zip(measured, low, np.broadcast_to(unreliable, low.shape)))
        top = tuple(UNCERTAIN if why else CLASSES[k] for k, why in zip(p.argmax(1), reasons))
        return Perceived(p.astype(np.float32), top, top_p.astype(np.float32), entropy_nats(p).astype(np.float32), reasons)

    def __call__(self, faces: np.ndarray, reliable=None) -> Perceived:
        """Perceived expression of (N, 48, 48) FER2013-framed grey faces.

        reliable: optional (N,) bools (e.g. mien's quality ``reliable``); an unreliable face keeps its
        probabilities but its top label is ``"uncertain"``.
        """
        return self.from_logits(self.logits(faces), reliable)


def alignment_matrices(meshes: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """(N, 2, 3) similarity transforms from image pixels to a size x size FER2013-framed crop.

    Rotates so the eyes are level and scales/translates so the eye centres (mean of landmarks
    33,133 and of 362,263) land on ``FER_EYE_LEFT`` / ``FER_EYE_RIGHT`` (scaled by size / 48).
    """
    m = check_meshes(meshes, "meshes (image pixels)", dims=2).astype(np.float64)
    eyes = eye_centres(m[..., :2])
    if not np.isfinite(eyes).all():
        raise InputError("meshes have non-finite eye landmarks")
    a, b = eyes[:, 0], eyes[:, 1]
    d = b - a
    iod = np.linalg.norm(d, axis=1)
    if (iod <= 0).any():
        raise InputError("meshes have coincident eye centres")
    k = size / FACE_SIZE
    scale = FER_IOD * k / iod
    cos, sin = d[:, 0] / iod * scale, d[:, 1] / iod * scale
    # dst = R(-angle) * scale * (src - mid) + target_mid ; pixel centres: FER coords are 48 px grid
    # centres, so a k-times grid maps u -> (u + 0.5) * k - 0.5
    mid = (a + b) / 2
    tx = (FER_EYE_MID[0] + 0.5) * k - 0.5
    ty = (FER_EYE_MID[1] + 0.5) * k - 0.5
    out = np.empty((len(m), 2, 3))
    out[:, 0, 0], out[:, 0, 1] = cos, sin
    out[:, 1, 0], out[:, 1, 1] = -sin, cos
    out[:, 0, 2] = tx - (cos * mid[:, 0] + sin * mid[:, 1])
    out[:, 1, 2] = ty - (-sin * mid[:, 0] + cos * mid[:, 1])
    if not np.isfinite(out).all():
        raise InputError("meshes too far out of range for an alignment (eye coordinates overflow)")
    return out


def aligned_face_crops(rgb: np.ndarray, meshes: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 grey FER2013-framed crops of the faces whose meshes are given.

    rgb: (H, W, 3) uint8 RGB image (or (H, W) grey); meshes: (N, 468, 3) landmarks in its pixels.
    Eyes are made level and placed where FER2013 puts them (see ``FER_EYE_MID`` / ``FER_IOD``).
    Warped at 4x and area-downsampled; pixels outside the image repeat the border. Only the part
    of the image each crop reads is turned grey (a 4K photo: 1 ms instead of 14).
    """
    img = np.asarray(rgb)
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)) or img.dtype != np.uint8:
        raise InputError(f"expected an (H, W, 3) RGB or (H, W) grey uint8 image, got {img.dtype} {img.shape}")
    big = FACE_SIZE * _SUPERSAMPLE
    mats = alignment_matrices(meshes, big)
    out = np.empty((len(mats), FACE_SIZE, FACE_SIZE), np.uint8)
    for i, mat in enumerate(mats):
        (x0, y0, x1, y1), shifted = _source_window(mat, big, img.shape[1], img.shape[0])
        window = img[y0:y1, x0:x1]
        grey = cv2.cvtColor(np.ascontiguousarray(window), cv2.COLOR_RGB2GRAY) if img.ndim == 3 else window
        warped = cv2.warpAffine(grey, shifted, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[i] = cv2.resize(warped, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    return out


def _source_window(mat: np.ndarray, size: int, width: int, height: int):
    """The image rectangle (x0, y0, x1, y1) that a size x size warp by ``mat`` reads (with a margin
    for bilinear interpolation, clipped to the image, so that the border repeats as before), and
    ``mat`` moved to that rectangle's origin."""
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], float) @ cv2.invertAffineTransform(mat).T
    x0 = min(max(int(np.floor(corners[:, 0].min())) - 2, 0), width - 1)
    y0 = min(max(int(np.floor(corners[:, 1].min())) - 2, 0), height - 1)
    x1 = max(min(int(np.ceil(corners[:, 0].max())) + 3, width), x0 + 1)
    y1 = max(min(int(np.ceil(corners[:, 1].max())) + 3, height), y0 + 1)
    shifted = np.array(mat, float)
    shifted[:, 2] += shifted[:, 0] * x0 + shifted[:, 1] * y0
    return (x0, y0, x1, y1), shifted

