"""Validity metrics as pure numpy functions over arrays.

Conventions, used everywhere in this module:

- ``probs``: (N, K) float, one row per image, columns in the order of ``CLASSES`` (K = 8); rows sum
  to 1. A class a model cannot output has probability 0 in every row. A row of NaN is an image the
  model gave no prediction for (a tool that found no face or skipped the file): it counts as wrong
  wherever a label is compared, and is left out of calibration, risk–coverage and KL.
- ``labels``: (N,) int in 0..K-1, the crowd majority label; ``-1`` marks an image that has no
  majority label (it is left out of every metric that needs one).
- ``votes``: (N, V) int vote counts; columns 0..7 are ``CLASSES``; a dataset may add columns that
  are not expressions (FERPlus adds ``unknown`` and ``NF``, "not a face").

Nothing here reads files or draws; :mod:`mien.audit.card` turns the results into the card.
"""
from __future__ import annotations

import numpy as np

from ..perceived import CLASSES

K = len(CLASSES)
KL_FLOOR = 1e-6  # model probabilities are floored here (then renormalised) before the KL divergence


def _check_probs(probs) -> np.ndarray:
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or p.shape[1] != K:
        raise ValueError(f"expected probabilities shaped (N, {K}), got {p.shape}")
    return p


def answered(probs) -> np.ndarray:
    """(N,) bool: the model gave a prediction for the image (its row is not NaN)."""
    return np.isfinite(_check_probs(probs)).all(1)


def top_classes(probs) -> np.ndarray:
    """(N,) the model's top class, -1 where it gave no prediction."""
    p = _check_probs(probs)
    ok = answered(p)
    return np.where(ok, np.nan_to_num(p, nan=-1.0).argmax(1), -1)


def _check_labels(labels, n: int | None = None) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"expected (N,) integer labels, got shape {y.shape} dtype {y.dtype}")
    if n is not None and len(y) != n:
        raise ValueError(f"labels have {len(y)} rows, probabilities {n}")
    if ((y < -1) | (y >= K)).any():
        raise ValueError(f"labels must be -1 (no label) or 0..{K - 1}")
    return y.astype(np.int64)


# ---- crowd votes ----------------------------------------------------------------------------------

def drop_single_votes(votes) -> np.ndarray:
    """Classes that received exactly one vote are treated as noise and set to 0 (FERPlus reference code)."""
    v = np.array(votes, np.int64, copy=True)
    v[v == 1] = 0
    return v


def majority_labels(votes) -> np.ndarray:
    """FERPlus "majority" protocol: (N,) label 0..7, or -1 where the image is not kept.

    Per image: drop classes with a single vote; keep the image only if its top class holds more than
    half of the remaining votes and is one of the 8 expressions (not a non-expression column such as
    unknown or NF). Ties for the top can never hold more than half, so they are not kept.
    """
    v = drop_single_votes(votes)
    if v.ndim != 2 or v.shape[1] < K:
        raise ValueError(f"expected votes shaped (N, >= {K}), got {v.shape}")
    total = v.sum(1)
    top = v.argmax(1)
    keep = (v.max(1) * 2 > total) & (top < K) & (total > 0)
    return np.where(keep, top, -1)


def crowd_distribution(votes) -> np.ndarray:
    """(N, 8) share of the expression votes per class, after dropping single votes (rows with none: 0)."""
    v = drop_single_votes(votes).astype(np.float64)[:, :K]
    s = v.sum(1, keepdims=True)
    return np.divide(v, s, out=np.zeros_like(v), where=s > 0)


def single_annotator_scores(votes) -> np.ndarray:
    """(N,) expected accuracy of one annotator against the majority of the others, per image.

    Leave-one-out: for each vote on the image, remove it and take the most-voted class among the
    remaining votes (all columns, raw counts, so an unknown / NF vote can be the top). The removed
    vote scores 1 if its class is that top class. **Ties**: if k classes tie for the top of the
    remaining votes, the vote scores 1/k when its class is one of them (the expected score when the
    tie is broken at random), else 0. A removed unknown / NF vote can never match an expression and
    so can only score when the others' top is also unknown / NF. The image's score is the mean over
    its votes (weighted by count); NaN for an image without votes.
    """
    expected, _, _ = _leave_one_out(np.asarray(votes, np.int64))
    return expected


def _leave_one_out(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image, the leave-one-out single-annotator score with k-way ties scored 1/k, and its
    bounds with every tie counted wrong / right (NaN for an image without votes)."""
    n, c = v.shape
    expected, lo, hi, total = np.zeros(n), np.zeros(n), np.zeros(n), v.sum(1)
    for j in range(c):
        has = v[:, j] > 0
        if not has.any():
            continue
        rest = v[has].copy()
        rest[:, j] -= 1
        tied = rest == rest.max(1, keepdims=True)
        k = tied.sum(1)
        weight = v[has, j]
        expected[has] += weight * np.where(tied[:, j], 1.0 / k, 0.0)
        lo[has] += weight * (tied[:, j] & (k == 1))
        hi[has] += weight * tied[:, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        return expected / total, lo / total, hi / total


def single_annotator_baseline(votes, labels=None) -> dict:
    """Single-annotator baseline on the images that have a majority label.

    Returns accuracy (mean of :func:`single_annotator_scores` over kept images, every image weighted
    equally; FERPlus has 10 votes on every image so this equals the per-vote mean), per-class recall
    (mean score over images whose majority label is that class), UAR over the classes present, the
    bounds obtained by counting every tie as wrong / as right, and the counts.
    """
    v = np.asarray(votes, np.int64)
    y = majority_labels(v) if labels is None else _check_labels(labels, len(v))
    keep = y >= 0
    s, lo, hi = _leave_one_out(v)
    recall = [float(s[keep & (y == c)].mean()) if (keep & (y == c)).any() else float("nan") for c in range(K)]
    present = [r for r in recall if np.isfinite(r)]
    return {
        "accuracy": float(s[keep].mean()) if keep.any() else float("nan"),
        "accuracy_ties_wrong": float(lo[keep].mean()) if keep.any() else float("nan"),
        "accuracy_ties_right": float(hi[keep].mean()) if keep.any() else float("nan"),
        "per_class_recall": dict(zip(CLASSES, recall)),
        "uar": float(np.mean(present)) if present else float("nan"),
        "images": int(keep.sum()),
        "votes": int(v[keep].sum()),
        "tie_rule": "a vote that ties with k classes for the top of the other votes scores 1/k",
    }


# ---- agreement with the majority --------------------------------------------------------------------

def accuracy(probs, labels) -> float:
    """Share of labelled images whose top class is the label (no prediction: wrong)."""
    top, y = top_classes(probs), _check_labels(labels, len(probs))
    m = y >= 0
    return float((top[m] == y[m]).mean()) if m.any() else float("nan")


def confusion_matrix(probs, labels) -> np.ndarray:
    """(8, 8) counts: row = crowd majority label, column = the model's top class (images without a
    prediction are not in it; see :func:`no_prediction_counts`)."""
    top, y = top_classes(probs), _check_labels(labels, len(probs))
    m = (y >= 0) & (top >= 0)
    return np.bincount(y[m] * K + top[m], minlength=K * K).reshape(K, K)


def no_prediction_counts(probs, labels) -> np.ndarray:
    """(8,) per crowd label, the images the model gave no prediction for."""
    top, y = top_classes(probs), _check_labels(labels, len(probs))
    return np.bincount(y[(y >= 0) & (top < 0)], minlength=K)


def per_class_recall(probs, labels) -> np.ndarray:
    """(8,) recall per crowd label (NaN for a class with no image; no prediction: a miss)."""
    top, y = top_classes(probs), _check_labels(labels, len(probs))
    m = y >= 0
    n = np.bincount(y[m], minlength=K)
    hits = np.bincount(y[m & (top == y)], minlength=K)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hits / np.maximum(n, 1), np.nan)


def uar(probs, labels, classes=None) -> float:
    """Unweighted average recall: the mean of the per-class recalls over the classes that have images
    (optionally only over ``classes``, a sequence of class indices)."""
    r = per_class_recall(probs, labels)
    if classes is not None:
        r = r[list(classes)]
    r = r[np.isfinite(r)]
    return float(r.mean()) if len(r) else float("nan")


def kl_per_image(crowd, probs) -> np.ndarray:
    """(N,) KL(crowd || model) in nats. Model probabilities are floored at ``KL_FLOOR`` and
    renormalised, so a class the model cannot output costs a large but finite penalty."""
    q = np.maximum(_check_probs(probs), KL_FLOOR)
    q /= q.sum(1, keepdims=True)
    c = np.asarray(crowd, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(c > 0, c * (np.log(np.where(c > 0, c, 1.0)) - np.log(q)), 0.0)
    return terms.sum(1)


def mean_kl(crowd, probs) -> float:
    """Mean KL(crowd || model) in nats over rows whose crowd distribution is not empty and that have a
    prediction."""
    c = np.asarray(crowd, np.float64)
    m = (c.sum(1) > 0) & answered(probs)
    return float(kl_per_image(c[m], np.asarray(probs)[m]).mean()) if m.any() else float("nan")


# ---- calibration and abstention -----------------------------------------------------------------------

def reliability_bins(probs, labels, bins: int = 10) -> list[dict]:
    """Equal-width bins of top-class confidence: count, mean confidence, accuracy (for the diagram);
    over the images that have a label and a prediction."""
    p, y = _check_probs(probs), _check_labels(labels, len(probs))
    m = (y >= 0) & answered(p)
    conf, correct = p[m].max(1), (p[m].argmax(1) == y[m])
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        s = idx == b
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "count": int(s.sum()),
                    "confidence": float(conf[s].mean()) if s.any() else float("nan"),
                    "accuracy": float(correct[s].mean()) if s.any() else float("nan")})
    return out


def ece(probs, labels, bins: int = 10) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over equal-width
    bins of top-class confidence (bin b holds confidences in ((b-1)/bins, b/bins])."""
    rows = reliability_bins(probs, labels, bins)
    n = sum(r["count"] for r in rows)
    if n == 0:
        return float("nan")
    return float(sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]) / n)


def risk_coverage(probs, labels) -> dict:
    """Risk–coverage curve: answer only the images whose top probability is highest.

    Returns ``coverage`` and ``risk`` (error rate among the answered images) at every cut, sorted by
    decreasing confidence (ties in confidence are answered together), and ``aurc``, the area under
    the curve (mean risk over coverage; lower is better). Over the images that have a prediction.
    """
    p, y = _check_probs(probs), _check_labels(labels, len(probs))
    m = (y >= 0) & answered(p)
    conf, wrong = p[m].max(1), (p[m].argmax(1) != y[m]).astype(np.float64)
    n = len(conf)
    if n == 0:
        return {"coverage": [], "risk": [], "threshold": [], "aurc": float("nan")}
    order = np.argsort(-conf, kind="stable")
    c, w = conf[order], np.cumsum(wrong[order])
    last = np.r_[np.nonzero(np.diff(c))[0], n - 1]  # answer equal confidences together
    cov = (last + 1) / n
    risk = w[last] / (last + 1)
    # area: each image contributes the risk at the cut that includes it
    widths = np.diff(np.r_[0.0, cov])
    return {"coverage": cov.tolist(), "risk": risk.tolist(), "threshold": c[last].tolist(),
            "aurc": float((widths * risk).sum())}


def coverage_at_risk(rc: dict, max_risk: float) -> float:
    """Largest coverage whose risk is at most ``max_risk`` (0 if none)."""
    ok = [c for c, r in zip(rc["coverage"], rc["risk"]) if r <= max_risk]
    return float(max(ok)) if ok else 0.0


# ---- uncertainty ------------------------------------------------------------------------------------

def bootstrap_ci(statistic, n: int, *, samples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval over images: ``statistic(index_array)`` is evaluated on
    ``samples`` resamples (with replacement) of ``range(n)``."""
    if n == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    vals = np.array([statistic(rng.integers(0, n, n)) for _ in range(samples)], np.float64)
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    return (float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a)))


def bootstrap_mean_ci(values, *, samples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-image values (vectorised)."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if not len(x):
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 100):
        stop = min(samples, start + 100)
        means[start:stop] = x[rng.integers(0, len(x), (stop - start, len(x)))].mean(1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def wilson_interval(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (used for small strata)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = hits / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (float(centre - half), float(centre + half))


def headline(probs, labels, votes=None, *, samples: int = 1000, seed: int = 0, classes_out=None) -> dict:
    """Every headline number, with 95% bootstrap intervals (resampling images).

    Images without a prediction (NaN rows) count as wrong for accuracy, recall and UAR; ``coverage``
    is the share of scored images that have one. Calibration, risk–coverage and KL are over the
    images with a prediction. classes_out: indices of the classes the model can output; when some
    class cannot be output the UAR over the classes it can output is reported too.
    """
    p, y = _check_probs(probs), _check_labels(labels, len(probs))
    m = y >= 0
    p, y = p[m], y[m]
    n = len(y)
    has = answered(p)
    correct = (top_classes(p) == y).astype(np.float64)
    out: dict = {"images": int(n)}
    out["accuracy"] = float(correct.mean()) if n else float("nan")
    out["accuracy_ci95"] = bootstrap_mean_ci(correct, samples=samples, seed=seed)
    out["per_class_recall"] = dict(zip(CLASSES, per_class_recall(p, y).tolist()))
    out["per_class_images"] = dict(zip(CLASSES, np.bincount(y, minlength=K).tolist()))
    out["uar"] = uar(p, y)
    out["uar_ci95"] = bootstrap_ci(lambda i: uar(p[i], y[i]), n, samples=samples, seed=seed + 1)
    if classes_out is not None and len(classes_out) < K:
        cls = list(classes_out)
        out["uar_classes_it_can_output"] = uar(p, y, cls)
    out["confusion"] = confusion_matrix(p, y).tolist()
    out["coverage"] = float(has.mean()) if n else float("nan")
    out["no_prediction_per_class"] = dict(zip(CLASSES, no_prediction_counts(p, y).tolist()))
    out["ece"] = ece(p, y)
    out["ece_ci95"] = bootstrap_ci(lambda i: ece(p[i], y[i]), n, samples=samples, seed=seed + 2)
    out["reliability"] = reliability_bins(p, y)
    rc = risk_coverage(p, y)
    out["aurc"] = rc["aurc"]
    out["coverage_at_risk"] = {f"{r:.2f}": coverage_at_risk(rc, r) for r in (0.05, 0.10, 0.20)}
    out["risk_coverage"] = _thin_curve(rc)
    if votes is not None:
        v = np.asarray(votes)[m]
        kl = kl_per_image(crowd_distribution(v[has]), p[has])
        out["kl"] = float(kl.mean()) if len(kl) else float("nan")
        out["kl_ci95"] = bootstrap_mean_ci(kl, samples=samples, seed=seed + 3)
        base = single_annotator_baseline(v, y)
        base["accuracy_ci95"] = bootstrap_mean_ci(single_annotator_scores(v), samples=samples, seed=seed + 4)
        out["single_annotator"] = base
    return out


def _thin_curve(rc: dict, points: int = 101) -> dict:
    """The risk–coverage curve at ``points`` evenly spaced coverages (for plotting and JSON)."""
    cov, risk = np.asarray(rc["coverage"]), np.asarray(rc["risk"])
    if not len(cov):
        return {"coverage": [], "risk": []}
    grid = np.linspace(cov[0], 1.0, points)
    idx = np.clip(np.searchsorted(cov, grid - 1e-12), 0, len(cov) - 1)
    return {"coverage": np.round(cov[idx], 5).tolist(), "risk": np.round(risk[idx], 5).tolist()}
