"""FERPlus reading and the evaluation protocol, shared by training and benchmarks (numpy + OpenCV only).

Votes come from each split's ``label.csv`` (the 2016 release). We use it on purpose: published
FERPlus results use it, and it is the file FERPlus's own scripts write. ``fer2013new.csv`` (2017)
differs on 1,602 images and is not used.
"""
from __future__ import annotations

import csv
from pathlib import Path

import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
# The FERPlus protocol and the metrics have one implementation, in mien's audit.
from mien.audit.metrics import crowd_distribution, drop_single_votes, majority_labels, mean_kl  # noqa: E402,F401
from mien.audit.metrics import ece as _ece  # noqa: E402
from mien.audit.metrics import single_annotator_baseline  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FERPLUS = DATA / "ferplus"

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
CLASSES = VOTE_COLUMNS[:8]
# Its pixels are a warning-sign graphic, not the face its votes describe (KNOWN_ISSUES.md, section 3).
EXCLUDED = frozenset({"fer0033120.png"})


def split_dir(split: str) -> Path:
    return FERPLUS / "data" / f"FER2013{split}"


def read_votes(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(names (M,), votes (M, 10) int64) from label.csv, without the excluded file."""
    names, votes = [], []
    with open(split_dir(split) / "label.csv", newline="") as f:
        for row in csv.reader(f):
            if not row or not row[0].strip() or row[0].strip() in EXCLUDED:
                continue
            names.append(row[0].strip())
            votes.append([int(v) for v in row[-10:]])
    return np.array(names), np.array(votes, np.int64)


def read_images(split: str, names) -> np.ndarray:
    """(M, 48, 48) uint8 greyscale."""
    folder = split_dir(split)
    out = np.empty((len(names), 48, 48), np.uint8)
    for i, n in enumerate(names):
        img = cv2.imread(str(folder / n), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise FileNotFoundError(folder / n)
        if img.shape != (48, 48):
            img = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
        out[i] = img
    return out






def soft_targets(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training targets: (distribution over the 8 classes (M, 8) float32, usable mask (M,)).

    Single votes are dropped; unknown and NF votes are removed and the 8 expression counts are
    renormalised. An image is unusable when, after dropping single votes, its most-voted column is
    unknown or NF (ties included) or no expression vote is left.
    """
    v = drop_single_votes(votes).astype(np.float64)
    expr = v[:, :8]
    usable = (expr.sum(1) > 0) & (expr.max(1) > v[:, 8:].max(1))
    dist = np.zeros_like(expr)
    dist[usable] = expr[usable] / expr[usable].sum(1, keepdims=True)
    return dist.astype(np.float32), usable






def training_faces(first: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(names, crowd distribution, 48x48 faces) of the usable Train images (``soft_targets``), the first ``first`` of
    them only when given (smoke tests), and how many Train images were dropped as unknown or not a face."""
    names, votes = read_votes("Train")
    dist, usable = soft_targets(votes)
    names, dist = names[usable], dist[usable]
    if first:
        names, dist = names[:first], dist[:first]
    return names, dist, read_images("Train", names), int((~usable).sum())


def valid_faces() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(names, majority labels (-1 outside the majority protocol), 48x48 faces) of every Valid image."""
    names, votes = read_votes("Valid")
    return names, majority_labels(votes), read_images("Valid", names)


def train_prior() -> np.ndarray:
    """(8,) share of each class among the Train images' crowd majorities (the prior that logit adjustment divides out)."""
    labels = majority_labels(read_votes("Train")[1])
    return np.bincount(labels[labels >= 0], minlength=len(CLASSES)) / (labels >= 0).sum()


def train_duplicate_names() -> dict[str, set[str]]:
    """Per split, the names of files that have a pixel-identical copy in Train."""
    rows = list(csv.DictReader(open(FERPLUS / "extras" / "ferplus_to_fer2013.csv", newline="")))
    train_groups = {r["pixel_identical_group_id"] for r in rows if r["ferplus_split"] == "Train"}
    out: dict[str, set[str]] = {}
    for r in rows:
        if r["ferplus_split"] != "Train" and r["pixel_identical_group_id"] in train_groups:
            out.setdefault(r["ferplus_split"], set()).add(r["ferplus_name"])
    return out


# ---- metrics on probabilities (N, 8) ----

def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error with 15 equal-width bins (the figure the perceived-expression issue asks for)."""
    return _ece(probs, labels, bins)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)






def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising NLL of the majority labels (golden-section search on log T)."""
    lo, hi = np.log(0.25), np.log(8.0)
    f = lambda lt: nll(softmax(logits, float(np.exp(lt))), labels)
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(80):
        if f(c) < f(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(np.exp((a + b) / 2))


def risk_coverage(probs: np.ndarray, labels: np.ndarray, thresholds=None) -> list[dict]:
    conf, correct = probs.max(1), probs.argmax(1) == labels
    if thresholds is None:
        thresholds = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    rows = []
    for t in thresholds:
        m = conf >= t
        rows.append({"threshold": float(t), "coverage": float(m.mean()),
                     "accuracy_answered": float(correct[m].mean()) if m.any() else float("nan")})
    return rows


def threshold_for_accuracy(probs: np.ndarray, labels: np.ndarray, target: float) -> float:
    """Smallest top-probability threshold at which accuracy on the answered faces reaches target."""
    conf, correct = probs.max(1), probs.argmax(1) == labels
    order = np.argsort(-conf)
    cum = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(cum >= target)[0]
    if len(ok) == 0:
        return 1.0
    k = ok.max()  # largest answered set (lowest threshold) whose accuracy still reaches the target
    return float(conf[order][k])


def classification_metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    pred = probs.argmax(1)
    cm = np.zeros((8, 8), np.int64)
    np.add.at(cm, (labels, pred), 1)
    recall = {CLASSES[i]: float(cm[i, i] / cm[i].sum()) if cm[i].sum() else float("nan") for i in range(8)}
    return {"n": int(len(labels)), "accuracy": float((pred == labels).mean()),
            "per_class_recall": recall, "unweighted_average_recall": float(np.nanmean(list(recall.values()))),
            "confusion_matrix": cm.tolist(), "support": cm.sum(1).tolist()}
