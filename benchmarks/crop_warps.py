"""Four-channel crops (``mien.pixels.warp_rgb``) against OpenCV's three-channel warp, inside the video analysis.

    python benchmarks/crop_warps.py [VIDEO] [--repeats 5]
    python benchmarks/crop_warps.py --break-even

Runs the default video analysis of VIDEO (default ../shared/data/demo/openmpf/new_face_video-90.mp4)
alternately with ``warp_rgb`` and with a plain ``cv2.warpAffine`` of the RGB frame in its place
(the landmark crops and the detector's letterboxes), in one process pinned to one core, and prints
medians over the repeats of the CPU time spent in the warps per frame and of the whole run, and
how far apart the two runs' landmarks are. With ``--break-even``: squares of the model input sizes
(64, 128, 192 px) cut from a 1920x1080 frame, all widened to four channels (neither of
``mien.pixels``' limits applied), against the three-channel warp, by window pixels per square pixel:
where ``WIDEST_WINDOW`` and ``SMALLEST_WIDENED`` come from.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from one_core import adding_time_to, pin_to_one_core, video_benchmark_parser  # noqa: E402
from mien import detect, landmarks, pixels  # noqa: E402
from mien.analyzer import Analyzer, Mode, Options  # noqa: E402
from mien.landmarks import roi_to_tensor_matrix  # noqa: E402
from mien.pixels import _sampled_window, warp_rgb, window_per_square_pixel  # noqa: E402
from mien.video.analysis import analyze_frames  # noqa: E402

in_warps = [0.0]


def three_channel_warp(image, matrix, size, border=cv2.BORDER_REPLICATE, out=None):
    return cv2.warpAffine(image, matrix, (size, size), dst=out, flags=cv2.INTER_LINEAR, borderMode=border)


def least_cpu_ms(calls: dict, repeats: int = 7, number: int = 30) -> dict[str, float]:
    """The least CPU milliseconds a call of each of ``calls`` took, timed in turn ``repeats`` times."""
    least = {name: math.inf for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.process_time()
            for _ in range(number):
                call()
            least[name] = min(least[name], (time.process_time() - start) / number * 1e3)
    return least


def break_even() -> None:
    frame = np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    limits = pixels.WIDEST_WINDOW, pixels.SMALLEST_WIDENED
    pixels.WIDEST_WINDOW, pixels.SMALLEST_WIDENED = math.inf, 0
    print("1920x1080 frame, one core, CPU ms a warp (least of 7), four channels whatever the window against three")
    for size in (64, 128, 192):
        for angle in (0.0, 0.4):
            for per_pixel in (1, 4, 8, 12, 16, 24, 32):
                matrix = roi_to_tensor_matrix(np.array([960.0, 540.0]), size * math.sqrt(per_pixel), angle, size)
                window = window_per_square_pixel(_sampled_window(matrix, size, *frame.shape[:2]), size)
                ms = least_cpu_ms({"four": lambda: warp_rgb(frame, matrix, size),
                                   "three": lambda: three_channel_warp(frame, matrix, size)})
                print(f"  {size} px, angle {angle}: {window:5.1f} window px a square px: four {ms['four']:.3f}, "
                      f"three {ms['three']:.3f} ({ms['four'] / ms['three']:.2f}x)")
    pixels.WIDEST_WINDOW, pixels.SMALLEST_WIDENED = limits


def main() -> None:
    parser = video_benchmark_parser(__doc__, repeats=5)
    parser.add_argument("--break-even", action="store_true", help="time warps by window size instead (see above)")
    args = parser.parse_args()
    pin_to_one_core()
    if args.break_even:
        return break_even()
    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    warps = {"three channels (cv2.warpAffine)": adding_time_to(in_warps, three_channel_warp, time.process_time),
             "four channels (warp_rgb)": adding_time_to(in_warps, warp_rgb, time.process_time)}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in warps}
    points: dict[str, np.ndarray] = {}
    frames = 0
    for _ in range(args.repeats):
        for name, warp in warps.items():
            landmarks.warp_rgb = detect.warp_rgb = warp
            in_warps[0] = 0.0
            start = time.process_time()
            results = list(analyze_frames(args.video, analyzer))
            runs[name].append((time.process_time() - start, in_warps[0]))
            frames = len(results)
            points[name] = np.concatenate([r.landmarks for r in results if len(r)])
    landmarks.warp_rgb = detect.warp_rgb = warp_rgb
    print(f"{Path(args.video).name}: {frames} frames, default video analysis, one core, CPU time, median of {args.repeats}")
    for name, timings in runs.items():
        whole = statistics.median(t for t, _ in timings)
        warping = statistics.median(w for _, w in timings)
        print(f"  {name}: warps {warping / frames * 1e3:.3f} ms a frame; whole run {whole / frames * 1e3:.2f} ms a frame")
    three, four = points.values()
    if three.shape == four.shape:
        print(f"  landmarks, four against three channels: |difference| median {np.median(np.abs(three - four)):.4f} px, "
              f"max {np.abs(three - four).max():.3f} px over {len(three)} faces")
    else:
        print(f"  faces found: {len(three)} with three channels, {len(four)} with four")


if __name__ == "__main__":
    main()
