"""How the perceived-expression model holds on faces from other datasets: one command.

    python benchmarks/perceived_crossval.py                       # the shipped model
    python benchmarks/perceived_crossval.py --candidate training/runs/x   # a candidate (perceived.onnx + perceived.json)

Runs mien's whole pipeline as ``mien analyze`` does (``Analyzer()`` with default options, small
images through ``mien.small_faces``) on each set of ``../shared/data/crossval`` and on FERPlus Test,
and scores it as ``crossval/README.md`` says: the largest face of each image, the argmax of the 8
perceived shares, an image without a face counts as wrong. Per set it prints accuracy, UAR,
per-class recall, the confusion matrix, the no-face count, ECE (15 bins on the top share, over the
faces found), accuracy and coverage at the abstention threshold (``perceived_top`` is not
``uncertain``; coverage over all images) and a risk–coverage summary. FERPlus Test (majority
protocol) is scored both directly on the 48x48 files and through the pipeline.

The pipeline's outputs per image (largest face's aligned 48x48 crop, mesh, quality flag, the
shipped model's shares) are cached under ``cache/perceived/`` (ignored by git), keyed by the
source files that produce them, so a candidate model is re-scored in seconds. The shipped model's
shares are recomputed from the cached crops and checked against the pipeline's own.

Writes ``training/perceived_crossval.json`` (shipped model only) and regenerates docs/perceived.md.
Nothing here is fitted: the sets are for comparing and reporting only.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import inspect
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "training"))
import ferplus as FP  # noqa: E402
from mien import perceived as P  # noqa: E402
from mien.audit import metrics as M  # noqa: E402
from mien.audit.datasets import load_dataset  # noqa: E402

CROSSVAL = FP.DATA / "crossval"
CACHE = ROOT / "cache" / "perceived"
RESULTS = ROOT / "training" / "perceived_crossval.json"
SETS = ("ckplus48", "jaffe", "in_the_wild")
ECE_BINS = 15
RC_THRESHOLDS = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Everything that decides which face is found and how it is cropped; a change rebuilds the cache.
PIPELINE_SOURCES = ("analyzer.py", "detect.py", "landmarks.py", "pixels.py", "small_faces.py", "images.py", "checks.py", "mesh.py",
                    "quality.py", "geometry.py",
                    "face_detection_short_range.tflite", "face_detection_full_range_sparse.tflite", "face_landmark.tflite")
CROP_FUNCTIONS = (P.aligned_face_crops, P.alignment_matrices, P._source_window)


@dataclass(frozen=True)
class Faces:
    """The pipeline's result for each image of a set: the largest face, when one was found."""

    found: np.ndarray  # (N,) bool
    crops: np.ndarray  # (N, 48, 48) uint8, zeros where no face
    reliable: np.ndarray  # (N,) bool, mien's quality flag
    shipped_probs: np.ndarray  # (N, 8) the pipeline's perceived shares (NaN where no face)
    shipped_sha256: str  # of the model that gave them


def cached_sets() -> dict[str, dict[str, np.ndarray]]:
    """Each crossval set's labels with the pipeline's cached result (``found``, ``crops``), for scoring candidates
    without running the pipeline again; the cache must be of today's pipeline code."""
    out = {}
    for name in SETS:
        cached = CACHE / f"{name}-{pipeline_key()}.npz"
        if not cached.exists():
            raise SystemExit(f"{cached} is missing (the pipeline's code changed since its crops were cached): run "
                             "benchmarks/perceived_crossval.py first, so that every candidate is scored on crossval")
        _, labels = labelled_images(name)
        with np.load(cached) as z:
            out[name] = {"labels": labels, "found": z["found"], "crops": z["crops"]}
    return out


def labelled_images(name: str) -> tuple[list[Path], np.ndarray]:
    """A crossval set's image paths and labels, read as ``mien audit`` reads it (its labels.csv, in row order)."""
    dataset = load_dataset(CROSSVAL / name)
    return list(dataset.paths), dataset.labels


def ferplus_test() -> tuple[list[Path], np.ndarray, np.ndarray]:
    """FERPlus Test under the majority protocol: paths, labels, 48x48 images."""
    names, votes = FP.read_votes("Test")
    labels = FP.majority_labels(votes)
    keep = labels >= 0
    names, labels = names[keep], labels[keep]
    return [FP.split_dir("Test") / n for n in names], labels, FP.read_images("Test", names)


def code_digest(source: str) -> bytes:
    """The code of a Python source without its comments and docstrings (editing those keeps the cache)."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def pipeline_key() -> str:
    h = hashlib.sha256()
    for name in PIPELINE_SOURCES:
        path = ROOT / "src" / "mien" / ("models/" if name.endswith(".tflite") else "") / name
        h.update(path.read_bytes() if name.endswith(".tflite") else code_digest(path.read_text()))
    for function in CROP_FUNCTIONS:
        h.update(code_digest(inspect.getsource(function)))
    h.update(repr((P.FER_EYE_MID, P.FER_IOD, P.FACE_SIZE)).encode())
    return h.hexdigest()[:12]


def largest(boxes: np.ndarray) -> int:
    return int(np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])))


def run_pipeline(paths: list[Path]) -> Faces:
    """The whole pipeline, as ``mien analyze`` runs it, on each file; keeps the largest face."""
    from mien.analyzer import Analyzer
    from mien.images import read_image

    analyzer = Analyzer()
    n = len(paths)
    found, reliable = np.zeros(n, bool), np.zeros(n, bool)
    crops = np.zeros((n, P.FACE_SIZE, P.FACE_SIZE), np.uint8)
    probs = np.full((n, len(P.CLASSES)), np.nan, np.float32)
    for i, path in enumerate(paths):
        rgb = read_image(path)
        faces = analyzer.analyze(rgb, source=str(path))
        if len(faces.scores) == 0:
            continue
        k = largest(faces.boxes)
        found[i], reliable[i] = True, bool(faces.quality.reliable[k])
        crops[i] = P.aligned_face_crops(rgb, faces.landmarks[k:k + 1])[0]
        probs[i] = faces.perceived.probabilities[k]
    return Faces(found, crops, reliable, probs, P.model_card()["sha256"])


def cached_pipeline(name: str, paths: list[Path]) -> Faces:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}-{pipeline_key()}.npz"
    if path.exists():
        with np.load(path) as z:
            return Faces(z["found"], z["crops"], z["reliable"], z["shipped_probs"], str(z["shipped_sha256"]))
    t = time.time()
    faces = run_pipeline(paths)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, found=faces.found, crops=faces.crops, reliable=faces.reliable, shipped_probs=faces.shipped_probs,
                        shipped_sha256=faces.shipped_sha256)
    tmp.replace(path)
    print(f"{name}: pipeline on {len(paths)} images in {time.time() - t:.0f} s, cached in {path}", file=sys.stderr)
    return faces


class Scorer:
    """A model to score: the shipped one, or a candidate folder holding perceived.onnx + perceived.json."""

    def __init__(self, candidate: Path | None = None):
        self.model = P.PerceivedModel(num_threads=1, folder=candidate)
        self.name = "shipped" if candidate is None else str(candidate)

    def __call__(self, crops: np.ndarray, reliable: np.ndarray) -> P.Perceived:
        return self.model(crops, reliable=reliable)


def score(probs: np.ndarray, labels: np.ndarray, found: np.ndarray, answered: np.ndarray) -> dict:
    """Scores of one set. probs (N, 8) (rows where no face was found are ignored); answered (N,) bools."""
    n = len(labels)
    pred = np.where(found, np.nan_to_num(probs).argmax(1), -1)
    correct = pred == labels
    present = sorted(set(labels.tolist()))
    confusion = np.zeros((len(P.CLASSES), len(P.CLASSES) + 1), np.int64)  # last column: no face
    np.add.at(confusion, (labels, np.where(found, pred, len(P.CLASSES))), 1)
    recall = {P.CLASSES[k]: float(correct[labels == k].mean()) for k in present}
    pf, yf = probs[found].astype(np.float64), labels[found]
    rc = M.risk_coverage(pf, yf) if found.any() else {"coverage": [], "risk": [], "aurc": float("nan")}
    conf = pf.max(1) if found.any() else np.zeros(0)
    return {
        "n": n, "no_face": int((~found).sum()),
        "accuracy": float(correct.mean()),
        "uar": float(np.mean(list(recall.values()))),
        "per_class_recall": recall,
        "support": {P.CLASSES[k]: int((labels == k).sum()) for k in present},
        "confusion": confusion.tolist(),
        "ece": M.ece(pf, yf, ECE_BINS) if found.any() else float("nan"),
        "mean_top_share": float(conf.mean()) if found.any() else float("nan"),
        "coverage_at_threshold": float(answered.mean()),
        "accuracy_answered": float(correct[answered].mean()) if answered.any() else float("nan"),
        "aurc": rc["aurc"],
        "coverage_at_risk_10": M.coverage_at_risk(rc, 0.10) * found.mean(),
        "coverage_at_risk_20": M.coverage_at_risk(rc, 0.20) * found.mean(),
        "risk_coverage": [{"threshold": t, "coverage": float((found & (np.nan_to_num(probs).max(1) >= t)).mean()),
                           "accuracy_answered": float(correct[found & (np.nan_to_num(probs).max(1) >= t)].mean())
                           if (found & (np.nan_to_num(probs).max(1) >= t)).any() else float("nan")}
                          for t in RC_THRESHOLDS],
    }


def evaluate(scorer: Scorer, name: str, labels: np.ndarray, faces: Faces) -> dict:
    out = scorer(faces.crops[faces.found], faces.reliable[faces.found])
    probs = np.full((len(labels), len(P.CLASSES)), np.nan)
    probs[faces.found] = out.probabilities
    answered = np.zeros(len(labels), bool)
    answered[faces.found] = np.array([t != P.UNCERTAIN for t in out.top], bool)
    return score(probs, labels, faces.found, answered)


def check_shipped(scorer: Scorer, faces: Faces) -> None:
    """The cached crops, scored again by the model that scored them in the pipeline, must give the same shares."""
    if scorer.name != "shipped" or faces.shipped_sha256 != P.model_card()["sha256"] or not faces.found.any():
        return
    again = scorer(faces.crops[faces.found], faces.reliable[faces.found]).probabilities
    gap = float(np.abs(again - faces.shipped_probs[faces.found]).max())
    if gap > 1e-4:
        raise RuntimeError(f"cached crops no longer reproduce the pipeline's shares (max gap {gap:.2g}); delete {CACHE}")


def ferplus_direct(scorer: Scorer, labels: np.ndarray, images: np.ndarray) -> dict:
    out = scorer(images, np.ones(len(images), bool))
    found = np.ones(len(images), bool)
    answered = np.array([t != P.UNCERTAIN for t in out.top], bool)
    return score(out.probabilities, labels, found, answered)


def print_set(name: str, r: dict) -> None:
    recall = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["per_class_recall"].items())
    print(f"\n== {name}: n {r['n']}, no face {r['no_face']}")
    print(f"accuracy {100 * r['accuracy']:.1f}%  UAR {100 * r['uar']:.1f}%  ECE {r['ece']:.3f}  "
          f"mean top share {r['mean_top_share']:.3f}  at threshold: coverage {100 * r['coverage_at_threshold']:.1f}% "
          f"accuracy {100 * r['accuracy_answered']:.1f}%  AURC {r['aurc']:.3f}  "
          f"coverage at risk<=10% {100 * r['coverage_at_risk_10']:.1f}%")
    print(f"recall: {recall}")
    print("confusion (rows: label; columns: " + " ".join(c[:4] for c in P.CLASSES) + " noface)")
    for k, row in enumerate(r["confusion"]):
        if sum(row):
            print(f"  {P.CLASSES[k]:>9} " + " ".join(f"{v:4d}" for v in row))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", type=Path, help="folder with a candidate perceived.onnx + perceived.json")
    ap.add_argument("--json", type=Path, help="where to write the results (default: training/perceived_crossval.json "
                                               "for the shipped model, <candidate>/crossval.json for a candidate)")
    a = ap.parse_args(argv)
    scorer = Scorer(a.candidate)
    results: dict = {"model": scorer.name, "pipeline_key": pipeline_key(), "sets": {}}
    for name in SETS:
        paths, labels = labelled_images(name)
        faces = cached_pipeline(name, paths)
        check_shipped(scorer, faces)
        results["sets"][name] = evaluate(scorer, name, labels, faces)
    paths, labels, images = ferplus_test()
    faces = cached_pipeline("ferplus_test", paths)
    check_shipped(scorer, faces)
    results["sets"]["ferplus_test_pipeline"] = evaluate(scorer, "ferplus_test", labels, faces)
    results["sets"]["ferplus_test_direct"] = ferplus_direct(scorer, labels, images)
    for name, r in results["sets"].items():
        print_set(name, r)
    target = a.json or (RESULTS if a.candidate is None else a.candidate / "crossval.json")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(target)
    if a.candidate is None:
        from model_card import write_card_from_files

        write_card_from_files()
    print(f"\nwrote {target}" + ("" if a.candidate else " and docs/perceived.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
