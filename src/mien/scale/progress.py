"""The one progress display of a run: inputs done, faces found, time left. Behind this small
interface so that the display can change without touching the runners."""
from __future__ import annotations

import sys


class RunProgress:
    """Counts finished inputs (or pieces of inputs) and the faces found in them."""

    def __init__(self, total: int, unit: str = "file"):
        from tqdm import tqdm

        self.faces = 0
        self._bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, disable=None if total >= 2 else True)

    def done(self, faces: int = 0) -> None:
        self.faces += faces
        self._bar.set_postfix_str(f"{self.faces} faces", refresh=False)
        self._bar.update(1)

    def note(self, message: str) -> None:
        """A line for the user that does not break the bar."""
        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
