"""Throughput of `mien analyze` against the number of worker processes: a folder of images, one long
video (cut into pieces) and a folder of short videos (one per worker at a time).

    python benchmarks/scale.py [--workers 1 2] [--pairs 3] [--images DIR] [--video FILE] [--only images|video|videos]
                               [--pictures]

Defaults: the first 200 (``--ferplus``) FERPlus Test images and the demo photos (linked into a folder under
/tmp), and ../shared/data/demo/openmpf/video_01.mp4 looped to 3 minutes with ffmpeg (stream copy,
made once under /tmp), and 4 links to ../shared/data/demo/openmpf/new_face_video-90.mp4 (17 s each). Each case runs the whole command (start-up, model loading, writing the
tables included) for each worker count in turn, ``--pairs`` times, alternating the order, so that a
machine shared with other work slows each count alike; the speed-up is the median over rounds of
each round's ratio. Also the CPU time of all the command's processes (this script is their subreaper):
on a machine shared with other work, wall-time ratios depend on the share of the CPUs a run
gets, while CPU time per unit shows the work that more workers add. Prints the load average before and after (other people's work shows there),
the peak resident memory of the largest process of a run, and whether the outputs were identical
(images) or how far the pieces' values are from the whole run's (video). ``--pictures``: the long
video also with ``--report`` and ``--annotate`` (drawn piece by piece after the tables), whose
annotated videos' frame counts are compared.
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WORK = Path("/tmp/mien-scale-bench")


def default_images(count: int) -> Path:
    folder = WORK / f"images-{count}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for f in sorted((SHARED / "ferplus/data/FER2013Test").glob("*.png"))[:count]:
            (folder / f.name).symlink_to(f)
        for f in ["pillow/hopper.jpg", "pillow/hopper.png", "skimage/astronaut.png", "openmpf/person_cropped_2.png"]:
            (folder / f"demo_{Path(f).name}").symlink_to(SHARED / "demo" / f)
    return folder


def default_video() -> Path:
    path = WORK / "video_01_3min.mp4"
    if not path.exists():
        if shutil.which("ffmpeg") is None:
            sys.exit("needs ffmpeg to loop the demo video (apt-get install -y ffmpeg), or give --video")
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "59", "-i",
                        str(SHARED / "demo/openmpf/video_01.mp4"), "-c", "copy", str(path)], check=True)
    return path


def default_videos(count: int = 4) -> Path:
    folder = WORK / f"videos-{count}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"clip_{i}.mp4").symlink_to(SHARED / "demo/openmpf/new_face_video-90.mp4")
    return folder


def reap_orphans() -> None:
    """Wait for the descendants left behind by a command (a worker pool's server outlives it by a
    moment), so that their CPU time and memory count in RUSAGE_CHILDREN: this process is their subreaper."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def picture_options(out: Path) -> list[str]:
    """A report and an annotated video beside the table ``out``."""
    return ["--report", str(out.with_suffix(".html")), "--annotate", str(out.parent / "annotated")]


def run(inputs: Path, out: Path, workers: int, pictures: bool = False) -> tuple[float, float, float]:
    """Wall seconds of one whole command (with ``pictures``: also a report and an annotated video),
    the CPU seconds of all its processes, and the peak resident memory (MB) of its largest process
    (NaN when no larger than an earlier run's)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mien", "analyze", str(inputs), "-o", str(out), "--workers", str(workers),
                    *(picture_options(out) if pictures else [])],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, (after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else float("nan")) / 1024


def measure(name: str, inputs: Path, units: int, unit: str, workers: list[int], pairs: int,
            out_name: str = "out.parquet", pictures: bool = False) -> dict[int, Path]:
    walls: dict[int, list[float]] = {w: [] for w in workers}
    cpus: dict[int, list[float]] = {w: [] for w in workers}
    peaks: dict[int, float] = {}
    outs = {w: WORK / f"{name}-w{w}" / out_name for w in workers}
    print(f"{name}: {units} {unit}s, load average before {os.getloadavg()[0]:.2f}")
    for round_ in range(pairs):
        order = workers if round_ % 2 == 0 else workers[::-1]
        for w in order:
            shutil.rmtree(outs[w].parent, ignore_errors=True)
            wall, cpu, peak = run(inputs, outs[w], w, pictures)
            walls[w].append(wall)
            cpus[w].append(cpu)
            peaks[w] = max(peaks.get(w, 0.0), peak) if peak == peak else peaks.get(w, float("nan"))
            print(f"  round {round_ + 1}, {w} worker(s): {wall:6.1f} s, {cpu:6.1f} CPU s  ({units / wall:6.1f} {unit}s/s), "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
    base = workers[0]
    for w in workers:
        ratios = [b / t for b, t in zip(walls[base], walls[w])]
        print(f"  {w} worker(s): median {statistics.median(walls[w]):6.1f} s, {units / statistics.median(walls[w]):6.1f} {unit}s/s, "
              f"speed-up over {base}: median {statistics.median(ratios):.2f}x (rounds {', '.join(f'{r:.2f}' for r in ratios)}); "
              f"CPU time {statistics.median(cpus[w]) / units * 1e3:.1f} ms per {unit} "
              f"({statistics.median(c / b for b, c in zip(cpus[base], cpus[w])):.2f}x that of {base}); "
              f"largest process peaked at {peaks[w]:.0f} MB")
    print(f"  load average after {os.getloadavg()[0]:.2f} (this machine has {os.cpu_count()} CPUs)")
    return outs


def compare_images(outs: dict[int, Path]) -> None:
    tables = [pd.read_parquet(p) for p in outs.values()]
    same = all(t.equals(tables[0]) for t in tables[1:])
    print(f"  outputs identical across worker counts: {same}")


def compare_folders(outs: dict[int, Path]) -> None:
    first, *others = outs.values()
    names = sorted(p.name for p in first.iterdir())
    same = all(sorted(p.name for p in o.iterdir()) == names and all(pd.read_parquet(first / n).equals(pd.read_parquet(o / n))
                                                                  for n in names) for o in others)
    print(f"  outputs identical across worker counts: {same} ({len(names)} tables each)")


def compare_video(outs: dict[int, Path]) -> None:
    whole, *others = [pd.read_parquet(p) for p in outs.values()]
    for other in others:
        face = whole["track"].notna()
        pairs = set(zip(whole.loc[face, "track"], other.loc[face, "track"]))
        units = [c for c in whole.columns if c.startswith("au") and whole[c].dtype == "float32"]
        diff = {name: np.abs(other.loc[face, cols].to_numpy(float) - whole.loc[face, cols].to_numpy(float))
                for name, cols in (("pose (deg)", ["yaw", "pitch", "roll"]), ("action units", units))}
        print(f"  pieces vs whole: same frames {whole['frame'].equals(other['frame'])}, tracks {whole['track'].nunique()} "
              f"vs {other['track'].nunique()}, one-to-one {len(pairs) == whole['track'].nunique() == other['track'].nunique()}; "
              + "; ".join(f"|difference| of {k}: median {np.nanmedian(v):.3f}, 95th percentile {np.nanpercentile(v, 95):.3f}, "
                          f"max {np.nanmax(v):.3f}" for k, v in diff.items()))


def compare_pictures(outs: dict[int, Path]) -> None:
    import av

    counts = {}
    for w, out in outs.items():
        with av.open(str(next((out.parent / "annotated").iterdir()))) as video:
            counts[w] = sum(1 for _ in video.demux(video.streams.video[0]) if _.dts is not None)
    reports = {w: out.with_suffix(".html").stat().st_size for w, out in outs.items()}
    print(f"  annotated video frames per worker count: {counts}; report bytes: {reports}")


def main() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: orphaned descendants are reaped here (see reap_orphans)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--ferplus", type=int, default=200, help="FERPlus Test images in the default folder (default 200)")
    parser.add_argument("--video", type=Path)
    parser.add_argument("--only", choices=["images", "video", "videos"])
    parser.add_argument("--pictures", action="store_true", help="the long video also with --report and --annotate")
    args = parser.parse_args()
    if args.only in (None, "images"):
        images = args.images or default_images(args.ferplus)
        count = sum(1 for f in images.iterdir())
        compare_images(measure("images", images, count, "image", args.workers, args.pairs))
    from mien.video import probe

    if args.only in (None, "video"):
        video = args.video or default_video()
        info = probe(video)
        outs = measure("video", video, info.frame_count, "frame", args.workers, args.pairs, pictures=args.pictures)
        compare_video(outs)
        if args.pictures:
            compare_pictures(outs)
    if args.only in (None, "videos"):
        videos = default_videos()
        frames = sum(probe(v).frame_count for v in videos.iterdir())
        compare_folders(measure("videos", videos, frames, "frame", args.workers, args.pairs, out_name="out"))


if __name__ == "__main__":
    main()
