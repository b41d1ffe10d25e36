"""A video, start to finish: frames through a video-mode analyzer, checkpoints, summaries, outputs.

``run_video`` streams a file through ``Analyzer(Options(mode=Mode.VIDEO))`` (tracking, smoothing
and per-track baselines live there, in ``video.session``), writes the per-frame rows in parts next
to the output together with a checkpoint of the analyzer's video state, and at the end joins
the parts into the final tables (per frame, per track, action-unit episodes), atomically. A run
stopped by Ctrl-C or killed resumes from its last checkpoint when the same command is run
again, and ends with the same output as a run that was never stopped.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import signal
import threading
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analyzer import Analyzer, Mode
from ..errors import MienError, OptionsError
from ..faces import Faces
from ..io import atomic_path, write_table, write_tables
from ..results import to_frame
from .checkpoint import (LOCK_FILE, STATE_FILE, Checkpoint, CheckpointIgnored, CheckpointUnusable, WorkFolderLock,
                         has_checkpoint, read_checkpoint, write_checkpoint)
from .decode import frames, probe, sequence_files
from .summaries import action_unit_episodes, track_summary

STATE_VERSION = 6


@dataclass(frozen=True)
class VideoOptions:
    """Which frames a run reads, and the report's thumbnails. What is measured on each frame, and how
    it is tracked and smoothed, are the analyzer's ``Options`` (video mode).

    stride: analyse every N-th frame (>= 1). target_fps: analyse at most this many frames per second
    of video, by timestamp (None: no limit). start_s, end_s: the part of the video read, seconds
    (end None: to the end). sequence_fps: frame rate given to a folder of images read as a video.
    thumbnails_every_s, max_thumbnails: the report's face thumbnails of each track, at least this
    many seconds apart and spread over the track, about this many (see :func:`keep_thumbnails`).
    experimental_units: episodes and track shares also for action
    units marked experimental. Out-of-range values raise OptionsError."""

    stride: int = 1
    target_fps: float | None = None
    start_s: float = 0.0
    end_s: float | None = None
    sequence_fps: float = 30.0  # frame rate given to a folder of images read as a video
    thumbnails_every_s: float = 2.0
    max_thumbnails: int = 12
    experimental_units: bool = False  # episodes and track shares also for units marked experimental

    def __post_init__(self):
        if self.stride < 1:
            raise OptionsError(f"stride (--stride) must be at least 1, not {self.stride}")
        if self.target_fps is not None and not self.target_fps > 0:
            raise OptionsError(f"target_fps (--fps) must be positive, not {self.target_fps}")
        if not self.sequence_fps > 0:
            raise OptionsError(f"sequence_fps (--sequence) must be positive, not {self.sequence_fps}")


def read_video(path: str | Path, options: VideoOptions = VideoOptions()):
    """The frames of the video file at ``path`` (or of a folder of images read as a sequence) that ``options`` keeps,
    upright, with their container timestamps: ``Frame(index, time_s, rgb, error)``; ``rgb`` is None
    and ``error`` says why for a frame that could not be decoded."""
    return frames(path, options.stride, options.target_fps, options.start_s, options.end_s, options.sequence_fps)


def analyze_frames(path: str | Path, analyzer: Analyzer, options: VideoOptions = VideoOptions()):
    """Yield ``Faces`` per frame of the video at ``path`` that ``options`` keeps, in memory (no
    checkpoints or files). ``analyzer`` must be in video mode (else OptionsError); its state is reset
    first."""
    _require_video_mode(analyzer)
    analyzer.reset()
    for frame in read_video(path, options):
        yield analyzer.analyze(frame, source=str(path))


def _require_video_mode(analyzer: Analyzer) -> None:
    if analyzer.options.mode is not Mode.VIDEO:
        raise OptionsError("video analysis needs Analyzer(Options(mode=Mode.VIDEO))")


def keep_thumbnails(thumbnails: dict, faces: Faces, rgb: np.ndarray, options: VideoOptions) -> None:
    """Add a 72 px JPEG of each track's face to ``thumbnails`` (track -> [(time_s, bytes)]), spread
    over the whole track: at most twice ``max_thumbnails`` are kept; when there are more, every
    other one goes, and new ones come at least as far apart as the track's length over that
    number (and ``thumbnails_every_s``)."""
    from ..annotate import face_thumbnail

    most = 2 * options.max_thumbnails
    for t, (x0, y0, x1, y1) in zip(faces.track_ids.tolist(), faces.boxes.astype(float)):
        kept = thumbnails.setdefault(t, [])
        if kept and faces.time_s - kept[-1][0] < max(options.thumbnails_every_s, (faces.time_s - kept[0][0]) / most):
            continue
        if len(kept) >= most:
            kept[:] = kept[::2]
        kept.append((faces.time_s, face_thumbnail(rgb, (x0, y0, x1 - x0, y1 - y0), size=72, margin=0.1)))


# --------------------------------------------------------------------------------------- running
class RunInterrupted(MienError, RuntimeError):
    """The run was stopped (Ctrl-C); its checkpoint is on disk."""


@dataclass(frozen=True)
class VideoRunResult:
    """What ``run_video`` wrote and counted: the per-frame, per-track and episodes tables; the number
    of frames analysed, of face rows and of frames that could not be decoded."""

    frames_table: Path
    tracks_table: Path
    episodes_table: Path
    frames: int
    faces: int
    failed_frames: int
    resumed_from: int  # frame index the run resumed after, -1 for a fresh run
    annotated_video: Path | None = None  # its suffix depends on the encoders installed (see mien.annotate.VideoSink)


def companion_path(out: Path, name: str) -> Path:
    """The path beside ``out`` for a companion table, e.g. ``faces.csv`` and ``tracks`` -> ``faces.tracks.csv``."""
    return out.with_name(f"{out.stem}.{name}{out.suffix}")


def _fingerprint(path: Path, analyzer: Analyzer, options: VideoOptions) -> str:
    """Changes when the input, the options or the checkpoint format change (a folder: any of its images)."""
    files = sequence_files(path) if path.is_dir() else [path]
    stamps = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    opts = analyzer.options.as_dict()
    payload = json.dumps([str(path.resolve()), stamps, opts, asdict(options), STATE_VERSION], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def run_video(path: str | Path, out: str | Path, analyzer: Analyzer, options: VideoOptions = VideoOptions(),
              checkpoint_every: int = 1000, landmarks: bool = False, on_frame=None, on_error=None,
              report: str | Path | None = None, annotated_video: str | Path | None = None,
              report_settings: dict[str, str] | None = None, on_drawn=None) -> VideoRunResult:
    """Analyse a video into ``out`` (per frame), ``<out>.tracks`` and ``<out>.episodes``, with a
    video-mode ``analyzer`` (its state is reset first); optionally an HTML ``report`` and an
    annotated video at ``annotated_video`` (a path without suffix: the encoder decides it).
    ``report_settings``: the run's options, as the report lists them. ``on_frame(frame, info)`` is
    called after each frame is analysed, ``on_drawn(frame, info)`` after each frame of the
    annotated video is drawn; ``on_error(frame, message)`` for each frame that could not be decoded.
    ``options``: which frames are read; ``checkpoint_every``: frames analysed between checkpoints (a
    stopped run resumes from the last one); ``landmarks``: add the 468 landmarks to the per-frame
    table. Returns a ``VideoRunResult`` (the tables written and the counts). Raises ``RunLocked``
    when another run is writing the same ``out``."""
    _require_video_mode(analyzer)
    path, out = Path(path), Path(out)
    with WorkFolderLock(work_folder(out)):
        return _run_video(path, out, analyzer, options, checkpoint_every, landmarks, on_frame, on_error, report, annotated_video,
                          report_settings or {}, on_drawn)


def work_folder(out: Path) -> Path:
    """Where a run keeps its parts and checkpoint until the final tables are written."""
    return out.with_name(f".{out.name}.mien-partial")


def _resume(work: Path, fingerprint: str, baseline_window: int) -> Checkpoint | None:
    """The checkpoint of this run in ``work``; None, with the work folder emptied but for its lock,
    when there is no usable one."""
    saved = None
    if has_checkpoint(work):
        try:
            saved = read_checkpoint(work, fingerprint, baseline_window)
        except CheckpointUnusable as exc:
            warnings.warn(f"{work}: not resuming from the checkpoint there, because {exc}; starting afresh", CheckpointIgnored)
    keep = {LOCK_FILE} if saved is None else {LOCK_FILE, STATE_FILE, *saved.parts}
    for stray in work.iterdir():
        if stray.name in keep or (saved is not None and stray.name.startswith("state-")):
            continue
        if stray.is_dir() and not stray.is_symlink():
            shutil.rmtree(stray)
        else:
            stray.unlink()
    return saved


def _run_video(path: Path, out: Path, analyzer: Analyzer, options: VideoOptions, checkpoint_every: int, landmarks: bool,
               on_frame, on_error, report, annotated_video, report_settings: dict[str, str], on_drawn) -> VideoRunResult:
    info = probe(path, options.sequence_fps)
    work = work_folder(out)
    fingerprint = _fingerprint(path, analyzer, options)
    analyzer.reset()
    saved = _resume(work, fingerprint, analyzer.options.baseline_window)
    if saved is not None:
        analyzer.restore_video_state(saved.session)
    run = saved or Checkpoint(session=analyzer.video_state)
    parts, thumbnails = run.parts, run.thumbnails
    resumed_from = -1 if saved is None else saved.last_index

    buffer: list[Faces] = []

    def checkpoint() -> None:
        if buffer:
            name = f"part-{len(parts):05d}.parquet"
            with atomic_path(work / name) as tmp:
                to_frame(buffer, landmarks=landmarks).to_parquet(tmp, index=False)
            parts.append(name)
            buffer.clear()
        run.session = analyzer.video_state
        write_checkpoint(work, fingerprint, run)

    source = str(path)
    stream = frames(path, options.stride, options.target_fps, options.start_s, options.end_s, options.sequence_fps, resumed_from)
    # Ctrl-C only raises a flag, checked between frames, so the checkpoint never holds half a frame.
    stop = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: stop.append(True))
    try:
        for frame in stream:
            faces = analyzer.analyze(frame, source=source)
            run.last_index = frame.index
            if faces.status == "error" and on_error is not None:
                on_error(frame, faces.error)
            elif len(faces) and report is not None:
                keep_thumbnails(thumbnails, faces, frame.rgb, options)
            buffer.append(faces)
            if on_frame is not None:
                on_frame(frame, info)
            if len(buffer) >= checkpoint_every or stop:
                checkpoint()
            if stop:
                raise RunInterrupted(f"stopped after frame {run.last_index}; run the same command again to resume")
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
    episodes = action_unit_episodes(table, options.experimental_units)
    tracks = track_summary(table, episodes, options.experimental_units)
    tracks_path, episodes_path = companion_path(out, "tracks"), companion_path(out, "episodes")
    write_table(tracks, tracks_path)
    write_table(episodes, episodes_path)
    video, apex_faces = None, {}
    if annotated_video is not None:
        from ..annotate import write_annotated_video
        from .report import apex_frames

        fps = options.target_fps or (info.fps or 30.0) / options.stride
        video, apex_faces = write_annotated_video(read_video(path, options), info, table, annotated_video, fps,
                                                  apex_frames(table, episodes), on_drawn)
    if report is not None:
        from .report import ReportInputs, write_report

        write_report(report, ReportInputs(table, tracks, episodes, thumbnails, info, apex_faces, video,
                                          report_settings, (out, tracks_path, episodes_path)))
    shutil.rmtree(work, ignore_errors=True)
    return VideoRunResult(out, tracks_path, episodes_path, int(table["frame"].nunique()), int(table["face"].notna().sum()),
                          int((table["status"] == "error").sum()), resumed_from, video.path if video else None)
