"""Temporal smoothing per face track: the One Euro filter (Casiez et al., CHI 2012).

A low-pass filter whose cutoff rises with speed: still faces lose their jitter, fast movements
keep their timing. As in MediaPipe's face-landmark smoothing, the speed is measured relative to
the face's size (``value_scale``), so the filter behaves the same for near and far faces.
State is kept per track id and is plain data, so a run can be checkpointed and resumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """The One Euro filter's settings: cutoff at rest, how fast it rises with speed, the speed's own cutoff."""

    min_cutoff: float = 0.05  # Hz, at rest (MediaPipe's face-landmark setting)
    beta: float = 80.0  # how fast the cutoff rises with speed (per face-size per second)
    derivative_cutoff: float = 1.0  # Hz, for the speed estimate


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


@dataclass
class _TrackFilter:
    time_s: float
    value: np.ndarray
    derivative: np.ndarray


@dataclass
class OneEuroSmoother:
    """Smooths arrays (any shape, fixed per smoother) of several tracks over time."""

    params: OneEuroParams = field(default_factory=OneEuroParams)
    tracks: dict[int, _TrackFilter] = field(default_factory=dict)

    def __call__(self, track: int, time_s: float, value: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        value = np.asarray(value, np.float64)
        state = self.tracks.get(track)
        if state is None or time_s <= state.time_s:
            self.tracks[track] = _TrackFilter(time_s, value.copy(), np.zeros_like(value))
            return value
        dt = time_s - state.time_s
        p = self.params
        derivative = (value - state.value) * value_scale / dt
        a_d = _alpha(p.derivative_cutoff, dt)
        derivative = a_d * derivative + (1 - a_d) * state.derivative
        cutoff = p.min_cutoff + p.beta * np.abs(derivative)
        a = _alpha(cutoff, dt)
        smoothed = a * value + (1 - a) * state.value
        self.tracks[track] = _TrackFilter(time_s, smoothed, derivative)
        return smoothed

    def forget(self, keep: set[int]) -> None:
        """Drop the state of tracks that ended."""
        for track in [t for t in self.tracks if t not in keep]:
            del self.tracks[track]
