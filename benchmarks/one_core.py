"""Benchmarks time one CPU core: this process pinned to the first core it may use, OpenCV on one thread;
the time spent inside a function, added up over its calls; the video the video benchmarks read by default."""
import argparse
import functools
import os
import time
from pathlib import Path

import cv2

DEMO_VIDEO = Path(__file__).resolve().parents[1].parent / "shared/data/demo/openmpf/new_face_video-90.mp4"


def pin_to_one_core() -> int:
    """Pin this process (decoder threads included) to one core and OpenCV to one thread; the core's number."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    return core


def adding_time_to(total: list[float], function, clock=time.perf_counter):
    """``function``, adding the seconds (by ``clock``) each call spends inside it to ``total[0]``."""
    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += clock() - start
    return timed


def video_benchmark_parser(description: str, repeats: int) -> argparse.ArgumentParser:
    """A parser for a benchmark of one video: ``VIDEO`` (default ``DEMO_VIDEO``) and ``--repeats``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", default=str(DEMO_VIDEO))
    parser.add_argument("--repeats", type=int, default=repeats)
    return parser
