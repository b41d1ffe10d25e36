"""File names as text in the output tables, without losing any name.

On Linux a file name is bytes, and need not be valid UTF-8 (``caf\\xe9.mp4`` from a Latin-1
system); Python holds such a byte as a lone surrogate, which no UTF-8 table format can store.
:func:`source_text` writes every name as UTF-8 text by one rule that :func:`source_path`
reverses exactly:

- a byte that is not part of valid UTF-8 is written ``\\xNN`` (two lower-case hex digits);
- a backslash that is followed by a backslash, by ``x`` or by such a byte is doubled.

Names that are valid UTF-8 and hold no backslash before ``\\`` or ``x`` are unchanged.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

_TO_ESCAPE = re.compile(r"\\(?=[\\x\udc80-\udcff])|[\udc80-\udcff]")
_ESCAPED = re.compile(r"\\\\|\\x([89a-f][0-9a-f])")


def _escape(match: re.Match) -> str:
    char = match.group()
    return "\\\\" if char == "\\" else f"\\x{ord(char) - 0xDC00:02x}"


def source_text(name: str | os.PathLike) -> str:
    """A file name as valid UTF-8 text, by the rule above."""
    text = os.fspath(name)
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no byte gave (possible only on Windows): keep it visible
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _TO_ESCAPE.sub(_escape, text)


def source_path(text: str) -> Path:
    """The path that :func:`source_text` wrote as ``text``."""
    def unescape(match: re.Match) -> str:
        return "\\" if match.group(1) is None else chr(0xDC00 + int(match.group(1), 16))

    return Path(os.fsdecode(_ESCAPED.sub(unescape, text).encode("utf-8", "surrogateescape")))


def readable_text(text: str) -> str:
    """Text for messages: bytes that are not UTF-8 shown as ``\\xNN``, nothing else changed (not reversible)."""
    if utf8_encodable(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def utf8_encodable(name: str | os.PathLike) -> bool:
    """Whether a name can be handed to libraries that take only UTF-8 (OpenCV, FFmpeg)."""
    try:
        os.fspath(name).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
