"""The ``mien`` command's entry point. Starting up (importing pandas, OpenCV, the model runtimes)
takes seconds; a Ctrl-C then ends mien like one later on: one line, exit status 130."""
import os
import sys


def main() -> int:
    """The ``mien`` console script: run :func:`mien.cli.main` and return its exit status (exits with
    130 at once when interrupted while still importing)."""
    try:
        from .cli import main as run

        return run()
    except KeyboardInterrupt:
        print("mien: interrupted while starting; nothing was analysed", file=sys.stderr)
        sys.stderr.flush()
        # Leave at once (nothing is open yet): after an interrupt that landed in a library's import,
        # CPython sometimes still ended by SIGINT (status -2) instead of returning 130.
        os._exit(130)
