"""Carry FERPlus Train/Valid to a machine without ``../shared`` (a lent GPU machine) and put it back there.

    python training/device_data.py pack DIR     # here: label.csv + one lossless WebP mosaic per split, crossval crops
    python training/device_data.py unpack DIR   # there: rebuilds ../shared/data/ferplus/data/FER2013{Train,Valid}

The mosaic holds each split's 48x48 grey faces in label.csv order (128 a row; lossless WebP is the smallest of the
lossless forms tried, and the device call carries at most 64 MiB), so ``ferplus.read_images`` reads the same pixels
there as here. The crossval crops are benchmarks/perceived_crossval.py's cached pipeline crops, with the key of the pipeline code
that made them, carried only so that a teacher can be scored on them (training/teacher.py); nothing is fitted on them.
"""
from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ferplus as FP  # noqa: E402

SPLITS = ("Train", "Valid")
ROW = 128
SIDE = 48


def mosaic(faces: np.ndarray) -> np.ndarray:
    rows = -(-len(faces) // ROW)
    padded = np.zeros((rows * ROW, SIDE, SIDE), np.uint8)
    padded[:len(faces)] = faces
    return padded.reshape(rows, ROW, SIDE, SIDE).transpose(0, 2, 1, 3).reshape(rows * SIDE, ROW * SIDE)


def faces_of(picture: np.ndarray, n: int) -> np.ndarray:
    rows = picture.shape[0] // SIDE
    return picture.reshape(rows, SIDE, ROW, SIDE).transpose(0, 2, 1, 3).reshape(rows * ROW, SIDE, SIDE)[:n]


def pack(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        names, _ = FP.read_votes(split)
        (out / f"{split}-label.csv.gz").write_bytes(gzip.compress((FP.split_dir(split) / "label.csv").read_bytes()))
        if not cv2.imwrite(str(out / f"{split}.webp"), mosaic(FP.read_images(split, names)), [cv2.IMWRITE_WEBP_QUALITY, 101]):
            raise SystemExit(f"could not write {out / f'{split}.webp'}")
    sys.path.insert(0, str(HERE.parent / "benchmarks"))
    import perceived_crossval as CV

    for name, s in CV.cached_sets().items():
        np.savez_compressed(out / f"crossval-{name}.npz", crops=s["crops"], pipeline_key=CV.pipeline_key())


def unpack(packed: Path) -> None:
    for split in SPLITS:
        folder = FP.split_dir(split)
        if (folder / "label.csv").exists():
            raise SystemExit(f"{folder} already holds FERPlus: unpack only where ../shared is missing")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "label.csv").write_bytes(gzip.decompress((packed / f"{split}-label.csv.gz").read_bytes()))
        names, _ = FP.read_votes(split)
        picture = cv2.imread(str(packed / f"{split}.webp"), cv2.IMREAD_GRAYSCALE)
        if picture is None:
            raise SystemExit(f"could not read {packed / f'{split}.webp'}")
        for name, face in zip(names, faces_of(picture, len(names))):
            cv2.imwrite(str(folder / name), face)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("pack", "unpack"))
    ap.add_argument("folder", type=Path)
    a = ap.parse_args(argv)
    (pack if a.action == "pack" else unpack)(a.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
