"""Video mode's frame-to-frame state: face tracks, smoothing over time, per-track baselines.

``VideoSession`` is what ``Analyzer(Options(mode=Mode.VIDEO))`` runs for each frame. It keeps all
of its state in ``SessionState``, plain data (numbers, arrays, lists and dicts of them), so that a
run can be checkpointed and resumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..faces import Faces
from ..landmarks import Meshes
from .baseline import BaselineRule, TrackBaselines
from .smoothing import OneEuroParams, OneEuroSmoother
from .tracking import FaceTracker, TrackState

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
    au_baselines: dict = field(default_factory=dict)  # track -> TrackNeutral (arrays and ints; video/baseline.py)
    track_scores: dict = field(default_factory=dict)  # track -> detector score of its latest detection
    frames_seen: int = 0
    last_time_s: float | None = None


class VideoSession:
    """Frame-by-frame analysis of one video, given the analyzer's models and its measuring step."""

    def __init__(self, detector, mesher, measure: Callable[..., Faces], perceiver, options):
        self.options = options
        self._measure = measure
        self._perceiver = perceiver
        self._tracker = FaceTracker(detector, mesher, options.detect_every, options.min_presence, options.max_faces)
        self._au_baselines = TrackBaselines(BaselineRule(options.baseline_min_frames, options.baseline_window))
        self.state = SessionState(tracker=self._tracker.state, au_baselines=self._au_baselines.state)

    def reset(self) -> None:
        """Forget all tracks: the next frame starts a new video."""
        self.restore(SessionState())

    def restore(self, state: SessionState) -> None:
        """Continue from a saved ``state``."""
        self.state = state
        self._tracker.state = state.tracker
        self._au_baselines.state = state.au_baselines

    def process(self, rgb: np.ndarray, time_s: float, index: int) -> Faces:
        """The faces of frame ``index`` at ``time_s``: tracked, smoothed, against each track's baseline,
        with ``track_ids``, ``au_baseline``, ``au_baseline_frames`` and ``track_scores`` set."""
        st = self.state
        st.frames_seen = index + 1
        st.last_time_s = time_s
        tracked = self._tracker.step(rgb, time_s)
        ids = [int(t) for t in tracked.track_ids]
        # a lost track may still be picked up again (see FaceTracker): its state waits until then
        self._forget_ended(set(ids) | {t.id for t in st.tracker.lost})
        if not ids:
            return Faces(track_ids=np.zeros(0, np.int64), au_baseline=(), au_baseline_frames=np.zeros(0, np.int64),
                         track_scores=np.zeros(0, np.float32))
        meshes = tracked.meshes
        if self.options.smooth:
            sizes = (tracked.boxes[:, 2:] - tracked.boxes[:, :2]).mean(1)
            points = np.stack([st.smoother(t, time_s, p, 1.0 / max(float(s), 1.0))
                               for t, p, s in zip(ids, meshes.points, sizes)]).astype(np.float32)
            meshes = Meshes(points, meshes.presence, meshes.crops)
        baseline, kinds, built = self._baselines(ids)
        due = self._perceived_due(ids, time_s)
        smooth = self._perceived_smoothing(ids, time_s, due) if self.options.smooth else None
        faces = self._measure(rgb, tracked.boxes, tracked.scores, meshes, baseline, due, smooth)
        for t, score in zip(ids, tracked.scores.tolist()):
            if np.isfinite(score):
                st.track_scores[t] = score
        if faces.actions is not None and self.options.au_baseline == "track":
            neutral_share = None if faces.perceived is None else faces.perceived.probabilities[:, 0]
            self._au_baselines.update(ids, faces.actions.raw, neutral_share, faces.quality.reliable)
        return replace(faces, track_ids=np.asarray(ids, np.int64), au_baseline=tuple(kinds),
                       au_baseline_frames=np.asarray(built, np.int64),
                       track_scores=np.array([st.track_scores[t] for t in ids], np.float32))

    def _forget_ended(self, live: set[int]) -> None:
        st = self.state
        st.smoother.forget(live)
        st.perceived_smoother.forget(live)
        self._au_baselines.forget(live)
        for t in [t for t in st.track_scores if t not in live]:
            del st.track_scores[t]

    def _perceived_smoothing(self, ids: list[int], time_s: float, due: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
        """Smooths each track's perceived values (shares and energy score) over time; a track whose
        values were not measured on this frame (not ``due``) keeps its filter's last value."""
        fresh = due if due is not None else np.ones(len(ids), bool)
        filters = self.state.perceived_smoother

        def smooth(values: np.ndarray) -> np.ndarray:
            return np.stack([filters(t, time_s, v) if f else filters.tracks[t].value for t, v, f in zip(ids, values, fresh)])
        return smooth

    def _perceived_due(self, ids: list[int], time_s: float) -> np.ndarray | None:
        """Which tracks' faces the perceived-expression model runs on this frame (None: all)."""
        hz = self.options.perceived_hz
        if not self.options.smooth or hz is None or self._perceiver is None:
            return None
        last = self.state.perceived_smoother.tracks
        return np.array([t not in last or time_s - last[t].time_s >= SAMPLE_TOLERANCE / hz for t in ids], bool)

    def _baselines(self, ids: list[int]):
        if self.options.au_baseline != "track" or not self.options.action_units:
            return None, ["population"] * len(ids), [0] * len(ids)
        return self._au_baselines.baselines(ids)
