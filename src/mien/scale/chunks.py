"""One long video over many cores: cut into pieces of ``chunk_s`` seconds of media, analysed in
parallel, and stitched back into one video's tables.

Each piece seeks to ``overlap_s`` before its own start (the decoder goes to the keyframe before
and decodes forward to the exact frame, so frame indices and timestamps are the whole video's)
and analyses those frames as a warm-up: the tracker finds the faces, the smoothers settle, and
the rows it writes for them are used only to stitch. Its warm-up frames are the last frames of
the piece before, so each track of the piece is matched to the earlier piece's track whose face
boxes overlap it most over those frames and takes that track's id; tracks seen in no earlier
piece get new ids, counting up in order of appearance as in a whole run. The detector runs on
the same frames as in a whole run (its schedule is set from the frame's place in the video).

Per-track baselines are rebuilt across seams in a last, sequential pass: every piece keeps each
face's raw action-unit measures and perceived neutral share, and the action units are recomputed
against each track's neutral built over its whole history, with the very code of a whole run
(``video/baseline.py``). Smoothing restarts at each piece and has the overlap to settle; what
remains of that restart is the one difference from a whole run (docs/scale.md gives its size). Episodes and track summaries
are computed on the stitched table. A finished piece is kept on disk, so a stopped run redoes only
the pieces that were not finished. A report and an annotated video are drawn afterwards from the
stitched table, piece by piece (``pictures``).
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pandas as pd

from .. import actions
from ..analyzer import Analyzer
from ..faces import Faces
from ..io import atomic_path
from ..results import COLUMNS, to_frame
from ..video import Frame, probe
from ..video.decode import PixelMemory
from ..video.analysis import BATCH_FRAMES, VideoTables, frame_batches, write_video_tables
from ..video.baseline import BaselineRule, TrackBaselines
from ..video.tracking import MATCH_IOU
from .tasks import VideoJob, VideoOutcome
from ..errors import MienError

CHUNK_S = 60.0  # seconds of media per piece
OVERLAP_S = 3.0  # warm-up before each piece's own start (see docs/scale.md for how long smoothing needs)
PIECES_VERSION = 3
WARMUP = "piece_warmup"  # helper columns of a piece's part, dropped when stitched
RAW_PREFIX = "piece_raw_"
NEUTRAL_SHARE = "piece_perceived_neutral"  # the unrounded share the baseline's neutral-looking test reads


@dataclass(frozen=True)
class Piece:
    """One piece of a long video: its ``number`` (0 first), the span of media time it owns
    (``start_s`` to ``end_s``, seconds, end exclusive) and where it starts decoding (``warmup_s``,
    seconds: the overlap with the piece before, analysed only to stitch)."""

    number: int
    start_s: float  # the piece owns the frames from here ...
    end_s: float | None  # ... up to here (exclusive; None: to the end of the run)
    warmup_s: float  # and decodes from here


@dataclass(frozen=True)
class PieceJob:
    """One piece to analyse: the video's job, the ``piece``, the index of the run's first frame
    (which sets the detector's schedule) and the Parquet file its rows go to (``part``)."""

    video: VideoJob
    piece: Piece
    first_index: int  # index of the run's first frame, which sets the detector's schedule
    part: Path  # where the piece's rows go


@dataclass(frozen=True)
class PieceOutcome:
    """A finished piece: its number, the Parquet file of its rows and how many face rows it holds."""

    number: int
    part: Path
    faces: int


def plan_pieces(start_s: float, end_s: float, chunk_s: float = CHUNK_S, overlap_s: float = OVERLAP_S,
                workers: int = 1) -> list[Piece]:
    """Equal pieces covering [start_s, end_s), none longer than ``chunk_s``, as many as a multiple of
    ``workers`` so that the last round of pieces keeps every worker busy."""
    if not chunk_s > 0:
        raise ValueError(f"chunk (--chunk) must be a positive number of seconds, not {chunk_s}")
    count = max(1, math.ceil((end_s - start_s) / chunk_s - 1e-9))
    count = math.ceil(count / workers) * workers
    starts = [start_s + k * (end_s - start_s) / count for k in range(count)]
    return [Piece(k, s, starts[k + 1] if k + 1 < count else None, max(start_s, s - overlap_s)) for k, s in enumerate(starts)]


def splittable(job: VideoJob, duration_s: float, chunk_s: float) -> bool:
    """Whether a video is cut into pieces: a file (not an image sequence) longer than a chunk, read
    by frame index (a target rate counts time from the start, which a piece does not see)."""
    o = job.options
    length = (min(duration_s, o.end_s) if o.end_s is not None else duration_s) - o.start_s
    return job.path.is_file() and o.target_fps is None and length > chunk_s


# ------------------------------------------------------------------------------------ decoding
def _capture(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def piece_frames(path: Path, from_s: float, to_s: float | None, stride: int = 1) -> Iterator[Frame]:
    """Frames with ``from_s <= time < to_s``, with the whole video's indices, every ``stride``-th by index."""
    cap = _capture(path)
    memory = PixelMemory()
    try:
        if from_s > 0:
            cap.set(cv2.CAP_PROP_POS_MSEC, from_s * 1000.0)
        while cap.grab():
            index = int(round(cap.get(cv2.CAP_PROP_POS_FRAMES))) - 1
            time_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if time_s < from_s - 1e-9 or index % stride:
                continue
            if to_s is not None and time_s >= to_s - 1e-9:
                return
            ok, bgr = cap.retrieve()
            if ok and bgr is not None:
                yield Frame(index, time_s, memory.rgb(bgr))
            else:
                yield Frame(index, time_s, None, "frame could not be decoded")
    finally:
        cap.release()


def first_frame_index(path: Path, start_s: float) -> int:
    """The video's index of the first frame at or after ``start_s`` seconds (0 when there is none)."""
    return next((f.index for f in piece_frames(path, start_s, None)), 0)


def piece_end(piece: Piece, options) -> float | None:
    """Where a piece's frames end (exclusive, seconds; None: the video's end), with the run's ``options``:
    a run's end time is inclusive, a piece's own end is where the next piece starts."""
    return piece.end_s if piece.end_s is not None or options.end_s is None else options.end_s + 2e-9


# ----------------------------------------------------------------------------------- one piece
def _per_row(batches: list[Faces], values) -> np.ndarray:
    """One value per table row (``to_frame``'s rows: a row per face, one for a frame without faces)."""
    return np.concatenate([np.asarray(values(b)) for b in batches]) if batches else np.zeros(0)


def analyze_piece(analyzer: Analyzer, job: PieceJob) -> PieceOutcome:
    """Analyse one piece (its warm-up included) with a video-mode analyzer into its part file, with
    each row's raw action-unit measures and perceived neutral share for the stitching."""
    o, piece = job.video.options, job.piece
    analyzer.reset()
    batches: list[Faces] = []
    warmup: list[bool] = []
    source = str(job.video.path)
    units = len(actions.columns())
    for frames in frame_batches(piece_frames(job.video.path, piece.warmup_s, piece_end(piece, o), o.stride), BATCH_FRAMES):
        if not batches:  # the detector runs where a whole run would run it
            analyzer.video_state.tracker.frames_seen = (frames[0].index - job.first_index) // o.stride
        batches += analyzer.analyze_batch(frames, source=source)
        warmup += [frame.time_s < piece.start_s - 1e-9 for frame in frames]
        del frames  # let go of before the next batch is decoded (which then reuses their memory)
    table = to_frame(batches, landmarks=job.video.landmarks)
    table[WARMUP] = np.repeat(np.array(warmup, bool), [max(len(b), 1) for b in batches])
    raw = _per_row(batches, lambda b: b.actions.raw if len(b) and b.actions is not None else np.full((max(len(b), 1), units), np.nan))
    neutral = _per_row(batches, lambda b: b.perceived.probabilities[:, 0] if len(b) and b.perceived is not None
                       else np.full(max(len(b), 1), np.nan))
    helpers = pd.DataFrame(np.column_stack([raw.reshape(len(table), units), neutral.reshape(len(table), 1)]),
                           columns=[f"{RAW_PREFIX}{k}" for k in range(units)] + [NEUTRAL_SHARE])
    table = pd.concat([table, helpers], axis=1)
    with atomic_path(job.part) as tmp:  # written last: its presence marks the piece finished
        table.to_parquet(tmp, index=False)
    return PieceOutcome(piece.number, job.part, int(table.loc[~table[WARMUP], "face"].notna().sum()))


# ------------------------------------------------------------------------------------ stitching
_AU_DTYPES = {c.name: c.dtype for c in COLUMNS}


def rebase(table: pd.DataFrame, baselines: TrackBaselines) -> pd.DataFrame:
    """Recompute action-unit intensities, occurrences, ``au_baseline`` and ``au_baseline_frames`` of
    a stitched piece's rows (in frame order) against each track's neutral over the whole video so
    far, as a whole run builds it (video/baseline.py), from the rows' raw measures."""
    units = actions.columns()
    raw = table[[f"{RAW_PREFIX}{k}" for k in range(len(units))]].to_numpy(np.float64)
    neutral_share = table[NEUTRAL_SHARE].to_numpy(np.float64)
    reliable = table["reliable"].fillna(False).to_numpy(bool)
    tracks = table["track"].to_numpy(dtype=float, na_value=np.nan)
    with_face = np.flatnonzero(np.isfinite(tracks))
    neutral = np.full((len(table), len(units)), np.nan)
    kinds = np.full(len(table), None, object)
    built = np.zeros(len(table), np.int64)
    frames = table["frame"].to_numpy()
    for rows in np.split(with_face, np.flatnonzero(np.diff(frames[with_face]) != 0) + 1) if len(with_face) else []:
        ids = tracks[rows].astype(int).tolist()
        neutral[rows], kind, frames_built = baselines.baselines(ids)
        kinds[rows], built[rows] = kind, frames_built
        shares = None if np.isnan(neutral_share[rows]).all() else neutral_share[rows]
        baselines.update(ids, raw[rows], shares, reliable[rows])
    table = table.copy()
    if len(with_face):
        measured = actions.analyse_measures(raw[with_face], neutral[with_face])
        for k, column in enumerate(units):
            for name, values in ((column, measured.intensity[:, k]), (f"{column}_present", measured.present[:, k])):
                if name in table:
                    full = np.full(len(table), np.nan)
                    full[with_face] = values
                    table[name] = pd.array(full, dtype="Float64").astype(_AU_DTYPES[name])
    table["au_baseline"] = pd.array(kinds, dtype="string")
    table["au_baseline_frames"] = pd.array(np.where(np.isfinite(tracks), built, np.nan), dtype="Float64").astype("Int64")
    return table


def match_tracks(earlier: pd.DataFrame, warmup: pd.DataFrame) -> dict[int, int]:
    """Piece track id -> earlier track id, by the overlap of their boxes over the frames both saw."""
    columns = ["frame", "track", "x", "y", "w", "h"]
    mine = warmup.loc[warmup["track"].notna(), columns]
    theirs = earlier.loc[earlier["track"].notna() & earlier["frame"].isin(mine["frame"]), columns]
    pairs = mine.merge(theirs, on="frame", suffixes=("", "_earlier"))
    if not len(pairs):
        return {}
    a, b = _xyxy(pairs, ""), _xyxy(pairs, "_earlier")
    inter = np.clip(np.minimum(a[:, 2:], b[:, 2:]) - np.maximum(a[:, :2], b[:, :2]), 0, None).prod(1)
    union = (a[:, 2:] - a[:, :2]).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
    pairs["iou"] = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    scores = pairs.groupby(["track", "track_earlier"])["iou"].agg(["sum", "mean"]).reset_index()
    # the most overlap summed over the shared frames: a track that was there all along beats a
    # one-frame track at the same place
    scores = scores[scores["mean"] > MATCH_IOU].sort_values("sum", ascending=False, kind="stable")
    mapping: dict[int, int] = {}
    for track, other in zip(scores["track"].astype(int), scores["track_earlier"].astype(int)):
        if track not in mapping and other not in mapping.values():
            mapping[track] = other
    return mapping


def _xyxy(rows: pd.DataFrame, suffix: str) -> np.ndarray:
    x, y, w, h = (rows[c + suffix].to_numpy(np.float64) for c in ("x", "y", "w", "h"))
    return np.stack([x, y, x + w, y + h], axis=1)


class SeamError(MienError, RuntimeError):
    """Two pieces disagree on the frames they share (their indices or times): the video cannot be
    cut this way (e.g. a variable frame rate that seeking cannot reproduce)."""


def stitched_parts(parts: list[Path], analysis) -> Iterator[pd.DataFrame]:
    """The pieces' own rows with global track ids and whole-video baselines, piece by piece.
    ``analysis``: the video-mode ``Options`` the pieces were analysed with."""
    baselines = TrackBaselines(BaselineRule(analysis.baseline_min_frames, analysis.baseline_window))
    track_baselines = analysis.action_units and analysis.au_baseline == "track"
    next_id = 0
    earlier = pd.DataFrame()
    helpers = [f"{RAW_PREFIX}{k}" for k in range(len(actions.columns()))] + [NEUTRAL_SHARE]
    for part in parts:
        table = pd.read_parquet(part)
        warm = table[WARMUP].to_numpy(bool)
        shared = table.loc[warm, ["frame", "time_s"]].drop_duplicates()
        if len(earlier):
            known = earlier[["frame", "time_s"]].drop_duplicates().merge(shared, on="frame", suffixes=("", "_piece"))
            if not np.allclose(known["time_s"], known["time_s_piece"], atol=1e-4):
                raise SeamError(f"{part.name}: frames shared with the piece before have other timestamps")
        mapping = match_tracks(earlier, table[warm]) if len(earlier) else {}
        own = table[~warm].reset_index(drop=True)
        local = own["track"].dropna().astype(int).unique()
        for track in sorted(local):
            if track not in mapping:
                mapping[track] = next_id
                next_id += 1
        own["track"] = pd.array([mapping.get(int(t)) if pd.notna(t) else pd.NA for t in own["track"]], dtype="Int64")
        if track_baselines:
            own = rebase(own, baselines)
            baselines.forget(set(own["track"].dropna().astype(int)))
        own = own.drop(columns=[WARMUP, *helpers])
        earlier = own
        yield own


def _fingerprint(job: VideoJob, analyzer_options, pieces: list[Piece]) -> str:
    stat = job.path.stat()
    analysis = analyzer_options.as_dict()
    payload = json.dumps([str(job.path.resolve()), stat.st_size, stat.st_mtime_ns, analysis, asdict(job.options),
                          job.landmarks, [asdict(p) for p in pieces], PIECES_VERSION], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def work_folder(job: VideoJob) -> Path:
    """The hidden folder beside a video's output table that holds its finished pieces."""
    return job.out.with_name(f".{job.out.name}.mien-pieces")


def piece_jobs(job: VideoJob, analyzer_options, chunk_s: float = CHUNK_S, overlap_s: float = OVERLAP_S,
               workers: int = 1) -> list[PieceJob] | None:
    """The pieces of a video to analyse, finished ones included; None when it is not cut into pieces.
    A work folder left by another command (other input, options or chunking) is cleared."""
    info = probe(job.path, job.options.sequence_fps)
    duration = info.frame_count / info.fps if info.fps > 0 else 0.0
    if not splittable(job, duration, chunk_s):
        return None
    end = duration if job.options.end_s is None else min(duration, job.options.end_s)
    work = work_folder(job)
    pieces = plan_pieces(job.options.start_s, end, chunk_s, overlap_s, workers)
    fingerprint = _fingerprint(job, analyzer_options, pieces)
    stamp = work / "fingerprint"
    if work.exists() and (not stamp.exists() or stamp.read_text() != fingerprint):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)
    first = first_frame_index(job.path, job.options.start_s)
    return [PieceJob(job, piece, first, work / f"piece-{piece.number:05d}.parquet") for piece in pieces]


def finished(piece: PieceJob) -> bool:
    """Whether the piece was analysed to the end by an earlier run (its part file exists)."""
    return piece.part.exists()


def split_videos(jobs: list[VideoJob], analyzer_options, chunk_s: float, workers: int) -> dict[VideoJob, list[PieceJob]]:
    """The pieces of each video long enough to be cut, for ``workers`` workers; a video that cannot
    be opened is left whole (its task reports why)."""
    from ..images import ImageReadError
    from ..video import VideoReadError

    pieces = {}
    for job in jobs:
        try:
            planned = piece_jobs(job, analyzer_options, chunk_s, workers=workers)
        except (VideoReadError, ImageReadError):
            continue
        if planned:
            pieces[job] = planned
    return pieces


def stitch_video(job: VideoJob, pieces: list[PieceJob], analysis) -> VideoTables:
    """Stitch a video's finished pieces into its tables, written as ``run_video`` writes them
    (``part_rows``: the rows of each piece, in order); the work folder is kept (see ``finish_video``)."""
    parts = [p.part for p in sorted(pieces, key=lambda p: p.piece.number)]
    return write_video_tables(stitched_parts(parts, analysis), job.out, job.options.experimental_units)


def video_outcome(job: VideoJob, stitched: VideoTables, annotated: Path | None = None) -> VideoOutcome:
    """What a video run in pieces wrote and counted, as ``run_video`` reports it."""
    table = stitched.table
    errors = table.loc[table["status"] == "error", ["frame", "error"]]
    return VideoOutcome(job, stitched.run_result(job.out, annotated_video=annotated),
                        frame_errors=tuple(f"frame {f}: {e}" for f, e in errors.itertuples(index=False)))


def finish_video(job: VideoJob, pieces: list[PieceJob], analysis) -> VideoOutcome:
    """Stitch a video's finished pieces into its tables (``stitch_video``) and clear its work folder:
    for a video without report or annotated video (those: ``scale.pictures``)."""
    stitched = stitch_video(job, pieces, analysis)
    shutil.rmtree(work_folder(job), ignore_errors=True)
    return video_outcome(job, stitched)
