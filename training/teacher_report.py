"""Score the teacher ensemble of training/teacher.py on FERPlus Valid and the crossval sets (reporting only).

    python training/teacher_report.py training/runs/teacher/teacher_eval.npz    # project venv, seconds

Each member and the ensemble (mean logits) are scored with test-time flip averaging, with and without the logit
adjustment the shipped head uses (tau 0.2), each with a temperature fitted on Valid (majority NLL), as
training/perceived_head.py scores its ideas. The members' disagreement (mean KL of each member's shares from their
mean) is scored as a warning that a face lies away from the training faces: how well it separates the ensemble's
wrong answers from its right ones (AUC, beside the top share's), and the share of faces beyond its 95% quantile on
Valid. Crossval faces are the pipeline crops the teacher run carried
(training/device_data.py); they are only scored, never fitted. Writes training/perceived_teacher.json, which the
model card renders.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "benchmarks"))
import ferplus as FP  # noqa: E402
import perceived_crossval as CV  # noqa: E402
from action_units import auc_with_ci  # noqa: E402
from perceived_head import crossval_figures, figures, softmax  # noqa: E402

RECORD = HERE / "perceived_teacher.json"
SHIPPED_TAU = 0.2  # the logit adjustment of the shipped head


def candidates(z: dict, key: str, members: int) -> dict[str, np.ndarray]:
    """Flip-averaged logits of each member and of the ensemble on one set."""
    both = 0.5 * (z[key] + z[f"{key}_flip"])
    return {f"member {k}": both[k] for k in range(members)} | {"ensemble": both.mean(0)}


DISAGREEMENT_QUANTILE = 0.95


def disagreement(z: dict, key: str, members: int) -> tuple[np.ndarray, np.ndarray]:
    """(ensemble shares (N, 8), members' mean KL from them (N,)) of flip-averaged logits, temperature 1."""
    shares = np.stack([softmax(logits) for name, logits in candidates(z, key, members).items() if name != "ensemble"])
    mean = shares.mean(0)
    kl = (shares * (np.log(np.clip(shares, 1e-12, 1)) - np.log(np.clip(mean, 1e-12, 1)))).sum(2).mean(0)
    return mean, kl


def warning_rows(z: dict, members: int, valid_labels: np.ndarray, sets: dict) -> dict:
    keep = valid_labels >= 0
    shares, kl = disagreement(z, "valid", members)
    cut = float(np.quantile(kl[keep], DISAGREEMENT_QUANTILE))
    faces = {"valid": (shares[keep], kl[keep], valid_labels[keep])}
    for name, s in sets.items():
        shares, kl = disagreement(z, name, members)
        faces[name] = (shares[s["found"]], kl[s["found"]], s["labels"][s["found"]])
    rows = {}
    for name, (shares, kl, labels) in faces.items():
        wrong = shares.argmax(1) != labels
        rows[name] = {"faces": int(len(labels)), "error": float(wrong.mean()),
                      "auc_wrong_disagreement": auc_with_ci(kl, wrong)[0],
                      "auc_wrong_top_share": auc_with_ci(-shares.max(1), wrong)[0],
                      "flagged_by_disagreement": float((kl > cut).mean())}
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("teacher_eval", type=Path)
    a = ap.parse_args(argv)
    z = dict(np.load(a.teacher_eval))
    record = json.loads(str(z["record"]))
    members = len(record["members"])
    names, votes = FP.read_votes("Valid")
    if not np.array_equal(names, z["valid_names"]):
        raise SystemExit(f"{a.teacher_eval}: its Valid faces are not label.csv's")
    labels, crowd = FP.majority_labels(votes), FP.crowd_distribution(votes).astype(np.float64)
    prior, sets = FP.train_prior(), CV.cached_sets()
    if str(z["crossval_pipeline_key"]) != CV.pipeline_key():
        raise SystemExit(f"{a.teacher_eval}: the teacher scored crops of pipeline {z['crossval_pipeline_key']}, "
                         f"today's cache is of {CV.pipeline_key()}: pack and run the teacher again")
    valid, crossval = candidates(z, "valid", members), {n: candidates(z, n, members) for n in sets}
    rows = {}
    for who, logits in valid.items():
        for tau in (0.0, SHIPPED_TAU):
            zv = logits - tau * np.log(prior)
            keep = labels >= 0
            t = FP.fit_temperature(zv[keep], labels[keep])
            key = f"{who}{f' adjusted({tau})' if tau else ''}"
            rows[key] = {"valid": figures(softmax(zv / t), labels, crowd) | {"temperature": t},
                         "crossval": {n: crossval_figures(softmax((crossval[n][who] - tau * np.log(prior)) / t), s)
                                      for n, s in sets.items()}}
            print(f"{key:28s} Valid {rows[key]['valid']['accuracy']:.4f}/{rows[key]['valid']['uar']:.4f} | " +
                  " ".join(f"{n} {r['accuracy']:.3f}/{r['uar']:.3f}/{r['ece']:.3f}" for n, r in rows[key]["crossval"].items()))
    warnings = warning_rows(z, members, labels, sets)
    for name, w in warnings.items():
        print(f"{name:12s} disagreement AUC {w['auc_wrong_disagreement']:.3f} (top share {w['auc_wrong_top_share']:.3f}), "
              f"flagged {w['flagged_by_disagreement']:.3f}")
    RECORD.write_text(json.dumps({"teacher": record, "rows": rows, "disagreement": warnings}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
