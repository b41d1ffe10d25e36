"""Measure where FER2013 puts the eyes, through mien's own landmark pipeline.

    python training/measure_framing.py      # project venv (needs mien + LiteRT)

A seeded random sample of FERPlus Train images (48x48) is upscaled with
``tests/oracle_inputs.upscale_with_border`` (4x bicubic + 64 px grey border → 320x320 RGB) and run
through ``Analyzer(Options(detector="short", iris=False)).measure``. The eye centres (mean of
landmarks 33,133 and of 362,263; image left first) of the first face are mapped back to 48x48
coordinates with (p - 64) / 4. Medians go to training/framing.json; the constants in
src/mien/perceived.py were copied from there.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))
import ferplus as FP  # noqa: E402


def main(n: int = 600, seed: int = 0) -> dict:
    from mien.analyzer import Analyzer, Options
    from oracle_inputs import upscale_with_border

    names, votes = FP.read_votes("Train")
    keep = FP.majority_labels(votes) >= 0
    names = np.sort(np.random.default_rng(seed).choice(names[keep], n, replace=False))
    imgs = FP.read_images("Train", names)
    an = Analyzer(Options(detector="short", iris=False))
    a_list, b_list = [], []
    t = time.time()
    for img in imgs:
        pts = an.analyze(upscale_with_border(img)).landmarks
        if len(pts) == 0:
            continue
        p = (pts[0, :, :2] - 64.0) / 4.0
        a_list.append(p[[33, 133]].mean(0))
        b_list.append(p[[362, 263]].mean(0))
    a, b = np.array(a_list), np.array(b_list)
    iod = np.linalg.norm(b - a, axis=1)
    out = {
        "images": int(n), "faces_found": int(len(a)), "seed": seed, "split": "Train (majority-protocol images)",
        "eye_a_median_xy": [round(float(v), 3) for v in np.median(a, 0)], "eye_b_median_xy": [round(float(v), 3) for v in np.median(b, 0)],
        "eye_mid_median_xy": [round(float(v), 3) for v in np.median((a + b) / 2, 0)],
        "iod_median": round(float(np.median(iod)), 3),
        "iod_iqr": np.percentile(iod, [25, 75]).round(3).tolist(),
        "eye_mid_iqr_x": np.percentile((a[:, 0] + b[:, 0]) / 2, [25, 75]).round(3).tolist(),
        "eye_mid_iqr_y": np.percentile((a[:, 1] + b[:, 1]) / 2, [25, 75]).round(3).tolist(),
        "roll_deg_median": round(float(np.degrees(np.median(np.arctan2(b[:, 1] - a[:, 1], b[:, 0] - a[:, 0])))), 3),
        "seconds": round(time.time() - t, 1),
    }
    (HERE / "framing.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
