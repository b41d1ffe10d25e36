"""Video analysis time per frame by the number of frames analysed together (``Analyzer.analyze_batch``).

    python benchmarks/video_batch_size.py [VIDEO] [--repeats 7] [--sizes 1,4,8,16,32]

Default video: ../shared/data/demo/openmpf/new_face_video-90.mp4, decoded once beforehand, so only
the analysis is timed (the default video analysis: no iris), in the process's CPU time, pinned to
one core with the models on one thread. The sizes take turns within each repeat, so that drift of
the machine's speed hits each alike; prints the median and the least time per frame of each size.
This is how ``mien.video.analysis.BATCH_FRAMES`` was chosen.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


from one_core import pin_to_one_core, video_benchmark_parser  # noqa: E402
from mien.analyzer import Analyzer, Mode, Options  # noqa: E402
from mien.video.analysis import frame_batches, read_video  # noqa: E402



def main() -> None:
    parser = video_benchmark_parser(__doc__, repeats=7)
    parser.add_argument("--sizes", default="1,4,8,16,32", help="frames per batch, comma-separated")
    args = parser.parse_args()
    core = pin_to_one_core()
    sizes = [int(s) for s in args.sizes.split(",")]
    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    frames = list(read_video(args.video))
    seconds: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(args.repeats):
        for size in sizes:
            analyzer.reset()
            start = time.process_time()
            for batch in frame_batches(frames, size):
                analyzer.analyze_batch(batch)
            seconds[size].append(time.process_time() - start)
    print(f"{Path(args.video).name}: {len(frames)} frames, analysis only (decoded beforehand), pinned to CPU core {core}, "
          f"CPU time, {args.repeats} repeats")
    for size in sizes:
        per_frame = [s / len(frames) * 1e3 for s in seconds[size]]
        print(f"  {size:3d} frames a batch: median {statistics.median(per_frame):.2f} ms/frame, least {min(per_frame):.2f}")


if __name__ == "__main__":
    main()
