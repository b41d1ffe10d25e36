"""Benchmarks time one CPU core: this process pinned to the first core it may use, OpenCV on one thread."""
import os

import cv2


def pin_to_one_core() -> int:
    """Pin this process (decoder threads included) to one core and OpenCV to one thread; the core's number."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    cv2.setNumThreads(1)
    return core
