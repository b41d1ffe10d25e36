"""Median milliseconds per stage for one 640x480 frame with one face, on one CPU core.

    python benchmarks/bench_image.py [--runs 300]

Stages: detect (short, full, both, and auto: short range, full range too where short range cannot
see; on this frame's face, 0.15 of the longer side, auto runs both), landmarks (crop + mesh model),
iris, pose + quality, and the whole `Analyzer.analyze` call with and without the iris model; and,
for the default call, the time beyond its model invokes (everything but the detector, mesh and
iris models themselves and the perceived model with its input preparation) and its share of the call, medians over the runs: the figure
that does not depend on how fast the machine runs the models. The process is pinned to one CPU
core and the models run on one thread.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from importlib import resources  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from one_core import adding_time_to, pin_to_one_core  # noqa: E402
from mien.analyzer import Analyzer, Options  # noqa: E402
from mien.detect import FaceDetector  # noqa: E402
from mien.geometry import head_pose  # noqa: E402
from mien.images import read_image  # noqa: E402
from mien.landmarks import FaceMesher, IrisLocator, roi_from_detections  # noqa: E402
from mien.perceived import PerceivedModel  # noqa: E402
from mien.quality import assess  # noqa: E402
from mien.runtime import TFLiteModel  # noqa: E402

inside_models_s = [0.0]
TFLiteModel.__call__ = adding_time_to(inside_models_s, TFLiteModel.__call__)
PerceivedModel.logits = adding_time_to(inside_models_s, PerceivedModel.logits)


def frame_640x480() -> np.ndarray:
    face = read_image(resources.files("mien") / "data" / "astronaut.png")
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[:, 64:576] = cv2.resize(face, (512, 480))
    return canvas


def median_ms(fn, runs: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def beyond_models(fn, runs: int) -> tuple[float, float]:
    """Median milliseconds of a call spent outside the model invokes, and median share of the call."""
    for _ in range(10):
        fn()
    outside, shares = [], []
    for _ in range(runs):
        inside_models_s[0] = 0.0
        t = time.perf_counter()
        fn()
        total = time.perf_counter() - t
        outside.append(total - inside_models_s[0])
        shares.append(outside[-1] / total)
    return statistics.median(outside) * 1000, statistics.median(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    runs = parser.parse_args().runs
    pin_to_one_core()
    rgb = frame_640x480()
    lean = Analyzer(Options(detector="short", iris=False, action_units=False, perceived=False))
    full = Analyzer(Options(detector="auto", iris=True))
    short_range, full_range, both, auto = (FaceDetector(r) for r in ("short", "full", "both", "auto"))
    mesher, iris = FaceMesher(), IrisLocator()
    det = short_range(rgb)
    assert len(det) == 1, "the benchmark frame should hold exactly one face"
    roi = roi_from_detections(det)
    meshes = mesher(rgb, roi)

    def pose_and_quality():
        pose = head_pose(meshes.points)
        return assess(meshes.points, meshes.crops, meshes.presence, pose.yaw, pose.pitch)

    rows = [
        ("detect, short range", median_ms(lambda: short_range(rgb), runs)),
        ("detect, full range", median_ms(lambda: full_range(rgb), runs)),
        ("detect, both", median_ms(lambda: both(rgb), runs)),
        ("detect, auto", median_ms(lambda: auto(rgb), runs)),
        ("landmarks (crop + mesh)", median_ms(lambda: mesher(rgb, roi), runs)),
        ("iris (both eyes)", median_ms(lambda: iris(rgb, meshes.points), runs)),
        ("pose + quality", median_ms(pose_and_quality, runs)),
        ("total: short detector + landmarks + pose + quality", median_ms(lambda: lean.analyze(rgb), runs)),
        ("default: auto detector, iris, AUs, perceived", median_ms(lambda: full.analyze(rgb), runs)),
    ]
    outside_ms, share = beyond_models(lambda: full.analyze(rgb), runs)
    print(f"one 640x480 frame, one face, one thread, median of {runs} runs")
    for name, ms in rows:
        print(f"  {name:40s} {ms:7.2f} ms")
    print(f"  default, beyond its model invokes: {outside_ms:.2f} ms, {share:.0%} of the call")

if __name__ == "__main__":
    main()
