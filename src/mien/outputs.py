"""Where each input's outputs go, decided and checked before any analysis.

Outputs made per input (a video's tables, report and annotated video, an image's pictures) are
named after the input's path relative to the folder that holds all the inputs, so the output
folders mirror the input folders: ``cam1/clip.mp4`` and ``cam2/clip.mp4`` give ``cam1/clip``
and ``cam2/clip``. The suffix is dropped (``clip.mp4`` gives ``clip``) unless two inputs, or an
input and a name mien uses itself (``images``, the table of a folder's still images), would then
share a name: those keep it (``img.jpg``, ``img.png``). If two outputs would still be the same
file, the run is refused before it starts. Names are compared without case, as on macOS and
Windows file systems.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from .paths import source_text


def output_names(inputs: list[Path], reserved: tuple[str, ...] = ()) -> dict[Path, str]:
    """A distinct relative name, without suffix where possible, for each input (see module doc)."""
    absolute = [Path(os.path.abspath(p)) for p in inputs]
    base = Path(os.path.commonpath([p.parent for p in absolute])) if absolute else Path(".")
    relative = [p.relative_to(base) for p in absolute]
    short = [str(r.parent / r.stem) if r.suffix and not p.is_dir() else str(r) for r, p in zip(relative, inputs)]
    counts = Counter(s.casefold() for s in dict(zip(absolute, short)).values())
    taken = {r.casefold() for r in reserved}
    # source_text: a name that is not UTF-8 becomes one every writer (pyarrow, OpenCV) can take
    return {p: source_text(s if counts[s.casefold()] == 1 and s.casefold() not in taken else str(r))
            for p, r, s in zip(inputs, relative, short)}


def check_distinct(outputs: list[tuple[Path, str]]) -> None:
    """Raise ValueError when two outputs (path, what it is) would be one file; an input given
    twice writes its outputs twice, which is no clash."""
    seen: dict[str, str] = {}
    for path, what in outputs:
        key = os.path.abspath(path).casefold()
        if key in seen and seen[key] != what:
            raise ValueError(f"{seen[key]} and {what} would both be written to {path}; rename one of the inputs")
        seen[key] = what
