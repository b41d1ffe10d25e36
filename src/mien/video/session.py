"""Video mode's frame-to-frame state: face tracks, smoothing over time, per-track baselines.

``VideoSession`` is what ``Analyzer(Options(mode=Mode.VIDEO))`` runs on frames, a batch at a time,
in three passes:

1. frame by frame, in time order: track the faces (in small frames enlarged as small images are,
   ``mien.small_faces``), smooth their meshes, decide which faces the perceived model runs on, and
   cut from the frame's pixels what needs them (``FaceMeasurer.cut``);
2. the batch's faces measured together (``FaceMeasurer.measure``: pose, quality, raw action-unit
   measures, the perceived model's logits);
3. frame by frame again, what depends on earlier frames: each track's action-unit baseline and its
   update, perceived smoothing; then the action units and perceived labels of the batch at once.

A frame's results do not depend on the batch it came in. All state is in ``SessionState``, plain
data (numbers, arrays, lists and dicts of them), so that a run can be checkpointed and resumed
between batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .. import actions
from ..faces import Faces
from ..landmarks import Meshes
from ..measure import FaceMeasurer, FaceMeasures, PixelCuts, measured_faces, shares_of
from ..small_faces import enlarge_small_image
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


@dataclass(frozen=True)
class TrackedFrame:
    """A frame after the first pass: its time; its faces' track ids, boxes, detector scores and
    (smoothed) meshes; the faces the perceived model runs on (None: all); what was cut from its
    pixels; and the tracks that may still go on (on this frame, or lost but possibly picked up again)."""

    time_s: float
    ids: list[int]
    boxes: np.ndarray
    scores: np.ndarray
    meshes: Meshes
    perceive: np.ndarray | None
    cuts: PixelCuts | None
    going_on: set[int]


class VideoSession:
    """Analysis of one video's frames in time order, given the analyzer's models and its measurer."""

    def __init__(self, detector, mesher, measurer: FaceMeasurer, options):
        self.options = options
        self._measurer = measurer
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

    def process(self, frames: list[tuple[np.ndarray, float, int]]) -> list[Faces]:
        """The faces of ``frames`` (RGB pixels, time in seconds, index), the next ones of the video in
        time order: tracked, smoothed, against each track's baseline, with ``track_ids``,
        ``au_baseline``, ``au_baseline_frames`` and ``track_scores`` set; the same however the
        video's frames are split into calls."""
        # each track's latest perceived sample, as the perceived filters will hold it once the batch's earlier frames are smoothed
        last_sampled = {t: f.time_s for t, f in self.state.perceived_smoother.tracks.items()}
        tracked = [self._track(rgb, time_s, index, last_sampled) for rgb, time_s, index in frames]
        seen = [f for f in tracked if f.ids]
        measures = self._measurer.measure([f.meshes for f in seen], [f.cuts for f in seen]) if seen else None
        faces = self._follow_tracks(tracked, measures)
        counts = [len(f.ids) for f in seen]
        starts = np.cumsum([0] + counts)
        split = iter([faces] if len(seen) == 1 else [faces[a:b] for a, b in zip(starts[:-1], starts[1:])])
        return [next(split) if f.ids else _no_faces() for f in tracked]

    def _track(self, rgb: np.ndarray, time_s: float, index: int, last_sampled: dict[int, float]) -> TrackedFrame:
        """First pass, on one frame."""
        st = self.state
        st.frames_seen = index + 1
        st.last_time_s = time_s
        seen, enlargement = enlarge_small_image(rgb)
        tracked = self._tracker.step(seen, time_s)
        if not enlargement.identity:
            tracked = replace(tracked, boxes=enlargement.boxes_to_original(tracked.boxes),
                              meshes=enlargement.meshes_to_original(tracked.meshes))
        ids = [int(t) for t in tracked.track_ids]
        # a lost track may still be picked up again (see FaceTracker): its state waits until then
        going_on = set(ids) | {t.id for t in st.tracker.lost}
        st.smoother.forget(going_on)
        for t in [t for t in last_sampled if t not in going_on]:
            del last_sampled[t]
        meshes = tracked.meshes
        if not ids:
            return TrackedFrame(time_s, ids, tracked.boxes, tracked.scores, meshes, None, None, going_on)
        if self.options.smooth:
            sizes = (tracked.boxes[:, 2:] - tracked.boxes[:, :2]).mean(1)
            points = np.stack([st.smoother(t, time_s, p, 1.0 / max(float(s), 1.0))
                               for t, p, s in zip(ids, meshes.points, sizes)]).astype(np.float32)
            meshes = Meshes(points, meshes.presence, meshes.crops)
        perceive = self._perceived_due(ids, time_s, last_sampled)
        return TrackedFrame(time_s, ids, tracked.boxes, tracked.scores, meshes, perceive,
                            self._measurer.cut(rgb, meshes, perceive), going_on)

    def _follow_tracks(self, tracked: list[TrackedFrame], measures: FaceMeasures | None) -> Faces | None:
        """Third pass: each frame's track baselines and perceived smoothing, as of that frame, and
        their updates; then the faces of the whole batch (None when it has none)."""
        st, o, m = self.state, self.options, self._measurer
        smoothing = o.smooth and m.perceiver is not None
        perceived = None if measures is None or m.perceiver is None or smoothing else m.perceived(measures)
        values = m.perceived_values(measures) if smoothing and measures is not None else None
        baselines, kinds, built, scores, smoothed = [], [], [], [], []
        start = 0
        for frame in tracked:
            self._forget_ended(frame.going_on)
            if not frame.ids:
                continue
            rows = slice(start, start + len(frame.ids))
            start = rows.stop
            neutral, kind, count = self._baselines(frame.ids)
            baselines.append(neutral)
            kinds += kind
            built += count
            for t, score in zip(frame.ids, frame.scores.tolist()):
                if np.isfinite(score):
                    st.track_scores[t] = score
            scores += [st.track_scores[t] for t in frame.ids]
            neutral_share = None if perceived is None else perceived.probabilities[rows, 0]
            if smoothing:
                smoothed.append(self._smooth_perceived(frame, values[rows]))
                neutral_share = shares_of(smoothed[-1])[:, 0].astype(np.float32)  # as ``Perceived`` reports it
            if measures.raw_units is not None and o.au_baseline == "track":
                self._au_baselines.update(frame.ids, measures.raw_units[rows], neutral_share, measures.quality.reliable[rows])
        if measures is None:
            return None
        units = None
        if measures.raw_units is not None:
            units = actions.analyse_measures(measures.raw_units, None if baselines[0] is None else np.concatenate(baselines))
        if smoothing:
            perceived = m.perceived_from_values(np.concatenate(smoothed), measures.quality.reliable)
        faces = measured_faces(np.concatenate([f.boxes for f in tracked]), np.concatenate([f.scores for f in tracked]),
                               measures, units, perceived)
        return replace(faces, track_ids=np.array([t for f in tracked for t in f.ids], np.int64), au_baseline=tuple(kinds),
                       au_baseline_frames=np.asarray(built, np.int64), track_scores=np.array(scores, np.float32))

    def _forget_ended(self, going_on: set[int]) -> None:
        st = self.state
        st.perceived_smoother.forget(going_on)
        self._au_baselines.forget(going_on)
        for t in [t for t in st.track_scores if t not in going_on]:
            del st.track_scores[t]

    def _smooth_perceived(self, frame: TrackedFrame, values: np.ndarray) -> np.ndarray:
        """Each track's perceived values (shares and energy score) of ``frame`` smoothed over time; a
        track whose values were not measured on this frame keeps its filter's last value."""
        fresh = frame.perceive if frame.perceive is not None else np.ones(len(frame.ids), bool)
        filters = self.state.perceived_smoother
        return np.stack([filters(t, frame.time_s, v) if f else filters.tracks[t].value
                         for t, v, f in zip(frame.ids, values, fresh)])

    def _perceived_due(self, ids: list[int], time_s: float, last_sampled: dict[int, float]) -> np.ndarray | None:
        """Which tracks' faces the perceived-expression model runs on this frame (None: all); those
        get ``time_s`` as their latest sample."""
        hz = self.options.perceived_hz
        if not self.options.smooth or hz is None or self._measurer.perceiver is None:
            return None
        due = np.array([t not in last_sampled or time_s - last_sampled[t] >= SAMPLE_TOLERANCE / hz for t in ids], bool)
        last_sampled.update((t, time_s) for t, d in zip(ids, due) if d)
        return due

    def _baselines(self, ids: list[int]):
        if self.options.au_baseline != "track" or not self.options.action_units:
            return None, ["population"] * len(ids), [0] * len(ids)
        return self._au_baselines.baselines(ids)


def _no_faces() -> Faces:
    """A video frame without faces."""
    return Faces(track_ids=np.zeros(0, np.int64), au_baseline=(), au_baseline_frames=np.zeros(0, np.int64),
                 track_scores=np.zeros(0, np.float32))
