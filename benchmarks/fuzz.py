"""Fuzz mien's command with many seeded, damaged images and videos, and count what went wrong.

    python benchmarks/fuzz.py [--images 2000] [--videos 200] [--seed 1] [--batch 250] [--timeout 600]

The inputs and checks are those of tests/test_fuzz.py (tests/fuzz_inputs.py), in larger numbers:
small valid images (every format, odd sizes and sample types) and short videos (several
containers and codecs) truncated, bit-flipped, header-overwritten, spliced and zeroed. They run
in batches, one `mien analyze` per batch; a batch that crashes or hangs is run again one input at
a time, so that the counts are per input. Prints inputs tried, crashes, hangs, inputs without a
row and error rows whose message says nothing specific; all should be zero.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_inputs import Outcome, check_images, check_videos, image_seeds, video_seeds, write_inputs  # noqa: E402


def run_batches(paths: list[Path], check, out: Path, batch: int, timeout: float) -> list[Outcome]:
    """Outcomes per batch; a crashed or hung batch is split into single inputs."""
    outcomes = []
    for start in range(0, len(paths), batch):
        part = paths[start : start + batch]
        outcome = check(part, out / f"batch{start}", timeout)
        if (outcome.crashed or outcome.hung) and len(part) > 1:
            singles = [check([p], out / f"single{start}_{i}", timeout / 4) for i, p in enumerate(part)]
            outcomes += singles
            for single in singles:
                if single.crashed or single.hung:
                    print(f"  {'crash' if single.crashed else 'hang'}: {single.missing or part}\n{single.stderr[-600:]}",
                          file=sys.stderr)
        else:
            outcomes.append(outcome)
            for name in outcome.missing + outcome.vague:
                print(f"  no row or a vague message: {name}", file=sys.stderr)
        done = sum(o.inputs for o in outcomes)
        print(f"  {done}/{len(paths)} inputs", file=sys.stderr)
    return outcomes


def image_check(paths, out, timeout):
    return check_images(paths, out.with_suffix(".csv"), timeout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000, help="damaged images to make (besides the seeds)")
    ap.add_argument("--videos", type=int, default=200, help="damaged videos to make (besides the seeds)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=250, help="inputs per run of the command")
    ap.add_argument("--timeout", type=float, default=600, help="seconds a batch may take before it counts as hung")
    args = ap.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mien-fuzz-") as folder:
        work = Path(folder)
        images = write_inputs(work / "images", image_seeds(), args.images, args.seed)
        videos = write_inputs(work / "videos", video_seeds(work), args.videos, args.seed + 1)
        print(f"fuzzing {len(images)} images and {len(videos)} videos (seed {args.seed})", file=sys.stderr)
        outcomes = run_batches(images, image_check, work / "out_images", args.batch, args.timeout)
        outcomes += run_batches(videos, check_videos, work / "out_videos", max(1, args.batch // 5), args.timeout)
    tried = sum(o.inputs for o in outcomes)
    crashes = sum(o.inputs for o in outcomes if o.crashed)
    hangs = sum(o.inputs for o in outcomes if o.hung)
    missing = sum(len(o.missing) for o in outcomes if not (o.crashed or o.hung))
    vague = sorted({message for o in outcomes for message in o.vague})
    print(f"inputs tried:        {tried} ({len(images)} images, {len(videos)} videos; seed {args.seed})")
    print(f"crashes:             {crashes}")
    print(f"hangs:               {hangs}")
    print(f"rows missing:        {missing}")
    print(f"vague error rows:    {len(vague)}" + (f" {vague[:5]}" if vague else ""))
    print(f"time:                {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
