"""End-to-end frames per second on a video, one thread, decoding included.

    python benchmarks/bench_video.py [VIDEO] [--repeats 3]

Default video: ../shared/data/demo/openmpf/new_face_video-90.mp4. Prints the median over
repeats of: decoding alone, and the default video analysis (tracking, smoothing, landmarks, pose,
quality, action units, perceived expression; no iris).
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402

from mien.analyzer import Analyzer, AnalyzerOptions  # noqa: E402
from mien.video import frames  # noqa: E402
from mien.video_analysis import analyze_frames  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared/data/demo/openmpf/new_face_video-90.mp4"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    decode, full, faces = [], [], 0
    for _ in range(args.repeats):
        t = time.perf_counter()
        n = sum(1 for _ in frames(args.video))
        decode.append(n / (time.perf_counter() - t))
        analyzer = Analyzer(AnalyzerOptions(iris=False, keep_landmarks=False))
        t = time.perf_counter()
        results = list(analyze_frames(args.video, analyzer))
        full.append(len(results) / (time.perf_counter() - t))
        faces = sum(len(r.faces) for r in results)
    print(f"{Path(args.video).name}: {n} frames, {faces} face-frames, one thread, median of {args.repeats}")
    print(f"  decode only:                          {statistics.median(decode):7.1f} frames/s")
    print(f"  decode + track + smooth + landmarks + pose + quality + action units + perceived: {statistics.median(full):7.1f} frames/s")


if __name__ == "__main__":
    main()
