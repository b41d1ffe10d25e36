"""A video, start to finish: tracking, smoothing, per-track baselines, checkpoints, outputs.

``VideoSession`` turns frames into results and keeps all of its state in plain data, so a run
can be checkpointed. ``run_video`` streams a file through a session, writes the per-frame rows
in parts next to the output together with a checkpoint of the session, and at the end joins
the parts into the final tables (per frame, per track, action-unit episodes), atomically. A run
stopped by Ctrl-C or killed resumes from its last checkpoint when the same command is run
again, and ends with the same output as a run that was never stopped.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import signal
import threading
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import actions
from ..analyzer import Analyzer
from ..landmarks import Meshes
from ..results import ImageResult, atomic_path, to_frame, write_table, write_tables
from .decode import Frame, frames, probe, sequence_files
from .smoothing import OneEuroParams, OneEuroSmoother
from .tracking import FaceTracker

STATE_VERSION = 4
BASELINE_REFRESH = 15  # reliable frames between recomputations of a track's neutral (about 0.5 s)
# Perceived distributions: a plain low-pass at 1.5 Hz (beta 0): label shares that flicker from frame
# to frame are noise of the model, not changes of the face.
PERCEIVED_SMOOTHING = OneEuroParams(min_cutoff=1.5, beta=0.0, derivative_cutoff=1.0)
# A sample is due once this share of the sampling interval has passed, so that 30 frames/s at
# 10 Hz samples every 3rd frame despite rounding in the timestamps.
SAMPLE_TOLERANCE = 0.9


@dataclass(frozen=True)
class VideoOptions:
    detect_every: int = 10
    stride: int = 1
    target_fps: float | None = None
    start_s: float = 0.0
    end_s: float | None = None
    smooth: bool = True
    # With smoothing, the perceived-expression model runs on each track at most this often (Hz);
    # the 1.5 Hz low-pass needs no more, and rows in between carry the track's filtered value.
    # None: every frame. Without smoothing it always runs on every frame.
    perceived_hz: float | None = 10.0
    track_baseline: bool = True
    baseline_min_frames: int = 15  # reliable frames a track needs before its own baseline is used
    baseline_window: int = 3600  # the baseline is the median over the track's last this-many reliable frames
    sequence_fps: float = 30.0  # frame rate given to a folder of images read as a video
    thumbnails_every_s: float = 2.0
    max_thumbnails: int = 12

    def __post_init__(self):
        if self.detect_every < 1:
            raise ValueError(f"detect_every (--detect-every) must be at least 1, not {self.detect_every}")
        if self.perceived_hz is not None and not self.perceived_hz > 0:
            raise ValueError(f"perceived_hz (--perceived-hz) must be positive, not {self.perceived_hz}")
        if not self.sequence_fps > 0:
            raise ValueError(f"sequence_fps (--sequence) must be positive, not {self.sequence_fps}")


@dataclass
class SessionState:
    tracker: object = None
    smoother: OneEuroSmoother = field(default_factory=OneEuroSmoother)
    perceived_smoother: OneEuroSmoother = field(default_factory=lambda: OneEuroSmoother(PERCEIVED_SMOOTHING))
    baselines: dict = field(default_factory=dict)  # track -> deque of raw AU measures (reliable frames)
    baseline_added: dict = field(default_factory=dict)  # track -> reliable frames added so far
    baseline_cache: dict = field(default_factory=dict)  # track -> (median, baseline_added when computed)
    thumbnails: dict = field(default_factory=dict)  # track -> list of (time_s, jpeg bytes)
    last_index: int = -1


class VideoSession:
    """Frame-by-frame analysis of one video; ``state`` can be pickled and restored."""

    def __init__(self, analyzer: Analyzer, options: VideoOptions = VideoOptions()):
        self.analyzer = analyzer
        self.options = options
        o = analyzer.options
        self.tracker = FaceTracker(analyzer.detector, analyzer.mesher, options.detect_every, o.min_presence, o.max_faces)
        self.state = SessionState(tracker=self.tracker.state)

    def restore(self, state: SessionState) -> None:
        self.state = state
        self.tracker.state = state.tracker

    def process(self, frame: Frame, source: str) -> ImageResult:
        st = self.state
        st.last_index = frame.index
        if frame.rgb is None:
            return ImageResult.failed(source, frame.error, frame.index, frame.time_s)
        tracked = self.tracker.step(frame.rgb, frame.time_s)
        st.tracker = self.tracker.state
        ids = [int(t) for t in tracked.track_ids]
        # a lost track may still be picked up again (see FaceTracker): its state waits until then
        self._forget_ended(set(ids) | {t.id for t in self.tracker.state.lost})
        if not ids:
            h, w = frame.rgb.shape[:2]
            return ImageResult(source, frame.index, "no_face", "", w, h, (), time_s=frame.time_s)
        meshes = tracked.meshes
        if self.options.smooth:
            sizes = (tracked.boxes[:, 2:] - tracked.boxes[:, :2]).mean(1)
            points = np.stack([st.smoother(t, frame.time_s, p, 1.0 / max(float(s), 1.0))
                               for t, p, s in zip(ids, meshes.points, sizes)]).astype(np.float32)
            meshes = Meshes(points, meshes.presence, meshes.crops)
        baseline, kinds = self._baselines(ids)
        due = self._perceived_due(ids, frame.time_s)
        batch = self.analyzer.measure_meshes(frame.rgb, tracked.boxes, tracked.scores, meshes, baseline, due)
        if self.options.smooth and batch.perceived is not None:
            fresh = due if due is not None else np.ones(len(ids), bool)
            filters = st.perceived_smoother
            smoothed = np.stack([filters(t, frame.time_s, p) if f else filters.tracks[t].value
                                 for t, p, f in zip(ids, batch.perceived.probabilities, fresh)])
            batch = replace(batch, perceived=self.analyzer.perceiver.from_probabilities(
                smoothed / smoothed.sum(1, keepdims=True), batch.quality.reliable))
        if batch.actions is not None:
            for i, t in enumerate(ids):
                if batch.quality.reliable[i] and np.isfinite(batch.actions.raw[i]).all():
                    st.baselines.setdefault(t, deque(maxlen=self.options.baseline_window)).append(batch.actions.raw[i].astype(np.float32))
                    st.baseline_added[t] = st.baseline_added.get(t, 0) + 1
        self._keep_thumbnails(ids, meshes, frame.time_s)
        extras = [{"track": t, "time_s": frame.time_s, "au_baseline": k} for t, k in zip(ids, kinds)]
        return self.analyzer.result(frame.rgb, batch, source, frame.index, extras)

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
        if not self.options.smooth or hz is None or self.analyzer.perceiver is None:
            return None
        last = self.state.perceived_smoother.tracks
        return np.array([t not in last or time_s - last[t].time_s >= SAMPLE_TOLERANCE / hz for t in ids], bool)

    def _baselines(self, ids: list[int]):
        if not self.options.track_baseline or not ids or not self.analyzer.options.action_units:
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

    def _keep_thumbnails(self, ids: list[int], meshes: Meshes, time_s: float) -> None:
        for t, crop in zip(ids, meshes.crops):
            kept = self.state.thumbnails.setdefault(t, [])
            if len(kept) >= self.options.max_thumbnails or (kept and time_s - kept[-1][0] < self.options.thumbnails_every_s):
                continue
            small = cv2.resize(crop, (72, 72), interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
            if ok:
                kept.append((time_s, data.tobytes()))


def analyze_frames(path: str | Path, analyzer: Analyzer, options: VideoOptions = VideoOptions()):
    """Yield one ImageResult per kept frame of a video, in memory (no checkpoints or files)."""
    session = VideoSession(analyzer, options)
    for frame in frames(path, options.stride, options.target_fps, options.start_s, options.end_s, options.sequence_fps):
        yield session.process(frame, str(path))


# ------------------------------------------------------------------------------------- summaries
EPISODE_GAP_S = 0.1  # gaps up to this long (missed or unreliable frames) do not end an episode
BLINK_MAX_S = 0.5  # an eyes-closed episode this short is reported as AU45 (blink)


def _by_track(table: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, slice]]]:
    """The face rows sorted by track and time, and each track's slice of them."""
    faces = table[table["track"].notna()].sort_values(["track", "time_s"], kind="stable")
    tracks = faces["track"].to_numpy(np.int64)
    starts = np.flatnonzero(np.r_[True, np.diff(tracks) != 0]) if len(tracks) else np.zeros(0, np.intp)
    ends = np.r_[starts[1:], len(tracks)]
    return faces, [(int(tracks[a]), slice(a, b)) for a, b in zip(starts, ends)]


def action_unit_episodes(table: pd.DataFrame) -> pd.DataFrame:
    """Episodes per track and unit column: onset, apex, offset (seconds), duration, peak intensity.

    An episode is a run of frames where the unit is present, joining gaps of up to EPISODE_GAP_S.
    Eyes-closed episodes no longer than BLINK_MAX_S are labelled ``au45_blink``."""
    faces, tracks = _by_track(table)
    units = [c for c in actions.columns() if f"{c}_present" in faces]
    times = faces["time_s"].to_numpy(float)
    values = faces[units].to_numpy(float, na_value=np.nan)
    present = faces[[f"{c}_present" for c in units]].fillna(False).to_numpy(bool)
    rows = []
    for track, rows_of in tracks:
        t = times[rows_of]
        for j, column in enumerate(units):
            idx = np.flatnonzero(present[rows_of, j])
            if not len(idx):
                continue
            v = values[rows_of, j]
            breaks = np.flatnonzero(np.diff(t[idx]) > EPISODE_GAP_S)
            for run in np.split(idx, breaks + 1):
                apex = run[0] + int(np.nanargmax(v[run[0] : run[-1] + 1]))
                onset, offset = t[run[0]], t[run[-1]]
                unit = column
                if column.startswith("au43_") and offset - onset <= BLINK_MAX_S:
                    unit = "au45_blink" + column[len("au43_eyes_closed"):]
                rows.append(dict(track=track, unit=unit, onset_s=onset, apex_s=t[apex], offset_s=offset,
                                 duration_s=offset - onset, frames=len(run), peak_intensity=float(v[apex])))
    columns = ["track", "unit", "onset_s", "apex_s", "offset_s", "duration_s", "frames", "peak_intensity"]
    return pd.DataFrame(rows, columns=columns).sort_values(["track", "onset_s", "unit"], ignore_index=True)


def track_summary(table: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    faces, tracks = _by_track(table)
    shares = [f"{c}_present" for c in actions.columns() if f"{c}_present" in faces]
    present = faces[shares].astype(float).to_numpy(float, na_value=np.nan)
    reliable = faces["reliable"].astype(float).to_numpy(float, na_value=np.nan)
    episode_counts = episodes["track"].value_counts()
    rows = []
    for track, rows_of in tracks:
        g = faces.iloc[rows_of]
        row = dict(track=track, first_s=g["time_s"].iloc[0], last_s=g["time_s"].iloc[-1], frames=len(g),
                   reliable_share=_mean(reliable[rows_of]),
                   median_yaw=g["yaw"].median(), median_pitch=g["pitch"].median(), median_roll=g["roll"].median(),
                   median_iod_px=g["iod_px"].median(), episodes=int(episode_counts.get(track, 0)))
        row.update({f"{column}_share": _mean(present[rows_of, j]) for j, column in enumerate(shares)})
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(values: np.ndarray) -> float:
    """Mean of the known values; NaN when there are none (as pandas' mean)."""
    known = values[np.isfinite(values)]
    return float(known.mean()) if len(known) else float("nan")


# --------------------------------------------------------------------------------------- running
class RunInterrupted(RuntimeError):
    """The run was stopped (Ctrl-C); its checkpoint is on disk."""


@dataclass(frozen=True)
class VideoRunResult:
    frames_table: Path
    tracks_table: Path
    episodes_table: Path
    frames: int
    faces: int
    failed_frames: int
    resumed_from: int  # frame index the run resumed after, -1 for a fresh run


def companion_path(out: Path, name: str) -> Path:
    return out.with_name(f"{out.stem}.{name}{out.suffix}")


def _fingerprint(path: Path, analyzer: Analyzer, options: VideoOptions) -> str:
    """Changes when the input, the options or the checkpoint format change (a folder: any of its images)."""
    files = sequence_files(path) if path.is_dir() else [path]
    stamps = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    opts = {k: str(v) for k, v in asdict(analyzer.options).items()}
    payload = json.dumps([str(path.resolve()), stamps, opts, asdict(options), STATE_VERSION], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _read_checkpoint(path: Path) -> dict:
    """The saved checkpoint, or {} when it cannot be used (damaged, or from another mien version
    whose classes moved): the run then starts afresh, as for changed options."""
    try:
        saved = pickle.loads(path.read_bytes())
    except Exception:  # unpickling can raise almost anything on a damaged or foreign file
        return {}
    return saved if isinstance(saved, dict) else {}


def run_video(path: str | Path, out: str | Path, analyzer: Analyzer, options: VideoOptions = VideoOptions(),
              checkpoint_every: int = 1000, landmarks: bool = False, on_frame=None, on_error=None,
              report: str | Path | None = None, annotated_video: str | Path | None = None) -> VideoRunResult:
    """Analyse a video into ``out`` (per frame), ``<out>.tracks`` and ``<out>.episodes``."""
    path, out = Path(path), Path(out)
    info = probe(path, options.sequence_fps)
    work = out.with_name(f".{out.name}.mien-partial")
    fingerprint = _fingerprint(path, analyzer, options)
    session = VideoSession(analyzer, options)
    parts: list[str] = []
    resumed_from = -1
    state_file = work / "checkpoint.pkl"
    if state_file.exists():
        saved = _read_checkpoint(state_file)
        if saved.get("fingerprint") == fingerprint:
            session.restore(saved["session"])
            parts = saved["parts"]
            resumed_from = session.state.last_index
    if resumed_from < 0 and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for stray in work.glob("part-*.parquet"):
        if stray.name not in parts:
            stray.unlink()

    buffer: list[ImageResult] = []

    def checkpoint() -> None:
        if buffer:
            name = f"part-{len(parts):05d}.parquet"
            with atomic_path(work / name) as tmp:
                to_frame(buffer, landmarks=landmarks).to_parquet(tmp, index=False)
            parts.append(name)
            buffer.clear()
        with atomic_path(state_file) as tmp:
            tmp.write_bytes(pickle.dumps({"fingerprint": fingerprint, "session": session.state, "parts": parts}))

    source = str(path)
    stream = frames(path, options.stride, options.target_fps, options.start_s, options.end_s, options.sequence_fps, resumed_from)
    # Ctrl-C only raises a flag, checked between frames, so the checkpoint never holds half a frame.
    stop = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        for frame in stream:
            result = session.process(frame, source)
            if result.status == "error" and on_error is not None:
                on_error(frame, result.error)
            buffer.append(result)
            if on_frame is not None:
                on_frame(frame, info)
            if len(buffer) >= checkpoint_every or stop:
                checkpoint()
            if stop:
                raise RunInterrupted(f"stopped after frame {session.state.last_index}; run the same command again to resume")
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    checkpoint()

    # Each part is read once: written on to the final table, and kept without its landmark columns
    # (1,404 with --landmarks) for the summaries, the report and the annotated video, which need
    # every row: about 50 MB an hour of one face.
    summary_columns = list(to_frame([]).columns)
    kept: list[pd.DataFrame] = []

    def part_tables():
        for name in parts or [None]:
            table = to_frame([], landmarks=landmarks) if name is None else pd.read_parquet(work / name)
            kept.append(table[summary_columns].copy())  # a selection may share blocks with the landmarks
            yield table

    write_tables(part_tables(), out)
    table = pd.concat(kept, ignore_index=True)
    del kept
    episodes = action_unit_episodes(table)
    tracks = track_summary(table, episodes)
    tracks_path, episodes_path = companion_path(out, "tracks"), companion_path(out, "episodes")
    write_table(tracks, tracks_path)
    write_table(episodes, episodes_path)
    if report is not None:
        from .report import write_report

        write_report(report, table, tracks, episodes, session.state.thumbnails, info)
    if annotated_video is not None:
        from ..annotate import write_annotated_video

        write_annotated_video(path, info, table, annotated_video, options)
    shutil.rmtree(work, ignore_errors=True)
    return VideoRunResult(out, tracks_path, episodes_path, int(table["frame"].nunique()), int(table["face"].notna().sum()),
                          int((table["status"] == "error").sum()), resumed_from)
