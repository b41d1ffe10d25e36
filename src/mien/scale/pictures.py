"""The annotated video and the report of a long video analysed in pieces (see ``chunks``).

Once the pieces are stitched, a second pass per piece, in parallel, decodes the piece's own frames
again (no warm-up) and draws and cuts them from the stitched table's rows, so that the pictures
show what the tables say: global track ids, whole-video baselines. Each frame's ``Faces`` are
rebuilt from its rows (``TableFaces``) and drawn and cut by a whole run's functions
(``annotate.draw_video_faces``, ``sinks.thumbnail_face``, ``sinks.apex_face``); each piece's video
is encoded on the whole video's clock and the pieces are joined without encoding again; the faces the report shows are chosen on the whole
table by a whole run's rules (``sinks.keep_thumbnails``, ``report.apex_frames``) and cut by the
piece that holds their frame. A finished pass is kept in the work folder until the report is
written, so a stopped run redoes only the others.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import actions, perceived
from ..actions import ActionUnitResult
from ..annotate import VideoSink, clock_pts, draw_video_faces, join_videos, video_path
from ..faces import Faces
from ..io import atomic_path
from ..mesh import LANDMARK_COUNT
from ..perceived import Perceived
from ..quality import Quality
from ..video import probe
from ..video.analysis import VideoTables, frame_rate
from ..video.report import ReportInputs, apex_frames, write_report
from ..video.sinks import AnnotatedVideo, apex_face, keep_thumbnails, thumbnail_face
from .chunks import Piece, PieceJob, SeamError, piece_end, piece_frames, video_outcome, work_folder
from .tasks import VideoJob, VideoOutcome

_UNITS = actions.columns()
_PRESENT = [f"{u}_present" for u in _UNITS]
_SHARES = [f"perceived_{c}" for c in perceived.CLASSES]
_QUALITY = ["iod_px", "sharpness", "brightness", "clipped"]
# the table's columns ``TableFaces`` reads
PICTURE_COLUMNS = (["source", "frame", "face", "track", "time_s", "au_baseline", "au_baseline_frames", "status", "error",
                    "note", "image_width", "image_height", "x", "y", "w", "h", "score", "track_score", "presence",
                    *_QUALITY, "reliable", "quality_reasons", *_UNITS, *_PRESENT, *_SHARES, "perceived_top",
                    "perceived_top_p", "perceived_entropy", "perceived_abstain_reason"])


def _texts(column: pd.Series) -> np.ndarray:
    return column.astype(object).where(column.notna(), "").to_numpy(object)


class TableFaces:
    """A table's rows (``to_frame``'s, at least ``PICTURE_COLUMNS``) as arrays, from which each
    frame's ``Faces`` are rebuilt (``frame``): read once, so that rebuilding a frame costs
    microseconds."""

    def __init__(self, rows: pd.DataFrame):
        def floats(columns, dtype=np.float32) -> np.ndarray:
            return rows[columns].to_numpy(dtype, na_value=np.nan)

        self.facts = {name: rows[name].astype(object).where(rows[name].notna(), None).to_numpy(object)
                      for name in ("source", "frame", "time_s", "image_width", "image_height", "status", "error", "note")}
        self.face = rows["face"].notna().to_numpy()
        x, y, w, h = floats(["x", "y", "w", "h"], np.float64).T
        self.boxes = np.column_stack([x, y, x + w, y + h])  # float64: x1 - x0 gives the table's width back exactly
        self.scores, self.presence, self.track_scores = floats("score"), floats("presence"), floats("track_score")
        self.quality, self.reliable = floats(_QUALITY), rows["reliable"].fillna(False).to_numpy(bool)
        self.reasons = _texts(rows["quality_reasons"])
        self.intensity = floats(_UNITS, np.float64)
        self.present, self.measured = rows[_PRESENT].fillna(False).to_numpy(bool), rows[_PRESENT].notna().to_numpy().any(1)
        self.shares, self.top_p, self.entropy = floats(_SHARES), floats("perceived_top_p"), floats("perceived_entropy")
        self.top, self.seen = _texts(rows["perceived_top"]), rows["perceived_top"].notna().to_numpy()
        self.abstain = _texts(rows["perceived_abstain_reason"])
        self.tracks = rows["track"].to_numpy(np.float64, na_value=np.nan)
        self.baseline = _texts(rows["au_baseline"])
        self.baseline_frames = rows["au_baseline_frames"].to_numpy(np.float64, na_value=np.nan)

    def frame(self, first: int, end: int) -> Faces:
        """The ``Faces`` of the frame whose rows are ``first`` to ``end`` (exclusive): the frame's
        facts, boxes, scores, presence, quality, track ids and scores, baselines, action-unit
        intensities and occurrences (raw measures NaN) and perceived expression; no landmarks,
        pose, iris or gaze. A measure the rows do not hold (turned off) is None."""
        f = {name: values[first] for name, values in self.facts.items()}
        facts = dict(source=f["source"], frame=int(f["frame"]), time_s=f["time_s"], width=f["image_width"],
                     height=f["image_height"], status=f["status"], error=f["error"] or "", note=f["note"] or "")
        at = first + np.flatnonzero(self.face[first:end])
        if not len(at):
            return Faces(**facts)
        n, k = len(at), len(_UNITS)
        kind = "person" if (self.baseline[at] == "track").any() else "population"
        units = ActionUnitResult(np.full((n, k), np.nan), np.full((n, k), np.nan), self.intensity[at], self.present[at], kind,
                                 actions.action_units())
        seen = Perceived(self.shares[at], tuple(self.top[at]), self.top_p[at], self.entropy[at], tuple(self.abstain[at]))
        return Faces(**facts, boxes=self.boxes[at], scores=self.scores[at], presence=self.presence[at],
                     landmarks=np.full((n, LANDMARK_COUNT, 3), np.nan, np.float32),
                     quality=Quality(*self.quality[at].T, self.reliable[at], tuple(self.reasons[at])),
                     actions=units if self.measured[at].any() else None, perceived=seen if self.seen[at].any() else None,
                     track_ids=self.tracks[at].astype(np.int64), au_baseline=tuple(self.baseline[at]),
                     au_baseline_frames=self.baseline_frames[at].astype(np.int64), track_scores=self.track_scores[at])


def frame_spans(frames: np.ndarray) -> dict[int, tuple[int, int]]:
    """Frame index -> the (first, end) rows it fills, for a table's ``frame`` column in frame order."""
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]]) if len(frames) else np.zeros(0, int)
    ends = np.r_[starts[1:], len(frames)]
    return {int(frames[a]): (int(a), int(b)) for a, b in zip(starts, ends)}


def thumbnail_frames(table: pd.DataFrame, every_s: float, most: int) -> dict[int, list[tuple[float, int]]]:
    """Track -> [(time_s, frame)] of the faces a whole run keeps as the report's thumbnails
    (``sinks.keep_thumbnails``), chosen on the finished table."""
    faces = table.loc[table["track"].notna(), ["frame", "time_s", "track"]]
    tracks, times = faces["track"].to_numpy(np.int64), faces["time_s"].to_numpy(np.float64)
    frames = faces["frame"].to_numpy(np.int64)
    selection: dict[int, list[tuple[float, int]]] = {}
    for frame, (a, b) in frame_spans(frames).items():
        keep_thumbnails(selection, tracks[a:b].tolist(), float(times[a]), lambda _i, frame=frame: frame, every_s, most)
    return selection


@dataclass(frozen=True)
class PicturePass:
    """One piece's pictures: the video's job, the ``piece``, the stitched ``rows`` of its own
    frames (``PICTURE_COLUMNS``), the (track, frame) faces to cut for the report's thumbnails and
    apexes, the annotated video's clock (the whole video's ``origin`` in source seconds and the
    timestamp in ms of the piece's first frame; None: no annotated video) and the work folder."""

    video: VideoJob
    piece: Piece
    rows: pd.DataFrame
    thumbnails: frozenset[tuple[int, int]]
    apexes: frozenset[tuple[int, int]]
    clock: tuple[float, int] | None
    work: Path

    @property
    def faces_file(self) -> Path:
        """Where the faces it cut go; written last, so its presence marks the pass finished."""
        made = ("-report" if self.video.report else "") + ("-video" if self.video.annotated else "")
        return self.work / f"pictures{made}-{self.piece.number:05d}.npz"

    @property
    def annotated_stem(self) -> Path:
        """Where the piece's annotated video goes in the work folder, less the container's suffix."""
        return self.work / f"annotated-{self.piece.number:05d}"


@dataclass(frozen=True)
class Pictures:
    """What a video in pieces shows besides its tables, chosen on the stitched table: the passes
    that cut it, the thumbnails (track -> [(time_s, frame)]) and apexes ((track, frame)) of the
    report, and the source time of the annotated video's first frame (None: no decoded frame)."""

    passes: list[PicturePass]
    thumbnails: dict[int, list[tuple[float, int]]]
    apexes: set[tuple[int, int]]
    origin: float | None


def plan_pictures(job: VideoJob, pieces: list[PieceJob], stitched: VideoTables) -> Pictures:
    """The picture passes of a stitched video with a report or an annotated video, one per piece."""
    table = stitched.table
    thumbnails = thumbnail_frames(table, job.options.thumbnails_every_s, job.options.max_thumbnails) if job.report else {}
    apexes = apex_frames(table, stitched.episodes) if job.report else set()
    wanted = {(t, f) for t, kept in thumbnails.items() for _, f in kept}
    decoded = table.loc[table["status"] != "error", ["frame", "time_s"]].drop_duplicates("frame")
    origin = float(decoded["time_s"].iat[0]) if len(decoded) else None
    pts_at: dict[int, int] = {}  # frame -> its timestamp in the annotated video, as a whole run writes it
    last = -1
    for frame, time_s in zip(decoded["frame"].tolist(), decoded["time_s"].tolist()):
        last = pts_at[frame] = clock_pts(last, time_s, origin)
    passes = []
    ordered = sorted(pieces, key=lambda p: p.piece.number)
    for piece, count, end in zip(ordered, stitched.part_rows, np.cumsum(stitched.part_rows)):
        rows = table.iloc[end - count : end]
        frames = set(rows["frame"].tolist())
        first = next((pts_at[f] for f in rows["frame"].tolist() if f in pts_at), 0)
        passes.append(PicturePass(job, piece.piece, rows[PICTURE_COLUMNS].reset_index(drop=True),
                                  frozenset(p for p in wanted if p[1] in frames), frozenset(p for p in apexes if p[1] in frames),
                                  (origin, first) if job.annotated and origin is not None else None, work_folder(job)))
    return Pictures(passes, thumbnails, apexes, origin)


def finished_pictures(job: PicturePass) -> bool:
    """Whether an earlier run finished this pass (its faces file exists)."""
    return job.faces_file.exists()


def cut_pictures(_analyzer, job: PicturePass) -> Path:
    """Task of one picture pass (it needs no analyzer): decode the piece's own frames, draw its
    annotated video where asked and cut the report's faces it holds into its faces file. Raises
    SeamError when the frames decoded are not the table's."""
    options, number = job.video.options, job.piece.number
    spans = frame_spans(job.rows["frame"].to_numpy(np.int64))
    times = job.rows["time_s"].to_numpy(np.float64)
    table = TableFaces(job.rows)
    sink = None  # the piece's annotated video, opened at its first decoded frame
    cut: dict[str, bytes] = {}
    seen, completed = 0, False
    try:
        for frame in piece_frames(job.video.path, job.piece.start_s, piece_end(job.piece, options), options.stride):
            span = spans.get(frame.index)
            if span is None or abs(times[span[0]] - frame.time_s) > 1e-4:
                raise SeamError(f"piece {number}: frame {frame.index} at {frame.time_s:.3f} s is not one the pieces analysed")
            seen += 1
            faces = table.frame(*span)
            if frame.rgb is None:
                continue
            if job.clock is not None:
                if sink is None:
                    info = probe(job.video.path)
                    sink = VideoSink(job.annotated_stem, info.width, info.height, frame_rate(info, options),
                                     origin=job.clock[0], segment=True, first_pts=job.clock[1])
                sink.write(draw_video_faces(frame.rgb, faces), frame.time_s)
            if not len(faces):
                continue
            for i, track in enumerate(faces.track_ids.tolist()):
                if (track, frame.index) in job.thumbnails:
                    cut[f"thumbnail-{track}-{frame.index}"] = thumbnail_face(frame.rgb, faces, i)
                if (track, frame.index) in job.apexes:
                    cut[f"apex-{track}-{frame.index}"] = apex_face(frame.rgb, faces, i)
        if seen != len(spans):
            raise SeamError(f"piece {number}: {seen} frames decoded again, {len(spans)} analysed")
        completed = True
    finally:
        if sink is not None:
            sink.close(completed)  # a pass cut short leaves no video behind
    with atomic_path(job.faces_file) as tmp, open(tmp, "wb") as file:
        np.savez(file, **{name: np.frombuffer(jpeg, np.uint8) for name, jpeg in cut.items()})
    return job.faces_file


def _cut_faces(passes: list[PicturePass]) -> dict[tuple[str, int, int], bytes]:
    """(kind, track, frame) -> JPEG, from the passes' faces files."""
    faces = {}
    for job in passes:
        with np.load(job.faces_file) as saved:
            for name in saved.files:
                kind, track, frame = name.split("-")
                faces[kind, int(track), int(frame)] = saved[name].tobytes()
    return faces


def finish_pictures(job: VideoJob, stitched: VideoTables, pictures: Pictures) -> VideoOutcome:
    """Join the passes' annotated videos, write the report as ``run_video`` does and clear the work folder."""
    video = None
    if job.annotated is not None:
        video = AnnotatedVideo(job.annotated.with_suffix(""), origin=pictures.origin)
        parts = [path for p in pictures.passes if p.clock is not None and (path := video_path(p.annotated_stem, video.codec)).exists()]
        if parts:
            join_videos(parts, video.path)
        else:
            video = None
    if job.report is not None:
        faces = _cut_faces(pictures.passes)
        thumbnails = {t: [(time_s, faces["thumbnail", t, f]) for time_s, f in kept] for t, kept in pictures.thumbnails.items()}
        apexes = {(t, f): faces["apex", t, f] for t, f in pictures.apexes}
        write_report(job.report, ReportInputs(stitched.table, stitched.tracks, stitched.episodes, thumbnails,
                                              probe(job.path, job.options.sequence_fps), apexes, video, dict(job.settings),
                                              (job.out, stitched.tracks_path, stitched.episodes_path)))
    shutil.rmtree(work_folder(job), ignore_errors=True)
    return video_outcome(job, stitched, video.path if video else None)
