"""Evaluate the shipped perceived-expression model on FERPlus Test and write the model card.

    python benchmarks/perceived_eval.py            # full: 48x48 + pipeline path + latency
    python benchmarks/perceived_eval.py --skip-pipeline            # without mien's landmark pipeline

Reads src/mien/models/perceived.{onnx,json} and training/perceived_training.json (Valid-side
calibration written by training/train_perceived.py); writes training/perceived_metrics.json (every
figure) and regenerates docs/perceived.md from it. Temperature and threshold come from Valid;
nothing here is fitted on Test.

Protocol (FERPlus "majority", label.csv votes): per image drop classes with a single vote; keep the
image if its top class holds more than half of the remaining votes and is one of the 8 expressions;
label = that class. FER2013Test/fer0033120.png is excluded (its pixels are not the face its votes
describe). This keeps 3,136 Test images.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "tests"))
import ferplus as FP  # noqa: E402
from mien import perceived as P  # noqa: E402

METRICS = ROOT / "training" / "perceived_metrics.json"
TRAINING = ROOT / "training" / "perceived_training.json"
CARD = ROOT / "docs" / "perceived.md"
RC_THRESHOLDS = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


def latency_ms(repeats: int = 500) -> dict:
    """Median ms per face: onnxruntime, intra_op_num_threads=1, batch of 1, preprocessing included."""
    model = P.PerceivedModel(num_threads=1)
    face = (np.random.default_rng(0).random((1, 48, 48)) * 255).astype(np.uint8)
    for _ in range(50):
        model(face)
    ts, ts_raw = [], []
    x = P.preprocess(face)
    for _ in range(repeats):
        t = time.perf_counter()
        model(face)
        ts.append(time.perf_counter() - t)
        t = time.perf_counter()
        model._session.run(None, {model._input: x})
        ts_raw.append(time.perf_counter() - t)
    batch = (np.random.default_rng(1).random((64, 48, 48)) * 255).astype(np.uint8)
    tb = []
    for _ in range(20):
        t = time.perf_counter()
        model(batch)
        tb.append((time.perf_counter() - t) / 64)
    return {"median_ms_per_face_batch1": float(np.median(ts) * 1e3),
            "p90_ms_per_face_batch1": float(np.percentile(ts, 90) * 1e3),
            "median_ms_per_face_session_only": float(np.median(ts_raw) * 1e3),
            "median_ms_per_face_batch64": float(np.median(tb) * 1e3),
            "threads": 1, "cpu": platform.processor() or platform.machine(), "repeats": repeats}


def test_metrics(probs1: np.ndarray, probsT: np.ndarray, labels: np.ndarray, crowd: np.ndarray,
                 names: np.ndarray, dup: set, threshold: float) -> dict:
    m = FP.classification_metrics(probsT, labels)
    nodup = np.array([n not in dup for n in names])
    conf = probsT.max(1)
    answered = conf >= threshold
    correct = probsT.argmax(1) == labels
    m.update({
        "accuracy_without_train_duplicates": float(correct[nodup].mean()), "n_without_train_duplicates": int(nodup.sum()),
        "n_train_duplicates": int((~nodup).sum()),
        "accuracy_on_train_duplicates": float(correct[~nodup].mean()) if (~nodup).any() else None,
        "mean_kl_crowd_model_nats": FP.mean_kl(crowd, probsT),
        "mean_kl_crowd_model_nats_uncalibrated": FP.mean_kl(crowd, probs1),
        "ece_before": FP.ece(probs1, labels), "ece_after": FP.ece(probsT, labels),
        "nll_before": FP.nll(probs1, labels), "nll_after": FP.nll(probsT, labels),
        "abstain_threshold": threshold,
        "coverage_at_threshold": float(answered.mean()),
        "accuracy_answered_at_threshold": float(correct[answered].mean()) if answered.any() else None,
        "risk_coverage": FP.risk_coverage(probsT, labels, RC_THRESHOLDS + [threshold]),
    })
    return m


def pipeline_eval(model: P.PerceivedModel, names: np.ndarray, labels: np.ndarray, images: np.ndarray) -> dict:
    """FERPlus Test through mien: upscale_with_border → landmarks → aligned_face_crops → model."""
    from mien.analyzer import Analyzer, Options
    from oracle_inputs import upscale_with_border

    an = Analyzer(Options(detector="short", iris=False))
    crops = np.zeros((len(names), 48, 48), np.uint8)
    found = np.zeros(len(names), bool)
    reliable = np.zeros(len(names), bool)
    t = time.time()
    for i, img in enumerate(images):
        rgb = upscale_with_border(img)
        b = an.analyze(rgb)
        if len(b.scores):
            found[i] = True
            reliable[i] = bool(b.quality.reliable[0])
            crops[i] = P.aligned_face_crops(rgb, b.landmarks[:1])[0]
    seconds = time.time() - t
    res = model(crops[found], reliable=reliable[found])
    pred = res.probabilities.argmax(1)
    correct = pred == labels[found]
    answered = np.array([t != P.UNCERTAIN for t in res.top])
    answered_conf_only = res.top_p >= model.threshold
    direct = model(images[found]).probabilities.argmax(1) == labels[found]
    return {
        "n": int(len(names)), "no_face": int((~found).sum()), "faces": int(found.sum()),
        "unreliable_faces": int((found & ~reliable).sum()),
        "accuracy_on_faces": float(correct.mean()),
        "accuracy_no_face_counted_wrong": float(correct.sum() / len(names)),
        "accuracy_48px_direct_same_faces": float(direct.mean()),
        "per_class_recall": FP.classification_metrics(res.probabilities, labels[found])["per_class_recall"],
        "coverage_threshold_only": float(answered_conf_only.mean()),
        "accuracy_answered_threshold_only": float(correct[answered_conf_only].mean()),
        "coverage_threshold_and_reliable": float(answered.mean()),
        "accuracy_answered_threshold_and_reliable": float(correct[answered].mean()) if answered.any() else None,
        "seconds": seconds,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-pipeline", action="store_true", help="skip the landmark-pipeline path (no LiteRT needed)")
    ap.add_argument("--latency-repeats", type=int, default=500)
    a = ap.parse_args(argv)

    card = P.model_card()
    training = json.loads(TRAINING.read_text())
    previous = json.loads(METRICS.read_text()) if METRICS.exists() else {}
    model = P.PerceivedModel(num_threads=2)

    names, votes = FP.read_votes("Test")
    labels = FP.majority_labels(votes)
    keep = labels >= 0
    names, votes, labels = names[keep], votes[keep], labels[keep]
    images = FP.read_images("Test", names)
    logits = model.logits(images)
    probs1, probsT = FP.softmax(logits), model.calibration(logits)
    dup = FP.train_duplicate_names().get("Test", set())
    out = {
        "model": {k: card[k] for k in ("file", "sha256", "bytes", "abstain_threshold", "test_time_flip")}
        | {"params": card["training"]["params"], "temperature": model.temperature},
        "votes_file": "label.csv (2016)",
        "excluded": sorted(FP.EXCLUDED),
        "training": training["training"],
        "valid": training["valid"] | {"abstain_target_valid_accuracy": training["abstain_target_valid_accuracy"]},
        "export_choice": training["export_choice"],
        "test": test_metrics(probs1, probsT, labels, FP.crowd_distribution(votes), names, dup, model.threshold),
        "single_annotator_baseline": FP.single_annotator_baseline(votes),
        "classes": list(P.CLASSES),
    }
    out["latency"] = latency_ms(a.latency_repeats)
    if a.skip_pipeline:
        if "pipeline" in previous and previous.get("model", {}).get("sha256") == card["sha256"]:
            out["pipeline"] = previous["pipeline"]
    else:
        out["pipeline"] = pipeline_eval(model, names, labels, images)
    if "framing" not in out:
        fr = ROOT / "training" / "framing.json"
        if fr.exists():
            out["framing"] = json.loads(fr.read_text())
    METRICS.write_text(json.dumps(out, indent=1) + "\n")
    from model_card import write_card_from_files
    write_card_from_files()
    t = out["test"]
    print(f"Test majority accuracy {t['accuracy']:.4f} (n={t['n']}), without Train duplicates "
          f"{t['accuracy_without_train_duplicates']:.4f} (n={t['n_without_train_duplicates']}), UAR "
          f"{t['unweighted_average_recall']:.4f}, KL {t['mean_kl_crowd_model_nats']:.4f}, ECE "
          f"{t['ece_before']:.4f} -> {t['ece_after']:.4f}, coverage {t['coverage_at_threshold']:.3f} at "
          f"accuracy {t['accuracy_answered_at_threshold'] or float('nan'):.4f}; single annotator "
          f"{out['single_annotator_baseline']['accuracy']:.4f}; latency "
          f"{out['latency']['median_ms_per_face_batch1']:.3f} ms")
    if "pipeline" in out:
        p = out["pipeline"]
        print(f"pipeline: {p['faces']}/{p['n']} faces ({p['no_face']} without), accuracy on faces "
              f"{p['accuracy_on_faces']:.4f}, counting no-face as wrong {p['accuracy_no_face_counted_wrong']:.4f}")
    print(f"wrote {METRICS} and {CARD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
