"""FERPlus faces through mien's mesh, cached under cache/ (ignored by git) so reruns are fast.

Each split is processed once per image list: 48x48 grey → ``upscale_with_border`` (320x320 RGB)
→ ``Analyzer(Options(detector="short", iris=False))``; the first (highest-scoring)
face is kept. Votes come from ``label.csv`` (the 2016 file, as in published FERPlus results).

    python tools/ferplus_meshes.py Test            # fill the cache for one split
"""
from __future__ import annotations

import hashlib
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "cache"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

VOTE_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
EXCLUDED = {"fer0033120.png"}  # its pixels are not the face its votes describe (KNOWN_ISSUES.md)


def ferplus_dir(split: str) -> Path:
    return DATA / "ferplus" / "data" / f"FER2013{split}"


def read_votes(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(names (M,), votes (M, 10) int) from label.csv, without the excluded file."""
    names, votes = [], []
    for line in (ferplus_dir(split) / "label.csv").read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if not parts[0] or parts[0] in EXCLUDED:
            continue
        names.append(parts[0])
        votes.append([int(v) for v in parts[-10:]])
    return np.array(names), np.array(votes, np.int64)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus majority protocol: drop single votes; the top class must hold more than half of the
    rest and be one of the 8 expressions (0 neutral, 1 happiness, ...); else -1."""
    v = np.where(votes == 1, 0, votes)
    total = v.sum(1)
    top = v.argmax(1)
    ok = (total > 0) & (v.max(1) > 0.5 * total) & (top < 8)
    return np.where(ok, top, -1)


_analyzer = None


def _mesh_chunk(args):
    split, names = args
    global _analyzer
    if _analyzer is None:
        from mien.analyzer import Analyzer, Options
        _analyzer = Analyzer(Options(detector="short", iris=False))
    from oracle_inputs import upscale_with_border
    folder = ferplus_dir(split)
    points = np.full((len(names), 468, 3), np.nan, np.float32)
    for i, name in enumerate(names):
        grey = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        batch = _analyzer.analyze(upscale_with_border(grey))
        if len(batch.scores):
            points[i] = batch.landmarks[0]
    return points


def meshes(split: str, names: np.ndarray, workers: int = 2) -> np.ndarray:
    """(M, 468, 3) float32 image-frame meshes for the named images of a split; NaN where no face."""
    key = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    path = CACHE / f"ferplus_{split}_{key}.npz"
    if path.exists():
        return np.load(path)["points"]
    chunks = [(split, list(c)) for c in np.array_split(names, max(1, min(len(names), workers * 8)))]
    with ProcessPoolExecutor(workers) as pool:
        points = np.concatenate(list(pool.map(_mesh_chunk, chunks)))
    CACHE.mkdir(exist_ok=True)
    np.savez_compressed(path, points=points, names=names)
    return points


def neutral_train_names(min_votes: int = 8) -> np.ndarray:
    names, votes = read_votes("Train")
    return names[votes[:, 0] >= min_votes]


if __name__ == "__main__":
    import time
    for split in sys.argv[1:]:
        t = time.perf_counter()
        if split == "TrainNeutral":
            names = neutral_train_names()
            pts = meshes("Train", names)
        else:
            names, _ = read_votes(split)
            pts = meshes(split, names)
        found = np.isfinite(pts[:, 0, 0]).mean()
        print(f"{split}: {len(names)} images, face found in {found:.1%}, {time.perf_counter() - t:.1f} s")
