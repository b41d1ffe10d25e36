"""What ``run_video`` feeds during its one decoding pass, besides the tables: frame sinks.

A sink sees every analysed frame, pixels and faces together, while the frame is in memory: the
annotated video is drawn and encoded there, and the report's faces (thumbnails along each track,
faces at episode apexes) are cut there, so nothing decodes the video a second time. (A long video
analysed in pieces is the exception: its pieces' frames are decoded again once the tables are
stitched, and drawn and cut with the same sink and functions, see ``scale.pictures``.)

A run calls ``open`` once, ``add`` for each frame, ``state`` at each checkpoint and ``finish`` at
the end. A run resumed from a checkpoint calls ``restore`` with what ``state`` returned there
instead of showing the sink the frames before it again. ``state`` returns data only (JSON-able
values and numpy arrays, stored in the checkpoint as ``checkpoint.py`` describes); files a sink
keeps in the work folder are listed under ``"files"`` in it, and a resumed run keeps them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import actions
from ..annotate import VideoSink, browser_codec, draw_video_faces, face_thumbnail, join_videos, pixel_boxes, video_path
from ..faces import Faces
from .checkpoint import CheckpointUnusable
from .decode import Frame, VideoInfo
from .summaries import EPISODE_GAP_S, reported_units

APEX_CROP_PX = 64
THUMBNAIL_PX = 72
TOP_EPISODES = 12  # episodes per track whose apex faces the report shows


def check_state(ok: bool, reason: str) -> None:
    """Raise CheckpointUnusable with ``reason`` unless ``ok``: for ``restore``, which reads data a
    checkpoint from elsewhere may have planted (the run then starts afresh)."""
    if not ok:
        raise CheckpointUnusable(reason)


class FrameSink:
    """Base of what ``run_video(sinks=...)`` feeds with each analysed frame. Subclasses override
    what they need; ``name`` must be unique within a run (it keys the sink's checkpoint state and
    is part of the run's fingerprint, so resuming with other sinks starts afresh). A sink that keeps
    nothing across a stopped run can leave ``state`` and ``restore`` alone: after a resume it sees
    only the frames after the checkpoint."""

    name = "sink"

    def open(self, work: Path, info: VideoInfo, fps: float) -> None:
        """Called once before the first frame (again, with fresh state, if a checkpoint turns out
        unusable): the run's ``work`` folder, the video's ``probe`` ``info`` and ``fps``, the rate of
        the frames given."""

    def add(self, frame: Frame, faces: Faces) -> None:
        """One analysed frame (``frame.rgb`` is None when it could not be decoded) and its faces."""

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """At a checkpoint: what a resumed run needs, as (JSON-able dict, arrays). What was added
        so far must be on disk when this returns."""
        return {}, {}

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Take back a state that ``state`` returned, ``meta`` and ``arrays`` (after ``open``); raise
        CheckpointUnusable (see ``check_state``) when it is malformed."""

    def finish(self, ok: bool) -> None:
        """The run ended: with ``ok``, write what the sink makes; else drop what it started."""


# ------------------------------------------------------------------------------ the report's faces
def keep_thumbnails(thumbnails: dict, tracks, time_s: float, cut, every_s: float = 2.0, most: int = 12) -> None:
    """Add a face of each of a frame's ``tracks`` (ids, the frame at ``time_s``) to ``thumbnails``
    (track -> [(time_s, cut(i))], ``i`` the face's place in the frame), spread over the whole track:
    at most twice ``most`` are kept; when there are more, every other one goes, and new ones come at
    least as far apart as the track's length over that number (and ``every_s``). ``cut`` is called
    only for the faces kept: a run cuts the JPEG there (``thumbnail_face``), a table's rows can keep
    their frame instead."""
    limit = 2 * most
    for i, t in enumerate(tracks):
        kept = thumbnails.setdefault(t, [])
        if kept and time_s - kept[-1][0] < max(every_s, (time_s - kept[0][0]) / limit):
            continue
        if len(kept) >= limit:
            kept[:] = kept[::2]
        kept.append((time_s, cut(i)))


def thumbnail_face(rgb: np.ndarray, faces: Faces, i: int) -> bytes:
    """The report's 72 px JPEG of face ``i`` of a frame (``rgb``) along its track."""
    x0, y0, x1, y1 = faces.boxes[i].astype(float)
    return face_thumbnail(rgb, (x0, y0, x1 - x0, y1 - y0), size=THUMBNAIL_PX, margin=0.1)


def apex_face(rgb: np.ndarray, faces: Faces, i: int) -> bytes:
    """The report's 64 px JPEG of face ``i`` of a frame (``rgb``) at an episode's apex."""
    return face_thumbnail(rgb, tuple(pixel_boxes(faces)[i]), size=APEX_CROP_PX)


class EpisodeApexes:
    """The faces at the apexes of each track's strongest action-unit episodes, found as the frames
    go by. Episodes and apexes are those ``summaries.action_unit_episodes`` finds in the finished
    table: runs of frames where a unit is present, joined over gaps up to EPISODE_GAP_S; the apex
    is the first frame of the largest intensity within the run's span. A face's crop is kept while
    it is, or may still become, the apex of one of its track's ``top`` strongest episodes (ties
    kept), so ``crops`` holds the face of every apex the report can show."""

    def __init__(self, experimental: bool = False, top: int = TOP_EPISODES):
        wanted = set(reported_units(experimental))
        self.units = np.array([k for k, c in enumerate(actions.columns()) if c in wanted], int)
        self.top = top
        self.tracks: dict[int, dict[str, np.ndarray]] = {}
        self.closed: dict[int, list[tuple[float, int]]] = {}  # track -> [(peak, apex frame)] of ended episodes
        self.crops: dict[tuple[int, int], bytes] = {}  # (track, frame) -> JPEG

    def _new_track(self) -> dict[str, np.ndarray]:
        k = len(self.units)
        return {"open": np.zeros(k, bool), "last_s": np.zeros(k), "best": np.full(k, -np.inf),
                "best_frame": np.full(k, -1, np.int64), "pending": np.full(k, -np.inf),
                "pending_frame": np.full(k, -1, np.int64)}

    def add(self, faces: Faces, rgb: np.ndarray) -> None:
        """One frame's faces (with track ids and action units) and its pixels."""
        if faces.actions is None or faces.track_ids is None:
            return
        # at the table's precision (float32), so that ties fall as they do in the finished table
        values = faces.actions.intensity[:, self.units].astype(np.float32).astype(float)
        present = faces.actions.present[:, self.units]
        for i, track in enumerate(faces.track_ids.tolist()):
            if self.step(track, faces.frame, float(faces.time_s), values[i], present[i]):
                self.crops[track, faces.frame] = apex_face(rgb, faces, i)

    def step(self, track: int, frame: int, time_s: float, value: np.ndarray, present: np.ndarray) -> bool:
        """Advance ``track``'s episodes by one row (its intensities and present flags over the
        reported units, ``units``); returns whether this row's face must be kept in ``crops``."""
        s = self.tracks.get(track)
        if s is None:
            s = self.tracks[track] = self._new_track()
        value = np.where(np.isnan(value), -np.inf, value)
        ended = s["open"] & (time_s - s["last_s"] > EPISODE_GAP_S)
        self.closed.setdefault(track, []).extend(zip(s["best"][ended].tolist(), s["best_frame"][ended].tolist()))
        s["open"] &= ~ended
        joined = s["open"] & present
        # rows between the episode's present rows belong to its span: the best of them counts once the run goes on
        later = joined & (s["pending"] > s["best"])
        s["best"][later], s["best_frame"][later] = s["pending"][later], s["pending_frame"][later]
        better = joined & (value > s["best"])
        started = present & ~joined
        take = better | started
        s["best"][take], s["best_frame"][take] = value[take], frame
        s["open"] |= present
        s["last_s"][present] = time_s
        s["pending"][present], s["pending_frame"][present] = -np.inf, -1
        waiting = s["open"] & ~present & (value > s["pending"])
        s["pending"][waiting], s["pending_frame"][waiting] = value[waiting], frame
        return bool(take.any() or waiting.any())

    def prune(self) -> None:
        """Drop the ended episodes that can no longer be among their track's ``top`` strongest, and
        the crops no episode points to."""
        needed = set()
        for track, s in self.tracks.items():
            closed = self.closed.get(track, [])
            peaks = sorted([p for p, _ in closed] + s["best"][s["open"]].tolist(), reverse=True)
            floor = peaks[self.top - 1] if len(peaks) >= self.top else -np.inf
            closed[:] = [(p, f) for p, f in closed if p >= floor]
            needed |= {(track, f) for _, f in closed}
            needed |= {(track, int(f)) for f in s["best_frame"][s["open"]]}
            needed |= {(track, int(f)) for f in s["pending_frame"][s["open"]] if f >= 0}
        self.crops = {key: jpeg for key, jpeg in self.crops.items() if key in needed}

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(meta, arrays) for a checkpoint, after ``prune``."""
        self.prune()
        meta = {"units": self.units.tolist(), "tracks": sorted(self.tracks),
                "closed": [[t, [[p, f] for p, f in self.closed.get(t, [])]] for t in sorted(self.tracks)],
                "crops": [[t, f] for t, f in self.crops]}
        arrays = {f"apex.{t}.{name}": a for t, s in self.tracks.items() for name, a in s.items()}
        arrays.update({f"apex_crop.{i}": np.frombuffer(jpeg, np.uint8) for i, jpeg in enumerate(self.crops.values())})
        return meta, arrays

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Take back what ``state`` returned; CheckpointUnusable when it is malformed."""
        check_state(meta.get("units") == self.units.tolist(), "its episodes are of other action units")
        tracks, closed, crops = meta.get("tracks"), meta.get("closed"), meta.get("crops")
        check_state(isinstance(tracks, list) and all(type(t) is int for t in tracks), "its apex tracks are malformed")
        check_state(isinstance(closed, list) and len(closed) == len(tracks)
                    and all(isinstance(c, list) and len(c) == 2 for c in closed) and [c[0] for c in closed] == tracks,
                    "its ended episodes are malformed")
        check_state(isinstance(crops, list) and all(isinstance(c, list) and len(c) == 2 and all(type(v) is int for v in c)
                                                    for c in crops), "its apex faces are malformed")
        template = self._new_track()
        restored = {}
        for t in tracks:
            restored[t] = {}
            for name, like in template.items():
                a = arrays.pop(f"apex.{t}.{name}", None)
                check_state(a is not None and a.dtype == like.dtype and a.shape == like.shape, f"apex array {name} is malformed")
                restored[t][name] = a.copy()
        episodes = {}
        for t, pairs in closed:
            check_state(isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 and type(p[0]) in (int, float)
                                                        and type(p[1]) is int for p in pairs), "an ended episode is malformed")
            episodes[t] = [(float(p), f) for p, f in pairs]
        jpegs = {}
        for i, (t, f) in enumerate(crops):
            a = arrays.pop(f"apex_crop.{i}", None)
            check_state(a is not None and a.dtype == np.uint8 and a.ndim == 1, "an apex face is malformed")
            jpegs[t, f] = a.tobytes()
        self.tracks, self.closed, self.crops = restored, episodes, jpegs


class ReportFaces(FrameSink):
    """The faces a video report shows: thumbnails along each track (see ``keep_thumbnails``) and
    the faces at episode apexes (``EpisodeApexes``); cut from the frames as they are analysed."""

    name = "report-faces"

    def __init__(self, thumbnails_every_s: float = 2.0, max_thumbnails: int = 12, experimental_units: bool = False):
        self.every_s, self.most, self.experimental = thumbnails_every_s, max_thumbnails, experimental_units
        self.thumbnails: dict = {}
        self.apexes = EpisodeApexes(experimental_units)

    def open(self, work: Path, info: VideoInfo, fps: float) -> None:
        """Start with no faces kept."""
        self.thumbnails = {}
        self.apexes = EpisodeApexes(self.experimental)

    def add(self, frame: Frame, faces: Faces) -> None:
        """Keep this frame's faces that the report may show."""
        if frame.rgb is None or not len(faces):
            return
        keep_thumbnails(self.thumbnails, faces.track_ids.tolist(), faces.time_s,
                        lambda i: thumbnail_face(frame.rgb, faces, i), self.every_s, self.most)
        self.apexes.add(faces, frame.rgb)

    def apex_faces(self, pairs) -> dict[tuple[int, int], bytes]:
        """The JPEG of each (track, frame) in ``pairs`` that was kept (see ``report.apex_frames``)."""
        return {pair: self.apexes.crops[pair] for pair in pairs if pair in self.apexes.crops}

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The thumbnails and the episodes' state, the faces as JPEG bytes."""
        meta, arrays = self.apexes.state()
        meta["thumbnails"] = [[t, [time_s for time_s, _ in kept]] for t, kept in self.thumbnails.items()]
        for t, kept in self.thumbnails.items():
            for i, (_, jpeg) in enumerate(kept):
                arrays[f"thumbnail.{t}.{i}"] = np.frombuffer(jpeg, np.uint8)
        return meta, arrays

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Take back the thumbnails and episodes ``state`` returned."""
        arrays = dict(arrays)
        self.apexes.restore(meta, arrays)
        saved = meta.get("thumbnails")
        check_state(isinstance(saved, list) and all(isinstance(p, list) and len(p) == 2 and type(p[0]) is int
                                                    and isinstance(p[1], list) for p in saved), "thumbnails are malformed")
        thumbnails = {}
        for t, times in saved:
            kept = []
            for i, time_s in enumerate(times):
                a = arrays.pop(f"thumbnail.{t}.{i}", None)
                check_state(type(time_s) in (int, float) and a is not None and a.dtype == np.uint8 and a.ndim == 1,
                            "a thumbnail is malformed")
                kept.append((float(time_s), a.tobytes()))
            thumbnails[t] = kept
        check_state(not arrays, f"it holds arrays this version does not write: {', '.join(sorted(arrays)[:3])}")
        self.thumbnails = thumbnails


# --------------------------------------------------------------------------- the annotated video
class AnnotatedVideo(FrameSink):
    """The video with each analysed frame's faces drawn on it (``annotate.draw_video_faces``:
    box, track, action units present, perceived label), encoded as the frames are analysed into
    ``stem`` plus the suffix of the encoder used (``annotate.VideoSink``): ``path`` once finished.
    Between checkpoints it writes segments into the run's work folder; at the end they are joined
    into one file without encoding again. ``playable``: whether browsers play it; ``first_time``:
    the source time (seconds) of its first frame."""

    name = "annotated-video"

    def __init__(self, stem: str | Path, codec: tuple[str, str] | None | str = "auto", origin: float | None = None):
        """``codec``: (encoder, suffix), None for MPEG-4 Part 2, or "auto" (``annotate.browser_codec()``).
        ``origin``: the source time (seconds) of the video's clock zero (None: its first frame's)."""
        self.stem = Path(stem)
        self.codec = browser_codec() if codec == "auto" else codec
        self.playable = self.codec is not None
        self.path = video_path(self.stem, self.codec)
        self.origin = origin
        self.first_time: float | None = origin

    def open(self, work: Path, info: VideoInfo, fps: float) -> None:
        """Start with no segment, in ``work``, at the size of the video ``info`` describes and at ``fps``."""
        self.work, self.info, self.fps = work, info, fps
        self.segments: list[str] = []
        self.first_time = self.origin
        self.next_pts = 0  # the joined file's clock must go on rising from one segment to the next
        self.joined = False
        self._segment = None

    def add(self, frame: Frame, faces: Faces) -> None:
        """Draw the faces on the frame and encode it into the open segment (a frame that could not be decoded is skipped)."""
        if frame.rgb is None:
            return
        if self._segment is None:
            self._segment = VideoSink(self.work / f"annotated-{len(self.segments):05d}", self.info.width, self.info.height,
                                      self.fps, self.codec, origin=self.first_time, segment=True, first_pts=self.next_pts)
        self._segment.write(draw_video_faces(frame.rgb, faces), frame.time_s)
        self.first_time = self._segment.origin

    def _close_segment(self, ok: bool = True) -> None:
        if self._segment is not None:
            self._segment.close(ok)
            if ok:
                self.segments.append(self._segment.path.name)
                self.next_pts = self._segment.next_pts
            self._segment = None

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Close the open segment; the segments so far, the encoder and the video's start time."""
        self._close_segment()
        return {"files": list(self.segments), "codec": list(self.codec or ()), "first_time": self.first_time,
                "next_pts": self.next_pts}, {}

    def restore(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        """Take back the segments written before the checkpoint, from ``meta`` (``arrays`` must be
        empty); refused when the encoder differs."""
        check_state(meta.get("codec") == list(self.codec or ()), "its video segments are in another encoding")
        files, first, next_pts = meta.get("files"), meta.get("first_time"), meta.get("next_pts")
        check_state(files == [f"annotated-{i:05d}{self.path.suffix}" for i in range(len(files or []))],
                    "its list of video segments is malformed")
        check_state(first is None if not files else type(first) in (int, float) and math.isfinite(first),
                    "its video start time is malformed")
        check_state(type(next_pts) is int and next_pts >= 0, "its video clock is malformed")
        check_state(not arrays, "it holds arrays an annotated video does not write")
        self.segments, self.first_time, self.next_pts = list(files), first, next_pts

    def finish(self, ok: bool) -> None:
        """Join the segments into ``path`` (with ``ok``); else drop the open segment."""
        self._close_segment(ok)
        if ok and self.segments:
            join_videos([self.work / name for name in self.segments], self.path)
            self.joined = True

    @property
    def written(self) -> bool:
        """Whether this run wrote the video at ``path`` (a run without a decoded frame writes none)."""
        return self.joined
