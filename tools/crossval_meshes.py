"""crossval CK+ (ckplus48) faces through mien's mesh, cached under cache/ (ignored by git).

As ``../shared/data/crossval/README.md`` says for these 48x48 crops: upscaled 4x (bicubic) and
padded with a 48 px replicated border, then ``Analyzer(Options(iris=False))``; the largest
face of each image is kept. FACS codes come from ``labels.csv`` (``AU1`` … ``AU27``, 0/1).

    python tools/crossval_meshes.py            # fill the cache
"""
from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CKPLUS = ROOT.parent / "shared" / "data" / "crossval" / "ckplus48"
CACHE = ROOT / "cache"
sys.path.insert(0, str(ROOT / "src"))

SCALE = 4
BORDER = 48


def read_codes() -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """(image names, subjects, {AU number: 0/1 codes}) from ckplus48/labels.csv."""
    with (CKPLUS / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = np.array([r["image"] for r in rows])
    subjects = np.array([r["subject"] for r in rows])
    codes = {int(k[2:]): np.array([int(r[k]) for r in rows], bool) for k in rows[0] if k.startswith("AU")}
    return names, subjects, codes


def enlarge(grey48: np.ndarray) -> np.ndarray:
    big = cv2.resize(grey48, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, BORDER, BORDER, BORDER, BORDER, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)


def meshes(names: np.ndarray) -> np.ndarray:
    """(M, 468, 3) float32 image-frame meshes of the largest face per image; NaN where none."""
    key = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    path = CACHE / f"ckplus48_{key}.npz"
    if path.exists():
        return np.load(path)["points"]
    from mien.analyzer import Analyzer, Options
    analyzer = Analyzer(Options(iris=False, action_units=False, perceived=False))
    points = np.full((len(names), 468, 3), np.nan, np.float32)
    for i, name in enumerate(names):
        faces = analyzer.analyze(enlarge(cv2.imread(str(CKPLUS / "images" / name), cv2.IMREAD_GRAYSCALE)))
        if len(faces):
            area = np.prod(faces.boxes[:, 2:4] - faces.boxes[:, 0:2], axis=1)
            points[i] = faces.landmarks[int(np.argmax(area))]
    CACHE.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, points=points, names=names)
    tmp.replace(path)
    return points


if __name__ == "__main__":
    names, _, _ = read_codes()
    pts = meshes(names)
    print(f"ckplus48: {len(names)} images, face found in {np.isfinite(pts[:, 0, 0]).mean():.1%}")
