"""Which faces the perceived model may get wrong: three warning scores compared on FERPlus and crossval.

    python training/perceived_ood.py --float training/runs/head     # writes training/perceived_ood.json

Reporting only: nothing here is shipped or chosen on crossval. On the float model that the head step
chose (its pooled CNN features, face and mirror image averaged, and its own head and temperature), per
set: how well each score separates the faces the model gets wrong from those it gets right (AUC; 0.5
is chance), and how many faces the scores with a Train-fitted cut-off flag:

- ``top share``: the calibrated share of the top class (low = unsure; mien's abstention threshold);
- ``energy``: the log-sum-exp of the logits (low = unlike the training faces; mien's out-of-distribution
  rule, cut at its 5% quantile on Train);
- ``feature density``: the smallest Mahalanobis distance of the features to a class mean, one
  covariance shared by the classes, fitted on Train (Lee et al. 2018; cut at its 95% quantile on Train).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import perceived_head as PH  # noqa: E402
from quantize_perceived import card_calibration  # noqa: E402
from action_units import auc_with_ci  # noqa: E402

RECORD = ROOT / "training" / "perceived_ood.json"
TAIL = 0.05


def pooled(s: dict) -> np.ndarray:
    return 0.5 * (s["x"] + s["x_flip"])


def class_gaussians(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class means (K, D), shared precision matrix (D, D)) of features ``x`` with majority ``labels``."""
    means = np.stack([x[labels == k].mean(0) for k in range(PH.K)])
    centred = x - means[labels]
    covariance = centred.T @ centred / len(x) + 1e-6 * np.eye(x.shape[1])
    return means, np.linalg.inv(covariance)


def mahalanobis_to_nearest_class(x: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    return np.min([np.einsum("nd,de,ne->n", x - m, precision, x - m) for m in means], axis=0)


def warning_scores(s: dict, w: np.ndarray, b: np.ndarray, calibration: tuple[np.ndarray, np.ndarray], means,
                   precision) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per face, each score with larger meaning 'more likely wrong', and the logits; ``calibration``:
    (matrix, bias) as ``perceived_head.calibrate`` takes them."""
    x = pooled(s)
    z = x @ w.T + b
    return {"top share": -PH.calibrate(z, *calibration).max(1), "energy": -PH.energy(z),
            "feature density": mahalanobis_to_nearest_class(x, means, precision)}, z


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--float", dest="float_dir", type=Path, required=True, help="folder with the float perceived.{onnx,json}")
    ap.add_argument("--base", type=Path, default=PH.BASE, help="the CNN without test-time flip (default: %(default)s)")
    a = ap.parse_args(argv)
    session = PH.feature_session(a.base)
    tr = PH.split("Train", a.base, session)
    sets = {"valid": PH.split("Valid", a.base, session), "test": PH.split("Test", a.base, session)}
    sets |= PH.crossval_sets(a.base, session)
    w, b = PH.gemm_weights(a.float_dir / "perceived.onnx")
    _, *calibration = card_calibration(json.loads((a.float_dir / "perceived.json").read_text()))
    fit = tr["usable"] & (tr["labels"] >= 0)
    means, precision = class_gaussians(pooled(tr)[fit], tr["labels"][fit])
    train_scores, _ = warning_scores(tr, w, b, calibration, means, precision)
    cut = {name: float(np.quantile(train_scores[name][tr["usable"]], 1 - TAIL)) for name in ("energy", "feature density")}
    report = {"model": str(a.float_dir / "perceived.onnx"), "train_cut_offs": cut, "tail": TAIL, "sets": {}}
    for name, s in sets.items():
        scores, z = warning_scores(s, w, b, calibration, means, precision)
        faces = (s["labels"] >= 0) & s.get("found", True)
        wrong = z.argmax(1)[faces] != s["labels"][faces]
        row = {"faces": int(faces.sum()), "error": float(wrong.mean()),
               "auc_wrong": {k: auc_with_ci(v[faces], wrong)[0] for k, v in scores.items()},
               "flagged": {k: float((scores[k][faces] > c).mean()) for k, c in cut.items()}}
        report["sets"][name] = row
        print(f"{name:12s} faces {row['faces']:5d} error {row['error']:.3f} | AUC " +
              " ".join(f"{k} {v:.3f}" for k, v in row["auc_wrong"].items()) + " | flagged " +
              " ".join(f"{k} {v:.3f}" for k, v in row["flagged"].items()), flush=True)
    tmp = RECORD.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(RECORD)
    print(f"wrote {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
