"""FERPlus reading and the evaluation protocol, shared by training and benchmarks (numpy + OpenCV only).

Votes come from each split's ``label.csv`` (the 2016 release). We use it on purpose: published
FERPlus results use it, and it is the file FERPlus's own scripts write. ``fer2013new.csv`` (2017)
differs on 1,602 images and is not used.
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

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


def drop_single_votes(votes: np.ndarray) -> np.ndarray:
    """Classes that received exactly one vote are treated as noise and set to 0 (FERPlus reference code)."""
    v = votes.copy()
    v[v == 1] = 0
    return v


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus 'majority' protocol: index 0..7, or -1 when the image is not kept.

    Drop single votes; keep the image only if its top class holds more than half of the remaining
    votes and is one of the 8 expressions (not unknown / NF).
    """
    v = drop_single_votes(votes)
    total = v.sum(1)
    top = v.argmax(1)
    keep = (v.max(1) * 2 > total) & (top < 8) & (total > 0)
    return np.where(keep, top, -1)


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


def crowd_distribution(votes: np.ndarray) -> np.ndarray:
    """Same as the training targets, for every image (rows with no expression vote stay 0)."""
    v = drop_single_votes(votes).astype(np.float64)[:, :8]
    s = v.sum(1, keepdims=True)
    return np.divide(v, s, out=np.zeros_like(v), where=s > 0)


def single_annotator_accuracy(votes: np.ndarray) -> dict:
    """Expected accuracy of one annotator against the other nine (leave-one-out), majority-protocol images.

    For each image kept by the majority protocol and each of its (usually ten) votes: remove that
    vote, take the most-voted class of the remaining votes (all ten columns; ties go to the earlier
    column, as numpy's argmax does) and score the removed vote against it. A removed unknown / NF
    vote can never match, so it counts as wrong. Averaged over all (image, vote) pairs.
    A stricter variant re-applies the full majority protocol to the nine remaining votes and skips
    pairs where it keeps no label; it is reported alongside.
    """
    keep = majority_labels(votes) >= 0
    hits = pairs = 0.0
    strict_hits = strict_pairs = 0.0
    for row in votes[keep]:
        for c in np.nonzero(row)[0]:
            n = row[c]
            rest = row.copy()
            rest[c] -= 1
            pairs += n
            hits += n * (rest.argmax() == c)
            lab = majority_labels(rest[None])[0]
            if lab >= 0:
                strict_pairs += n
                strict_hits += n * (lab == c)
    return {"accuracy": hits / pairs, "pairs": int(pairs), "images": int(keep.sum()),
            "accuracy_vs_majority_protocol_of_other_nine": strict_hits / strict_pairs,
            "pairs_with_majority_of_other_nine": int(strict_pairs)}


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

def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: top-class confidence vs. correctness, equal-width bins."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    err = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            err += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(err)


def mean_kl(crowd: np.ndarray, probs: np.ndarray) -> float:
    """Mean KL(crowd || model) in nats."""
    p = np.clip(probs, 1e-12, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(crowd > 0, crowd * (np.log(np.where(crowd > 0, crowd, 1)) - np.log(p)), 0.0)
    return float(terms.sum(1).mean())


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
