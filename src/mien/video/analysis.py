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
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import pandas as pd

from ..analyzer import Analyzer, Mode
from ..errors import MienError, OptionsError
from ..faces import Faces
from ..io import atomic_path, write_table, write_tables
from ..results import to_frame
from ..runtime import ctrl_c_as_flag
from .checkpoint import (LOCK_FILE, STATE_FILE, Checkpoint, CheckpointIgnored, CheckpointUnusable, WorkFolderLock,
                         has_checkpoint, read_checkpoint, write_checkpoint)
from .decode import Frame, frames, probe, sequence_files
from .sinks import AnnotatedVideo, FrameSink, ReportFaces
from .summaries import action_unit_episodes, track_summary

STATE_VERSION = 11  # 11: small frames are tracked enlarged (mien.small_faces)
# Frames analysed together (Analyzer.analyze_batch), their faces measured in one go. Default analysis
# of new_face_video-90.mp4 (benchmarks/video_batch_size.py, CPU time, medians of three runs of 7 to
# 11 repeats): 3.7-3.9 ms a frame against 4.2-4.8 frame by frame; 4 or 8 frames a batch near 16; 32
# 0.2 ms less in two runs of three, but a batch holds its frames' pixels: 16 of 1280x720 are 44 MB.
BATCH_FRAMES = 16


@dataclass(frozen=True)
class VideoOptions:
    """Which frames a run reads, and the report's thumbnails. What is measured on each frame, and how
    it is tracked and smoothed, are the analyzer's ``Options`` (video mode).

    stride: analyse every N-th frame (>= 1). target_fps: analyse at most this many frames per second
    of video, by timestamp (None: no limit). start_s, end_s: the part of the video read, seconds
    (end None: to the end). sequence_fps: frame rate given to a folder of images read as a video.
    thumbnails_every_s, max_thumbnails: the report's face thumbnails of each track, at least this
    many seconds apart and spread over the track, about this many (see ``video.sinks.keep_thumbnails``).
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
    checkpoints or files), analysed ``BATCH_FRAMES`` at a time. ``analyzer`` must be in video mode
    (else OptionsError); its state is reset first."""
    _require_video_mode(analyzer)
    analyzer.reset()
    for batch in frame_batches(read_video(path, options), BATCH_FRAMES):
        yield from analyzer.analyze_batch(batch, source=str(path))
        del batch  # its frames let go of before the next batch is decoded (which then reuses their memory)


def frame_batches(stream: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """The frames of ``stream`` in lists of ``size`` (the last one may be shorter)."""
    stream = iter(stream)
    while batch := list(islice(stream, size)):
        yield batch
        del batch  # not held here while the next batch is decoded (its memory is then reused)


def _require_video_mode(analyzer: Analyzer) -> None:
    if analyzer.options.mode is not Mode.VIDEO:
        raise OptionsError("video analysis needs Analyzer(Options(mode=Mode.VIDEO))")


# -------------------------------------------------------------------------------------- running
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
    annotated_video: Path | None = None  # when an AnnotatedVideo sink wrote one (its suffix depends on the encoders installed)


def companion_path(out: Path, name: str) -> Path:
    """The path beside ``out`` for a companion table, e.g. ``faces.csv`` and ``tracks`` -> ``faces.tracks.csv``."""
    return out.with_name(f"{out.stem}.{name}{out.suffix}")


@dataclass(frozen=True)
class VideoTables:
    """A video's tables as written: the per-frame ``table`` (without its landmark columns), the
    ``tracks`` and ``episodes`` tables and their paths, and the rows each part gave, in order."""

    table: pd.DataFrame
    tracks: pd.DataFrame
    episodes: pd.DataFrame
    tracks_path: Path
    episodes_path: Path
    part_rows: tuple[int, ...]

    def run_result(self, out: Path, resumed_from: int = -1, annotated_video: Path | None = None) -> VideoRunResult:
        """What the run wrote and counted."""
        t = self.table
        return VideoRunResult(out, self.tracks_path, self.episodes_path, int(t["frame"].nunique()), int(t["face"].notna().sum()),
                              int((t["status"] == "error").sum()), resumed_from, annotated_video)


def write_video_tables(parts, out: Path, experimental_units: bool = False) -> VideoTables:
    """Write a video's per-frame table to ``out`` from ``parts`` (its tables in frame order, read one
    at a time), then its tracks and episodes tables beside it (``companion_path``)."""
    # Each part is read once: written on to the final table, and kept without its landmark columns
    # (1,404 with --landmarks) for the summaries and the report, which need every row: about 50 MB
    # an hour of one face.
    summary_columns = list(to_frame([]).columns)
    kept: list[pd.DataFrame] = []

    def keeping():
        for part in parts:
            kept.append(part[summary_columns].copy())  # a selection may share blocks with the landmarks
            yield part

    write_tables(keeping(), out)
    table, part_rows = pd.concat(kept, ignore_index=True), tuple(len(k) for k in kept)
    kept.clear()
    episodes = action_unit_episodes(table, experimental_units)
    tracks = track_summary(table, episodes, experimental_units)
    tracks_path, episodes_path = companion_path(out, "tracks"), companion_path(out, "episodes")
    write_table(tracks, tracks_path)
    write_table(episodes, episodes_path)
    return VideoTables(table, tracks, episodes, tracks_path, episodes_path, part_rows)


def _fingerprint(path: Path, analyzer: Analyzer, options: VideoOptions, sinks: list[FrameSink]) -> str:
    """Changes when the input, the options, the sinks or the checkpoint format change (a folder: any of its images)."""
    files = sequence_files(path) if path.is_dir() else [path]
    stamps = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    opts = analyzer.options.as_dict()
    payload = json.dumps([str(path.resolve()), stamps, opts, asdict(options), [s.name for s in sinks], STATE_VERSION],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def run_video(path: str | Path, out: str | Path, analyzer: Analyzer, options: VideoOptions = VideoOptions(),
              checkpoint_every: int = 1000, landmarks: bool = False, on_frame=None, on_error=None,
              report: str | Path | None = None, sinks=(), report_settings: dict[str, str] | None = None) -> VideoRunResult:
    """Analyse the video at ``path`` into ``out`` (per frame), ``<out>.tracks`` and ``<out>.episodes``,
    with a video-mode ``analyzer`` (its state is reset first), decoding it once; optionally an HTML
    ``report``. ``sinks``: ``video.sinks.FrameSink`` objects fed with every analysed frame during
    that pass, e.g. ``AnnotatedVideo(stem)`` for an annotated video (the report links the first
    one). ``report_settings``: the run's options, as the report lists them. ``on_frame(frame, info)``
    is called after each frame is analysed, ``on_error(frame, message)`` for each frame that could
    not be decoded. ``options``: which frames are read; ``checkpoint_every``: frames analysed
    between checkpoints (a stopped run resumes from the last one); ``landmarks``: add the 468
    landmarks to the per-frame table. Returns a ``VideoRunResult`` (the tables written and the
    counts). Raises ``RunLocked`` when another run is writing the same ``out``, OptionsError when
    two sinks share a name or ``checkpoint_every`` is below 1."""
    _require_video_mode(analyzer)
    if checkpoint_every < 1:
        raise OptionsError(f"checkpoint_every must be at least 1 frame, not {checkpoint_every}")
    path, out = Path(path), Path(out)
    sinks = list(sinks)
    if report is not None:
        sinks.append(ReportFaces(options.thumbnails_every_s, options.max_thumbnails, options.experimental_units))
    names = [s.name for s in sinks]
    if len(set(names)) < len(names):
        raise OptionsError(f"each sink of a run needs its own name, not {names}")
    with WorkFolderLock(work_folder(out)):
        return _run_video(path, out, analyzer, options, checkpoint_every, landmarks, on_frame, on_error, report, sinks,
                          report_settings or {})


def frame_rate(info, options: VideoOptions) -> float:
    """Frames a second a run with ``options`` analyses of the video ``info`` (a ``probe``) describes: the rate its sinks get."""
    return options.target_fps or (info.fps or 30.0) / options.stride


def work_folder(out: Path) -> Path:
    """Where a run keeps its parts and checkpoint until the final tables are written."""
    return out.with_name(f".{out.name}.mien-partial")


def _resume(work: Path, fingerprint: str, baseline_window: int, sinks: list[FrameSink]) -> Checkpoint | None:
    """The checkpoint of this run in ``work``, its sinks' states restored; None, with the work
    folder emptied but for its lock, when there is no usable one."""
    saved = None
    if has_checkpoint(work):
        try:
            saved = read_checkpoint(work, fingerprint, baseline_window)
            for sink in sinks:
                if sink.name not in saved.sinks:
                    raise CheckpointUnusable(f"it has no state for the sink {sink.name!r}")
                try:
                    sink.restore(*saved.sinks[sink.name])
                except CheckpointUnusable:
                    raise
                except Exception as exc:  # a sink's malformed state can raise almost anything; nothing runs
                    raise CheckpointUnusable(f"the state of its sink {sink.name!r} is malformed "
                                             f"({type(exc).__name__}: {exc})") from None
        except CheckpointUnusable as exc:
            warnings.warn(f"{work}: not resuming from the checkpoint there, because {exc}; starting afresh", CheckpointIgnored)
            saved = None
    keep = {LOCK_FILE} if saved is None else {LOCK_FILE, STATE_FILE, *saved.files}
    for stray in work.iterdir():
        if stray.name in keep or (saved is not None and stray.name.startswith("state-")):
            continue
        if stray.is_dir() and not stray.is_symlink():
            shutil.rmtree(stray)
        else:
            stray.unlink()
    return saved


def _run_video(path: Path, out: Path, analyzer: Analyzer, options: VideoOptions, checkpoint_every: int, landmarks: bool,
               on_frame, on_error, report, sinks: list[FrameSink], report_settings: dict[str, str]) -> VideoRunResult:
    info = probe(path, options.sequence_fps)
    work = work_folder(out)
    fingerprint = _fingerprint(path, analyzer, options, sinks)
    fps = frame_rate(info, options)
    analyzer.reset()
    for sink in sinks:
        sink.open(work, info, fps)
    saved = _resume(work, fingerprint, analyzer.options.baseline_window, sinks)
    if saved is None:
        for sink in sinks:  # fresh state, also for a sink that took back part of an unusable checkpoint
            sink.open(work, info, fps)
    else:
        analyzer.restore_video_state(saved.session)
    run = saved or Checkpoint(session=analyzer.video_state)
    parts = run.parts
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
        run.sinks = {sink.name: sink.state() for sink in sinks}
        write_checkpoint(work, fingerprint, run)

    source = str(path)
    stream = frames(path, options.stride, options.target_fps, options.start_s, options.end_s, options.sequence_fps, resumed_from)
    # Ctrl-C only raises a flag, checked between batches of frames, so the checkpoint never holds
    # half a batch; a batch never goes past the next regular checkpoint.
    finished = False
    with ctrl_c_as_flag() as stop:
        try:
            while batch := list(islice(stream, min(BATCH_FRAMES, checkpoint_every - len(buffer)))):
                for frame, faces in zip(batch, analyzer.analyze_batch(batch, source=source)):
                    run.last_index = frame.index
                    if faces.status == "error" and on_error is not None:
                        on_error(frame, faces.error)
                    for sink in sinks:
                        sink.add(frame, faces)
                    buffer.append(faces)
                    if on_frame is not None:
                        on_frame(frame, info)
                del batch, frame  # let go of before the next batch is decoded (which then reuses their memory)
                if len(buffer) >= checkpoint_every or stop:
                    checkpoint()
                if stop:
                    raise RunInterrupted(f"stopped after frame {run.last_index}; run the same command again to resume")
            checkpoint()
            finished = True
        finally:
            if not finished:
                for sink in sinks:  # what was added since the last checkpoint is dropped: a resumed run adds it again
                    sink.finish(False)

    def part_tables():
        for name in parts or [None]:
            yield to_frame([], landmarks=landmarks) if name is None else pd.read_parquet(work / name)

    written = write_video_tables(part_tables(), out, options.experimental_units)
    for sink in sinks:
        sink.finish(True)
    video = next((s for s in sinks if isinstance(s, AnnotatedVideo) and s.written), None)
    if report is not None:
        from .report import ReportInputs, apex_frames, write_report

        faces_sink = next(s for s in sinks if isinstance(s, ReportFaces))
        w = written
        write_report(report, ReportInputs(w.table, w.tracks, w.episodes, faces_sink.thumbnails, info,
                                          faces_sink.apex_faces(apex_frames(w.table, w.episodes)), video, report_settings,
                                          (out, w.tracks_path, w.episodes_path)))
    shutil.rmtree(work, ignore_errors=True)
    return written.run_result(out, resumed_from, video.path if video else None)
