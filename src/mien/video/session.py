"""Video mode's frame-to-frame state: face tracks, smoothing over time, per-track baselines.

``VideoSession`` is what ``Analyzer(Options(mode=Mode.VIDEO))`` runs for each frame. It keeps all
of its state in ``SessionState``, plain data (numbers, arrays, lists and dicts of them), so that a
run can be checkpointed and resumed.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from .. import actions
from ..faces import Faces
from ..landmarks import Meshes
from .smoothing import OneEuroParams, OneEuroSmoother
from .tracking import FaceTracker, TrackState

BASELINE_REFRESH = 15  # reliable frames between recomputations of a track's neutral (about 0.5 s)
# Perceived distributions: a plain low-pass at 1.5 Hz (beta 0): label shares that flicker from frame
# to frame are noise of the model, not changes of the face.
PERCEIVED_SMOOTHING = OneEuroParams(min_cutoff=1.5, beta=0.0, derivative_cutoff=1.0)
# A sample is due once this share of the sampling interval has passed, so that 30 frames/s at
# 10 Hz samples every 3rd frame despite rounding in the timestamps.
SAMPLE_TOLERANCE = 0.9


@dataclass
class SessionState:
    """Everything video mode remembers between frames (plain data, for checkpoints)."""

    tracker: TrackState = field(default_factory=TrackState)
    smoother: OneEuroSmoother = field(default_factory=OneEuroSmoother)
    perceived_smoother: OneEuroSmoother = field(default_factory=lambda: OneEuroSmoother(PERCEIVED_SMOOTHING))
    baselines: dict = field(default_factory=dict)  # track -> deque of raw AU measures (reliable frames)
    baseline_added: dict = field(default_factory=dict)  # track -> reliable frames added so far
    baseline_cache: dict = field(default_factory=dict)  # track -> (median, baseline_added when computed)
    frames_seen: int = 0
    last_time_s: float | None = None


class VideoSession:
    """Frame-by-frame analysis of one video, given the analyzer's models and its measuring step."""

    def __init__(self, detector, mesher, measure: Callable[..., Faces], perceiver, options):
        self.options = options
        self._measure = measure
        self._perceiver = perceiver
        self._tracker = FaceTracker(detector, mesher, options.detect_every, options.min_presence, options.max_faces)
        self.state = SessionState(tracker=self._tracker.state)

    def reset(self) -> None:
        """Forget all tracks: the next frame starts a new video."""
        self.restore(SessionState())

    def restore(self, state: SessionState) -> None:
        """Continue from a saved ``state``."""
        self.state = state
        self._tracker.state = state.tracker

    def process(self, rgb: np.ndarray, time_s: float, index: int) -> Faces:
        """The faces of frame ``index`` at ``time_s``: tracked, smoothed, against each track's baseline,
        with ``track_ids`` and ``au_baseline`` set."""
        st = self.state
        st.frames_seen = index + 1
        st.last_time_s = time_s
        tracked = self._tracker.step(rgb, time_s)
        ids = [int(t) for t in tracked.track_ids]
        # a lost track may still be picked up again (see FaceTracker): its state waits until then
        self._forget_ended(set(ids) | {t.id for t in st.tracker.lost})
        if not ids:
            return Faces(track_ids=np.zeros(0, np.int64), au_baseline=())
        meshes = tracked.meshes
        if self.options.smooth:
            sizes = (tracked.boxes[:, 2:] - tracked.boxes[:, :2]).mean(1)
            points = np.stack([st.smoother(t, time_s, p, 1.0 / max(float(s), 1.0))
                               for t, p, s in zip(ids, meshes.points, sizes)]).astype(np.float32)
            meshes = Meshes(points, meshes.presence, meshes.crops)
        baseline, kinds = self._baselines(ids)
        due = self._perceived_due(ids, time_s)
        faces = self._measure(rgb, tracked.boxes, tracked.scores, meshes, baseline, due)
        if self.options.smooth and faces.perceived is not None:
            fresh = due if due is not None else np.ones(len(ids), bool)
            filters = st.perceived_smoother
            smoothed = np.stack([filters(t, time_s, p) if f else filters.tracks[t].value
                                 for t, p, f in zip(ids, faces.perceived.probabilities, fresh)])
            faces = replace(faces, perceived=self._perceiver.from_probabilities(
                smoothed / smoothed.sum(1, keepdims=True), faces.quality.reliable))
        if faces.actions is not None:
            for i, t in enumerate(ids):
                if faces.quality.reliable[i] and np.isfinite(faces.actions.raw[i]).all():
                    st.baselines.setdefault(t, deque(maxlen=self.options.baseline_window)).append(faces.actions.raw[i].astype(np.float32))
                    st.baseline_added[t] = st.baseline_added.get(t, 0) + 1
        return replace(faces, track_ids=np.asarray(ids, np.int64), au_baseline=tuple(kinds))

    def _forget_ended(self, live: set[int]) -> None:
        st = self.state
        st.smoother.forget(live)
        st.perceived_smoother.forget(live)
        for store in (st.baselines, st.baseline_added, st.baseline_cache):
            for t in [t for t in store if t not in live]:
                del store[t]

    def _perceived_due(self, ids: list[int], time_s: float) -> np.ndarray | None:
        """Which tracks' faces the perceived-expression model runs on this frame (None: all)."""
        hz = self.options.perceived_hz
        if not self.options.smooth or hz is None or self._perceiver is None:
            return None
        last = self.state.perceived_smoother.tracks
        return np.array([t not in last or time_s - last[t].time_s >= SAMPLE_TOLERANCE / hz for t in ids], bool)

    def _baselines(self, ids: list[int]):
        if self.options.au_baseline != "track" or not self.options.action_units:
            return None, ["population"] * len(ids)
        neutral = actions.population_neutral().raw
        rows, kinds = [], []
        for t in ids:
            history = self.state.baselines.get(t)
            if history is not None and len(history) >= self.options.baseline_min_frames:
                rows.append(self._track_median(t, history))
                kinds.append("track")
            else:
                rows.append(neutral)
                kinds.append("population")
        return np.stack(rows), kinds

    def _track_median(self, track: int, history) -> np.ndarray:
        """The track's median, recomputed after every BASELINE_REFRESH new reliable frames: a full
        window's median costs about 5 ms, too much for every frame."""
        added = self.state.baseline_added[track]
        cached = self.state.baseline_cache.get(track)
        if cached is None or added - cached[1] >= BASELINE_REFRESH:
            cached = (np.median(np.stack(history), axis=0), added)
            self.state.baseline_cache[track] = cached
        return cached[0]
