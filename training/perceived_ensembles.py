"""Pairs of small CNNs averaged, at the shipped model's cost (two passes a face), scored on Valid and crossval.

    OMP_NUM_THREADS=1 .venv-train/bin/python training/perceived_ensembles.py \
        shipped=training/runs/main/plain.onnx distilled=training/runs/gpu1/student-0.5/plain.onnx ...

Each CNN is one of training/perceived_cnn.json's (by sha256, so a row names the CNN it scored); its pooled features
come from perceived_head's cache. A candidate is one CNN with test-time flip (the shipped form: two passes) or two CNNs
without it (two passes too), its mean logits adjusted as the shipped head is (tau 0.2) and its temperature fitted on
Valid (majority NLL). The same rule as for CNNs decides: a pair ships when it beats the shipped CNN on Valid (accuracy
at least, UAR higher) and is worse on no crossval set (accuracy and UAR), where candidates are only scored, never
fitted. Writes training/perceived_ensembles.json, which the model card renders.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "benchmarks"))
import ferplus as FP  # noqa: E402
import perceived_crossval as CV  # noqa: E402
import perceived_head as H  # noqa: E402

RECORD = HERE / "perceived_ensembles.json"
SHIPPED_TAU = 0.2


def logits(path: Path, sets: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Logits of the faces and of their mirror images, per set (Valid and each crossval set)."""
    session, (w, b) = H.feature_session(path), H.gemm_weights(path)
    valid = H.split("Valid", path, session)
    out = {"valid": (valid["x"] @ w.T + b, valid["x_flip"] @ w.T + b)}
    for name, s in sets.items():
        x, x_flip = H.cached_features(f"{name}-{CV.pipeline_key()}", path, session, s["crops"])
        out[name] = (x @ w.T + b, x_flip @ w.T + b)
    return out


def candidate_logits(members: tuple[str, ...], z: dict, key: str, prior: np.ndarray) -> np.ndarray:
    """One CNN: flip-averaged; two: each face once, the CNNs averaged; then the shipped adjustment."""
    if len(members) == 1:
        mean = 0.5 * (z[members[0]][key][0] + z[members[0]][key][1])
    else:
        mean = np.mean([z[m][key][0] for m in members], axis=0)
    return mean - SHIPPED_TAU * np.log(prior)


def ships(row: dict, shipped: dict) -> bool:
    v, v0 = row["valid"], shipped["valid"]
    return v["accuracy"] >= v0["accuracy"] and v["uar"] > v0["uar"] and all(
        c["accuracy"] >= shipped["crossval"][n]["accuracy"] and c["uar"] >= shipped["crossval"][n]["uar"]
        for n, c in row["crossval"].items())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cnns", nargs="+", metavar="NAME=PATH", help="plain exports; the first is the shipped CNN")
    a = ap.parse_args(argv)
    paths = {spec.split("=", 1)[0]: Path(spec.split("=", 1)[1]) for spec in a.cnns}
    recorded = {c["sha256"]: name for name, c in json.loads((HERE / "perceived_cnn.json").read_text())["cnns"].items()}
    digests = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in paths.items()}
    unknown = [name for name, d in digests.items() if d not in recorded]
    if unknown:
        raise SystemExit(f"{unknown}: not in training/perceived_cnn.json; record each CNN with perceived_head.py --record")
    names, votes = FP.read_votes("Valid")
    labels, crowd = FP.majority_labels(votes), FP.crowd_distribution(votes).astype(np.float64)
    prior, sets = FP.train_prior(), CV.cached_sets()
    z = {name: logits(path, sets) for name, path in paths.items()}
    keep = labels >= 0
    rows = {}
    for members in [(m,) for m in paths] + list(itertools.combinations(paths, 2)):
        zv = candidate_logits(members, z, "valid", prior)
        t = FP.fit_temperature(zv[keep], labels[keep])
        key = " + ".join(members) + (" (with its mirror image)" if len(members) == 1 else "")
        rows[key] = {"cnns": [recorded[digests[m]] for m in members], "temperature": t,
                     "valid": H.figures(H.softmax(zv / t), labels, crowd),
                     "crossval": {n: H.crossval_figures(H.softmax(candidate_logits(members, z, n, prior) / t), s)
                                  for n, s in sets.items()}}
    shipped = rows[f"{next(iter(paths))} (with its mirror image)"]
    for key, row in rows.items():
        row["ships"] = ships(row, shipped)
        print(f"{key:40s} Valid {row['valid']['accuracy']:.4f}/{row['valid']['uar']:.4f} | " +
              " ".join(f"{n} {c['accuracy']:.3f}/{c['uar']:.3f}" for n, c in row["crossval"].items()) +
              (" ships" if row["ships"] else ""))
    RECORD.write_text(json.dumps({"names": {name: recorded[d] for name, d in digests.items()}, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
