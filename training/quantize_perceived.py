"""The perceived-expression model in 8-bit integers: about half the time per face, the same answers.

    python training/quantize_perceived.py --float training/runs/head --out training/runs/int8 [--install]

``--float``: a folder with a float ``perceived.onnx`` and its ``perceived.json`` (what
``perceived_head.py`` writes; for the float model shipped before this step:
``git show 6439bef:src/mien/models/perceived.onnx``, and the same for ``perceived.json``).

Static quantisation with ONNX Runtime (weights per channel, activations per tensor, scales from
``CALIBRATION_IMAGES`` FERPlus Train faces drawn with seed 0). Weights use 7 bits (``reduce_range``), as
ONNX Runtime advises for x86 CPUs without VNNI instructions, whose 8-bit kernels can saturate with
full-range weights. Candidates: every layer,
or every layer but the first convolution (raw pixels) and the last layer (the logits); scales from
the activations' range or from their 99.99th percentile. The candidate kept is the one closest to
the float model on FERPlus Valid (mean KL divergence from the float model's shares): quantisation
should change the model's answers as little as possible, not tune them. Its temperature, abstention
threshold and out-of-distribution threshold are then fitted again exactly as ``perceived_head.py``
fits them (Valid votes, Valid accuracy on answered faces, Train energy quantile). Writes
``<out>/perceived.{onnx,json}`` and ``<out>/quantize.json`` (every candidate's Valid figures and
one-thread latency against the float model, timed alternately); ``--install`` ships the model and
copies the report to ``training/perceived_quantize.json``, which the model card renders. When
``<float>/crossval.json`` exists (``benchmarks/perceived_crossval.py --candidate <float>``), its
figures are copied into the report so the card can set the float model beside the shipped one; they
are reported, never used to choose.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
import ferplus as FP  # noqa: E402
import perceived_head as PH  # noqa: E402
from mien.runtime import onnx_session  # noqa: E402

CALIBRATION_IMAGES = 1000
ENDS = ("first convolution", "last layer")
RECORD = ROOT / "training" / "perceived_quantize.json"


def calibration_faces(seed: int = 0) -> np.ndarray:
    names, _ = FP.read_votes("Train")
    pick = np.sort(np.random.default_rng(seed).choice(len(names), CALIBRATION_IMAGES, replace=False))
    return FP.read_images("Train", names[pick]).astype(np.float32)[:, None]


def end_layers(model_path: Path) -> list[str]:
    """Names of the first convolution and the last Gemm, the layers left in float by the ``keep ends`` candidates."""
    import onnx

    nodes = onnx.load(str(model_path)).graph.node
    return [next(n.name for n in nodes if n.op_type == "Conv"), next(n.name for n in reversed(nodes) if n.op_type == "Gemm")]


def quantize(float_path: Path, out_path: Path, faces: np.ndarray, percentile: bool, keep_ends: bool) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.start = 0

        def get_next(self):
            if self.start >= len(faces):
                return None
            self.start += 100
            return {"face": faces[self.start - 100:self.start]}

    prepared = out_path.with_suffix(".prepared.onnx")
    quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
    method = CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax
    quantize_static(str(prepared), str(out_path), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=method, extra_options={"CalibPercentile": 99.99} if percentile else {},
                    nodes_to_exclude=end_layers(prepared) if keep_ends else [])
    prepared.unlink()


def logits(model_path: Path, faces: np.ndarray, batch: int = 256) -> np.ndarray:
    session = onnx_session(model_path, num_threads=1)
    return np.concatenate([session.run(None, {"face": faces[i:i + batch]})[0] for i in range(0, len(faces), batch)]).astype(np.float64)


def split_faces(name: str) -> dict:
    names, votes = FP.read_votes(name)
    crowd_all, usable = FP.soft_targets(votes)
    return {"faces": FP.read_images(name, names).astype(np.float32)[:, None], "labels": FP.majority_labels(votes),
            "crowd": FP.crowd_distribution(votes).astype(np.float64), "usable": usable}


def card_calibration(card: dict) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, matrix, bias) of a perceived.json, in the form ``perceived_head.calibrate`` takes."""
    if "temperature" in card:
        return "temperature", np.eye(PH.K) / card["temperature"], np.zeros(PH.K)
    c = card["calibration"]
    return c["kind"], np.array(c["matrix"]), np.array(c["bias"])


def candidates(float_model: Path, out: Path, faces: np.ndarray) -> dict[str, Path]:
    made = {}
    for keep_ends in (False, True):
        for percentile in (False, True):
            name = (f"{'all layers' if not keep_ends else 'all but the ' + ' and the '.join(ENDS)}, "
                    f"{'99.99th percentile' if percentile else 'range'} of the activations")
            path = out / f"candidate-{len(made)}.onnx"
            quantize(float_model, path, faces, percentile, keep_ends)
            made[name] = path
    return made


def sidecar(card: dict, data: bytes, kind: str, matrix, bias, threshold: float, min_energy: float, chosen: str) -> dict:
    card = dict(card)
    card.update({"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "abstain_threshold": threshold,
                 "ood_min_energy": min_energy,
                 "quantization": {"recipe": chosen, "by": "training/quantize_perceived.py (ONNX Runtime static, QDQ, "
                                  "per-channel 7-bit weights, 8-bit activations)",
                                  "calibration_images": f"{CALIBRATION_IMAGES} FERPlus Train faces, seed 0"}})
    if kind == "temperature":
        card["temperature"] = float(1.0 / matrix[0, 0])
    else:
        card["calibration"] = dict(card["calibration"], matrix=matrix.tolist(), bias=bias.tolist())
    return card


def install(out: Path) -> None:
    """Ship ``out``'s model and sidecar, note the quantisation in the manifest's provenance, refresh its checksums."""
    sys.path.insert(0, str(ROOT / "tools"))
    import refresh_manifest

    (PH.MODELS / "perceived.onnx").write_bytes((out / "perceived.onnx").read_bytes())
    (PH.MODELS / "perceived.json").write_text((out / "perceived.json").read_text())
    manifest = json.loads(refresh_manifest.MANIFEST.read_text())
    entry = manifest["models"]["perceived.onnx"]
    note = "; quantised to 8-bit integers by training/quantize_perceived.py"
    entry["source"] = entry["source"].split(note)[0] + note
    refresh_manifest.MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    refresh_manifest.main()
    RECORD.write_text((out / "quantize.json").read_text())
    print(f"installed {out} into {PH.MODELS} (figures in {RECORD.relative_to(ROOT)})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--float", dest="float_dir", type=Path, required=True, help="folder with the float perceived.{onnx,json}")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--install", action="store_true", help="ship the chosen model into src/mien/models")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.time()
    a.out.mkdir(parents=True, exist_ok=True)
    float_model = a.float_dir / "perceived.onnx"
    card = json.loads((a.float_dir / "perceived.json").read_text())
    kind, matrix, bias = card_calibration(card)
    va = split_faces("Valid")
    z_float = logits(float_model, va["faces"])
    p_float = PH.softmax(z_float)
    report = {"float": {"sha256": hashlib.sha256(float_model.read_bytes()).hexdigest(),
                        "valid": PH.figures(PH.calibrate(z_float, matrix, bias), va["labels"], va["crowd"])},
              "selection": "the candidate closest to the float model on FERPlus Valid (mean KL from its shares)",
              "candidates": {}}
    made = candidates(float_model, a.out, calibration_faces())
    valid_logits = {name: logits(path, va["faces"]) for name, path in made.items()}
    for name, path in made.items():
        z = valid_logits[name]
        row = PH.figures(PH.calibrate(z, matrix, bias), va["labels"], va["crowd"])
        row |= {"kl_from_float": FP.mean_kl(p_float, PH.softmax(z)), "same_top_as_float": float((z.argmax(1) == z_float.argmax(1)).mean()),
                "latency_ms": PH.interleaved_latency(float_model, path), "bytes": path.stat().st_size}
        report["candidates"][name] = row
        print(f"{name}: Valid acc {row['accuracy']:.4f} UAR {row['uar']:.4f} KL {row['kl_from_float']:.5f} "
              f"same top {row['same_top_as_float']:.4f} ms {row['latency_ms']['candidate_median']:.3f} "
              f"(float {row['latency_ms']['base_median']:.3f})", flush=True)
    chosen = min(report["candidates"], key=lambda k: report["candidates"][k]["kl_from_float"])
    chosen_path, zv = made[chosen], valid_logits[chosen]
    matrix, bias = PH.fit_calibration(zv, va["crowd"], kind)
    pv = PH.calibrate(zv, matrix, bias)
    keep = va["labels"] >= 0
    threshold = FP.threshold_for_accuracy(pv[keep], va["labels"][keep], PH.VALID_ACCURACY_TARGET)
    tr = split_faces("Train")
    min_energy = float(np.quantile(PH.energy(logits(chosen_path, tr["faces"][tr["usable"]])), PH.OOD_QUANTILE))
    data = chosen_path.read_bytes()
    (a.out / "perceived.onnx").write_bytes(data)
    new_card = sidecar(card, data, kind, matrix, bias, threshold, min_energy, chosen)
    (a.out / "perceived.json").write_text(json.dumps(new_card, indent=1) + "\n")
    for path in made.values():
        path.unlink()
    report |= {"chosen": chosen, "calibration_kind": kind, "abstain_threshold": threshold, "ood_min_energy": min_energy,
               "temperature": new_card.get("temperature"),
               "float_card": {k: card.get(k) for k in ("temperature", "abstain_threshold", "ood_min_energy")},
               "valid": PH.figures(pv, va["labels"], va["crowd"]), "wall_seconds": time.time() - t0}
    scored = a.float_dir / "crossval.json"
    if scored.exists():
        report["float_crossval"] = {name: {k: r[k] for k in ("n", "no_face", "accuracy", "uar", "ece")}
                                    for name, r in json.loads(scored.read_text())["sets"].items()}
    (a.out / "quantize.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"chosen: {chosen}; Valid {report['valid']['accuracy']:.4f} / {report['valid']['uar']:.4f} against float "
          f"{report['float']['valid']['accuracy']:.4f} / {report['float']['valid']['uar']:.4f}")
    if a.install:
        install(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
