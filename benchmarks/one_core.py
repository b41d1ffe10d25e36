"""Benchmarks time one CPU core: this process pinned to the first core it may use, OpenCV on one thread;
and the time spent inside a function, added up over its calls."""
import functools
import os
import time

import cv2


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
