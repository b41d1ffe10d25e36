"""End-to-end frames per second on a video, one thread, decoding included.

    python benchmarks/bench_video.py [VIDEO] [--repeats 5] [--cpu-time]

Default video: ../shared/data/demo/openmpf/new_face_video-90.mp4. The process is pinned to one
CPU core (decoder threads included) and the models run on one thread. Prints medians over repeats
(all in this one process, taking turns, so that drift of the machine's speed hits each alike) of:

- decoding alone;
- the default video analysis (tracking, smoothing, landmarks, pose, quality, action units,
  perceived expression at most 10 times a second per face; no iris), and the share of its time
  spent inside the models;
- the same with the perceived-expression model on every frame (``--perceived-hz 0``), and how
  far the default's perceived columns are from it.

"Floor" is decoding plus model inference alone: what no change outside the models and the
decoder can beat on this machine. Both are timed during the run (the decoder, like the models,
runs slower there than alone, its caches cold after the models; that time is decoding all the
same), and "everything else" is the rest of the run's time. ``--cpu-time`` times with the
process's CPU time instead of the wall clock, so that time spent waiting while other processes
hold the core is not counted (on a shared machine; everything else stays the same).
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from one_core import pin_to_one_core, video_benchmark_parser  # noqa: E402
from mien.analyzer import Analyzer, Mode, Options  # noqa: E402
from mien.perceived import CLASSES, PerceivedModel  # noqa: E402
from mien.results import to_frame  # noqa: E402
from mien.runtime import TFLiteModel  # noqa: E402
from mien.video import frames  # noqa: E402
from mien.video import analysis as video_analysis  # noqa: E402
from mien.video.analysis import analyze_frames  # noqa: E402

inference_s: dict[str, float] = defaultdict(float)
clock = time.perf_counter


def timed(method, label_of):
    def wrapper(self, *args, **kwargs):
        start = clock()
        try:
            return method(self, *args, **kwargs)
        finally:
            inference_s[label_of(self)] += clock() - start
    return wrapper


def timed_frames(*args, **kwargs):
    """The decoder's frames, the time spent producing each added to ``inference_s["decoding"]``."""
    stream = frames(*args, **kwargs)
    while True:
        start = clock()
        try:
            frame = next(stream)
        except StopIteration:
            return
        finally:
            inference_s["decoding"] += clock() - start
        yield frame


video_analysis.frames = timed_frames
TFLiteModel.__call__ = timed(TFLiteModel.__call__, lambda m: "detector" if "detection" in m.name else "landmarks")
PerceivedModel.logits = timed(PerceivedModel.logits, lambda m: "perceived")


def ms(seconds: float, frames_: int) -> str:
    return f"{seconds / frames_ * 1e3:5.2f} ms/frame"


def main() -> None:
    parser = video_benchmark_parser(__doc__, repeats=5)
    parser.add_argument("--cpu-time", action="store_true", help="time with the process's CPU time, not the wall clock")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.cpu_time else time.perf_counter
    core = pin_to_one_core()
    configs = {"default (perceived <= 10 Hz)": Analyzer(Options(mode=Mode.VIDEO, iris=False)),
               "perceived every frame": Analyzer(Options(mode=Mode.VIDEO, iris=False, perceived_hz=None))}
    decode: list[float] = []
    runs: dict[str, list[tuple[float, dict]]] = {name: [] for name in configs}
    n = faces = 0
    tables = {}
    for _ in range(args.repeats):
        start = clock()
        n = sum(1 for _ in frames(args.video))
        decode.append(clock() - start)
        for name, analyzer in configs.items():
            inference_s.clear()
            start = clock()
            results = list(analyze_frames(args.video, analyzer))
            runs[name].append((clock() - start, dict(inference_s)))
            faces = sum(len(r) for r in results)
            tables[name] = to_frame(results)
    decode_s = statistics.median(decode)
    timing = "CPU time" if args.cpu_time else "wall clock"
    print(f"{Path(args.video).name}: {n} frames, {faces} face-frames, pinned to CPU core {core}, {timing}, median of {args.repeats}")
    print(f"  decode only: {n / decode_s:6.1f} frames/s  ({ms(decode_s, n)})")
    for name, timings in runs.items():
        total = statistics.median(t for t, _ in timings)
        parts = {k: statistics.median(i.get(k, 0.0) for _, i in timings) for k in ("landmarks", "detector", "perceived")}
        decoding = statistics.median(i["decoding"] for _, i in timings)
        floor = decoding + sum(parts.values())
        print(f"  {name}: {n / total:6.1f} frames/s  ({ms(total, n)})")
        print(f"    decoding during the run {ms(decoding, n)}; inside the models: "
              + ", ".join(f"{k} {ms(v, n)}" for k, v in parts.items()))
        print(f"    floor (decoding + models): {n / floor:6.1f} frames/s; everything else {ms(total - floor, n)}, "
              f"{(total - floor) / total:.0%} of the time")
    sampled, every = (t[t["track"].notna()] for t in tables.values())
    shares = [f"perceived_{c}" for c in CLASSES]
    diff = np.abs(sampled[shares].to_numpy() - every[shares].to_numpy())
    print(f"  perceived <= 10 Hz vs every frame, {len(diff)} face rows: |difference| of the 8 shares mean {diff.mean():.4f}, "
          f"95th percentile {np.percentile(diff, 95):.4f}, max {diff.max():.4f}; "
          f"same perceived_top on {np.mean(sampled['perceived_top'].to_numpy() == every['perceived_top'].to_numpy()):.1%} of rows")
    differ = sampled["perceived_top"].to_numpy() != every["perceived_top"].to_numpy()
    if differ.any():
        top_p = np.concatenate([sampled["perceived_top_p"].to_numpy()[differ], every["perceived_top_p"].to_numpy()[differ]])
        print(f"    the {differ.sum()} rows that differ: top share {top_p.min():.2f}-{top_p.max():.2f}; "
              f"{np.sum((sampled['perceived_top'] == 'uncertain').to_numpy()[differ] | (every['perceived_top'] == 'uncertain').to_numpy()[differ])} "
              "with uncertain on one side")


if __name__ == "__main__":
    main()
