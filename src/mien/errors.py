"""mien's errors: every one derives from ``MienError``, so ``except mien.MienError`` catches them all.

The mixins (``ValueError``, ``RuntimeError``) keep ``except ValueError`` working for callers that
relied on it before ``MienError`` existed.
"""
from __future__ import annotations


class MienError(Exception):
    """Base class of every error mien raises on purpose."""


class InputError(MienError, ValueError):
    """An argument has the wrong type, shape, dtype or value; the message says what was expected and what came."""


class OptionsError(InputError):
    """An ``Options`` field is out of range."""


class TimestampError(InputError):
    """A video-mode frame came with a timestamp earlier than the previous one."""
