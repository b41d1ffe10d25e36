"""Peak memory of `mien analyze` on a long 720p video (synthesised, 10 minutes by default).

    python benchmarks/video_memory.py [--minutes 10]

The clip (a face from the bundled sample moving over a textured background, 1280x720, 30
frames/s, MPEG-4) is written once to cache/; the analysis runs as a child process whose peak
resident memory (ru_maxrss of children) is printed with its frames per second.
"""
import argparse
import resource
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from mien.images import read_image

CACHE = Path(__file__).resolve().parents[1] / "cache"


def synthesise(path: Path, minutes: float) -> None:
    face = cv2.cvtColor(read_image(resources.files("mien") / "data" / "astronaut.png")[40:260, 120:330], cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(60, 200, (720, 1280, 3), dtype=np.uint8), (0, 0), 6)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (1280, 720))
    n = int(minutes * 60 * 30)
    h, w = face.shape[:2]
    for k in range(n):
        frame = background.copy()
        x = int(535 + 400 * np.sin(k / 90.0))
        y = int(250 + 120 * np.sin(k / 57.0))
        frame[y : y + h, x : x + w] = face
        writer.write(frame)
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    clip = CACHE / f"synthetic_720p_{args.minutes:g}min.mp4"
    if not clip.exists():
        t = time.perf_counter()
        synthesise(clip, args.minutes)
        print(f"synthesised {clip.name} in {time.perf_counter() - t:.0f} s")
    out = CACHE / "memory_run.parquet"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mien", "analyze", str(clip), "-o", str(out)], check=True,
                   stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    frames = int(args.minutes * 60 * 30)
    print(f"{args.minutes:g} min of 1280x720 video ({frames} frames): peak memory {peak_mb:.0f} MB, "
          f"{seconds:.0f} s, {frames / seconds:.0f} frames/s (defaults, one process)")


if __name__ == "__main__":
    main()
