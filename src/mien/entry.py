"""The ``mien`` command's entry point. Starting up (importing pandas, OpenCV, the model runtimes)
takes seconds; a Ctrl-C then ends mien like one later on: one line, exit status 130."""
import sys


def main() -> int:
    """The ``mien`` console script: run :func:`mien.cli.main` and return its exit status (130 when
    interrupted while still importing)."""
    try:
        from .cli import main as run

        return run()
    except KeyboardInterrupt:
        print("mien: interrupted while starting; nothing was analysed", file=sys.stderr)
        return 130
