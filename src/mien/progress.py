"""Progress of long runs, readable both on a terminal and in a log file.

On a terminal: one bar that redraws itself, with rate and ETA. Anywhere else (``nohup``, SLURM,
a pipe): a plain line every few seconds, ``done/total, rate, ETA``, and never a carriage return,
so a log file reads as a list of lines.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

LINE_EVERY_S = 10.0  # how often a log line is written when the output is not a terminal


def format_duration(seconds: float) -> str:
    """``1:02:03`` or ``2:03``; ``?`` for an unknown duration."""
    if not seconds >= 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    hours, rest = divmod(s, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_line(done: int, total: int | None, elapsed_s: float, unit: str, label: str = "",
                  found: tuple[int, str] | None = None) -> str:
    """One plain progress line: ``label: 120/300 images (40%), 131 faces found, 3.1 images/s,
    elapsed 0:39, ETA 0:58``; ``found``: (count, noun) of what the work found so far, or None."""
    rate = done / elapsed_s if elapsed_s > 0 else float("nan")
    counted = f"{done}/{total} {unit}s ({100 * done / total:.0f}%)" if total else f"{done} {unit}s"
    parts = [counted] + ([f"{found[0]} {found[1]}s found"] if found else [])
    parts += [f"{rate:.1f} {unit}s/s" if rate == rate else f"? {unit}s/s", f"elapsed {format_duration(elapsed_s)}"]
    if total:
        parts.append(f"ETA {format_duration((total - done) / rate) if rate > 0 else '?'}")
    return (f"{label}: " if label else "") + ", ".join(parts)


class Progress:
    """Count work done; show it as a bar on a terminal, or as log lines elsewhere.

    ``update(done)`` takes the absolute count (``advance(n, found)`` adds to it, and to the count
    of ``found_unit`` found, when given); ``write(message)`` prints a message without breaking the bar. Use as a context manager, or call ``close()``:
    a log that got progress lines gets a last one with the final count (a run shorter than
    ``every_s`` writes none)."""

    def __init__(self, total: int | None, unit: str, label: str = "", stream: TextIO | None = None,
                 every_s: float | None = None, terminal: bool | None = None, clock=time.monotonic,
                 found_unit: str | None = None):
        self.total, self.unit, self.label = total or None, unit, label
        self.found_unit, self.found = found_unit, 0
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = LINE_EVERY_S if every_s is None else every_s
        self.clock = clock
        self.done = 0
        self.start = clock()
        self.last_line = self.start
        self.logged = 0  # the count in the last log line written
        if terminal is None:
            terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None
        if terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit=unit, desc=label or None, file=self.stream, dynamic_ncols=True)

    def update(self, done: int) -> None:
        """Set the count of work done to ``done`` (absolute); a log line is written at most every
        ``every_s`` seconds."""
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        self.done = done
        now = self.clock()
        if self._bar is None and now - self.last_line >= self.every_s:
            self.last_line = now
            self._line(now)

    def advance(self, n: int = 1, found: int = 0) -> None:
        """Add ``n`` to the count of work done and ``found`` to the count of ``found_unit`` found."""
        self.found += found
        if self._bar is not None and self.found_unit:
            self._bar.set_postfix_str(f"{self.found} {self.found_unit}s found", refresh=False)
        self.update(self.done + n)

    def write(self, message: str) -> None:
        """Print ``message`` on its own line, without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        """Close the bar, or write a last log line with the final count when the log got progress lines."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.logged and self.done != self.logged:
            self._line(self.clock())

    def _line(self, now: float) -> None:
        self.logged = self.done
        found = (self.found, self.found_unit) if self.found_unit else None
        print(progress_line(self.done, self.total, now - self.start, self.unit, self.label, found), file=self.stream, flush=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StageLog:
    """Messages of a run in stages (the audit), each prefixed with the time since the start, and
    flushed at once so that a log under ``nohup`` shows where the run is."""

    def __init__(self, prefix: str, stream: TextIO | None = None, clock=time.monotonic):
        self.prefix, self.stream, self.clock = prefix, stream, clock
        self.start = clock()

    def __call__(self, message: str) -> None:
        elapsed = format_duration(self.clock() - self.start)
        print(f"{self.prefix} [{elapsed}]: {message}", file=self.stream if self.stream is not None else sys.stderr, flush=True)
