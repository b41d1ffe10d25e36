"""Every core of one machine: tasks run in worker processes, each of which loads the models once
(per kind of analysis it is given) and runs them on one thread. Results come back to the caller,
who keeps them in input order, so a run's outputs do not depend on the number of workers."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence

from ..analyzer import Analyzer, Options
from ..runtime import ctrl_c_as_flag

# A top-level function of (analyzer, job), the options of the analyzer it needs (None: it needs
# none, and is given None), and its job.
Task = tuple[Callable[[Analyzer | None, Any], Any], Options | None, Any]
IN_FLIGHT_PER_WORKER = 4  # batches of short tasks queued per worker: enough to keep it busy, few enough for a million inputs
MAX_BATCH = 16  # short tasks sent to a worker at once: each message to a worker costs the main process about a millisecond
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def default_workers() -> int:
    """The cores this process may run on (a container's or a batch job's share, not the whole machine's)."""
    return len(os.sched_getaffinity(0))


_analyzers: dict[Options, Analyzer] = {}  # a worker process's analyzers, made on first use


def use_one_thread() -> None:
    """Run OpenCV, and with it video decoding (see ``video.decode``), on one thread in this process,
    and BLAS where it is loaded after this: one worker's share of the machine."""
    import cv2

    for name, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(name, value)
    cv2.setNumThreads(1)


def analyzer_for(options: Options, analyzers: dict[Options, Analyzer] = _analyzers) -> Analyzer:
    """The analyzer with ``options`` from ``analyzers`` (by default the worker process's own), its
    models loaded on first use and kept."""
    if options not in analyzers:
        use_one_thread()
        analyzers[options] = Analyzer(options)
    return analyzers[options]


def run_task(task: Task, analyzers: dict[Options, Analyzer] = _analyzers):
    """Run one task here: ``fn(analyzer, job)`` with the analyzer for the task's options from
    ``analyzers`` (by default the worker process's own; None for options None); returns what ``fn`` returns."""
    fn, options, job = task
    if options is None:
        use_one_thread()
        return fn(None, job)
    return fn(analyzer_for(options, analyzers), job)


def run_tasks(tasks: Sequence[Task], workers: int, short: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield (position, result) for each task as it finishes: in this process for one worker (or
    one task), else in a pool of at most ``workers`` processes. ``short`` tasks (photos) go to the
    workers in batches, several queued per worker; others (videos, pieces) one at a time and none
    queued, so that a Ctrl-C, which stops the running ones at their next frame, starts no other."""
    if workers < 1:
        raise ValueError(f"workers (--workers) must be at least 1, not {workers}")
    if workers == 1 or len(tasks) <= 1:
        analyzers: dict[Options, Analyzer] = {}  # this run's own: models are loaded afresh for each run
        for i, task in enumerate(tasks):
            yield i, run_task(task, analyzers)
        return
    yield from _pooled(tasks, min(workers, len(tasks)), short)


def batch_size(tasks: int, workers: int) -> int:
    """Tasks per message to a worker: as many as keep every worker's queue at least
    IN_FLIGHT_PER_WORKER batches deep over the run, at most MAX_BATCH (one for a few long tasks)."""
    return max(1, min(MAX_BATCH, tasks // (workers * IN_FLIGHT_PER_WORKER * 2)))


def run_batch(batch: Sequence[Task]) -> list:
    """Run tasks one after another in a worker (see ``run_task``); their results in order."""
    return [run_task(task) for task in batch]


def _pooled(tasks: Sequence[Task], workers: int, short: bool) -> Iterator[tuple[int, Any]]:
    for name, value in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(name, value)  # inherited by the workers, read when their libraries load
    # forkserver: workers are forked from a clean process that has imported mien but started no
    # threads, which a fork of this process (possibly holding model runtimes' threads) could not promise
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["mien.scale.tasks"])
    size = batch_size(len(tasks), workers) if short else 1
    queue = iter(range(0, len(tasks), size))
    pending: dict = {}
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            while True:
                while len(pending) < workers * (IN_FLIGHT_PER_WORKER if short else 1):
                    start = next(queue, None)
                    if start is None:
                        break
                    with ctrl_c_held():
                        pending[pool.submit(run_batch, tasks[start : start + size])] = start
                if not pending:
                    return
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    start = pending.pop(future)
                    yield from enumerate(future.result(), start)
        finally:
            for future in pending:
                future.cancel()


@contextlib.contextmanager
def ctrl_c_held():
    """Hold a Ctrl-C that comes while the block runs until it ends: submitting a task may start a
    worker process, and one cut off half-way prints a traceback from the worker after mien has
    said it was interrupted."""
    with ctrl_c_as_flag() as caught:
        yield
    if caught:
        raise KeyboardInterrupt
