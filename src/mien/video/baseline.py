"""Per-track neutral faces for action units in video, that a steady expression cannot fool.

A track's own neutral removes what is particular to a face at rest (lip corners that sit high,
low brows), which the population neutral reads as movement. Taking the median of *all* of a
track's frames instead makes any expression held through the clip its "neutral": a person who
grins throughout would show no AU12 and, measured from the grin, a frown at rest. So a track's
neutral is built only from frames that look neutral:

- the perceived non-neutral share (1 - ``perceived_neutral``, the crowd model's view of the
  frame) is at most ``max_non_neutral``, where that model runs; and
- no unit moves far from the population neutral: every unit that is not experimental has an
  intensity against the population neutral of at most ``max_rest_intensity`` (a resting face may
  differ from the population's by about a threshold; a held expression differs by more).

Until ``min_frames`` such frames exist, the population neutral is used. Every row reports which
baseline it used (``au_baseline``: "population" or "track") and how many frames built it
(``au_baseline_frames``; 0 for the population neutral).

The estimate is plain data (numpy arrays and ints, see :meth:`TrackNeutral.to_arrays`), so it can
be stored in a checkpoint as JSON or npz without pickle.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from .. import actions

POPULATION = "population"
TRACK = "track"


@dataclass(frozen=True)
class BaselineRule:
    """When a track's own neutral face replaces the population neutral, and which frames may build it
    (each field's unit is in its comment). Raises ValueError for inconsistent frame counts."""

    min_frames: int = 15  # neutral-looking frames a track needs before its own neutral is used
    window: int = 900  # the track's neutral is the median of its last this-many neutral-looking frames
    refresh: int = 15  # neutral-looking frames between recomputations of the median
    max_non_neutral: float = 0.5  # perceived non-neutral share at most this
    max_rest_intensity: float = 2.0  # intensity against the population neutral at most this, every unit

    def __post_init__(self):
        if not 1 <= self.min_frames <= self.window:
            raise ValueError(f"min_frames must be between 1 and window ({self.window}), not {self.min_frames}")
        if self.refresh < 1:
            raise ValueError(f"refresh must be at least 1, not {self.refresh}")


@dataclass
class TrackNeutral:
    """One track's neutral estimate."""

    frames: np.ndarray  # (window, K) raw measures of the latest neutral-looking frames (ring buffer)
    added: int = 0  # neutral-looking frames seen so far
    neutral: np.ndarray = field(default_factory=lambda: actions.population_neutral().raw.copy())  # (K,)
    built_from: int = 0  # frames behind ``neutral``; 0 while it is the population neutral

    @classmethod
    def empty(cls, rule: BaselineRule) -> TrackNeutral:
        """A track with no neutral-looking frames yet: an empty window sized by ``rule``, the population neutral."""
        return cls(np.full((rule.window, len(actions.columns())), np.nan))

    @property
    def kind(self) -> str:
        """``"track"`` once the neutral is built from the track's own frames, else ``"population"``."""
        return TRACK if self.built_from else POPULATION

    def to_arrays(self) -> dict[str, np.ndarray | int]:
        """The state as plain arrays and counts, for a checkpoint (inverse of :meth:`from_arrays`)."""
        return {"frames": self.frames, "added": self.added, "neutral": self.neutral, "built_from": self.built_from}

    @classmethod
    def from_arrays(cls, data) -> TrackNeutral:
        """The state saved by :meth:`to_arrays` (a mapping with ``frames``, ``added``, ``neutral``, ``built_from``)."""
        return cls(np.asarray(data["frames"], np.float64), int(data["added"]),
                   np.asarray(data["neutral"], np.float64), int(data["built_from"]))


@functools.cache
def _validated_index() -> list[int]:
    return [actions.columns().index(c) for c in actions.validated_columns()]


def rest_intensity(raw: np.ndarray) -> np.ndarray:
    """(N,) the largest intensity against the population neutral over units that are not
    experimental: how far a frame is from any resting face."""
    ref = actions.population_neutral()
    validated = _validated_index()
    change = (np.asarray(raw, np.float64) - ref.raw)[:, validated]
    return (np.maximum(change, 0.0) / ref.thresholds[validated]).max(1)


def looks_neutral(raw: np.ndarray, perceived_neutral: np.ndarray | None, rule: BaselineRule) -> np.ndarray:
    """(N,) bool: frames that may build a track's neutral. ``raw``: (N, K) action-unit measures;
    ``perceived_neutral``: (N,) perceived neutral share, NaN (or None) where the model did not run."""
    raw = np.asarray(raw, np.float64)
    still = np.isfinite(raw).all(1) & (rest_intensity(raw) <= rule.max_rest_intensity)
    if perceived_neutral is None:
        return still
    share = np.asarray(perceived_neutral, np.float64)
    return still & (np.isnan(share) | (1.0 - share <= rule.max_non_neutral))


def observe(track: TrackNeutral, raw: np.ndarray, rule: BaselineRule) -> None:
    """Add one neutral-looking frame's measures (K,) to the track; its neutral becomes the median
    of its window once ``min_frames`` frames are in, and is refreshed every ``refresh`` frames."""
    track.frames[track.added % rule.window] = raw
    track.added += 1
    due = track.added - track.built_from >= rule.refresh or (track.built_from == 0 and track.added >= rule.min_frames)
    if track.added >= rule.min_frames and due:
        track.neutral = np.nanmedian(track.frames[:min(track.added, rule.window)], axis=0)
        track.built_from = track.added


class TrackBaselines:
    """Neutral estimates of every live track, in plain data (``state``: track id -> TrackNeutral)."""

    def __init__(self, rule: BaselineRule = BaselineRule()):
        self.rule = rule
        self.state: dict[int, TrackNeutral] = {}

    def baselines(self, tracks: list[int]) -> tuple[np.ndarray, list[str], list[int]]:
        """For the faces of one frame: neutral measures (N, K) to pass to ``actions.analyse``, the
        kind of each ("population" / "track") and how many frames built it (0: population)."""
        population = actions.population_neutral().raw
        rows = [self.state.get(t) for t in tracks]
        neutral = np.stack([population if r is None else r.neutral for r in rows] or [population])[:len(rows)]
        return neutral, [POPULATION if r is None else r.kind for r in rows], [0 if r is None else r.built_from for r in rows]

    def update(self, tracks: list[int], raw: np.ndarray, perceived_neutral: np.ndarray | None,
               reliable: np.ndarray) -> None:
        """After a frame: add each reliable, neutral-looking face to its track's estimate."""
        if not tracks:
            return
        keep = np.asarray(reliable, bool) & looks_neutral(raw, perceived_neutral, self.rule)
        for t, row, k in zip(tracks, np.asarray(raw, np.float64), keep):
            if k:
                observe(self.state.setdefault(t, TrackNeutral.empty(self.rule)), row, self.rule)

    def forget(self, live: set[int]) -> None:
        """Drop the estimates of tracks not in ``live`` (track ids that ended)."""
        for t in [t for t in self.state if t not in live]:
            del self.state[t]

    def to_arrays(self) -> dict[str, dict]:
        """Every track's state as plain data (track id as text -> :meth:`TrackNeutral.to_arrays`), for a checkpoint."""
        return {str(t): r.to_arrays() for t, r in self.state.items()}

    def load_arrays(self, data: dict) -> None:
        """Replace the state with one saved by :meth:`to_arrays`."""
        self.state = {int(t): TrackNeutral.from_arrays(r) for t, r in data.items()}
