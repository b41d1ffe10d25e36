"""The pipeline: pixels → faces → landmarks → pose, quality, iris, action units, perceived expression.

``Analyzer(Options(...))`` loads the models once; ``analyze`` turns one image (image mode) or one
video frame (video mode) into ``Faces``, ``analyze_batch`` several video frames at once. Video mode
adds face tracks (continuity in space and time, not identity), smoothing over time and per-track
action-unit baselines, and so needs the frames in time order.
"""
from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from . import actions
from .checks import to_rgb
from .detect import DetectorRange, FaceDetector
from .errors import InputError, OptionsError, TimestampError
from .faces import Faces
from .images import DecodedImage, ImageReadError, decode_image
from .landmarks import FaceMesher, IrisLocator, Meshes, distinct_faces, mesh_boxes, roi_from_detections
from .measure import FaceMeasurer, measured_faces
from .perceived import PerceivedModel
from .quality import QualityThresholds
from .small_faces import enlarge_small_image, search_regions
from .video.decode import Frame


class Mode(str, enum.Enum):
    """IMAGE: every call is a separate picture. VIDEO: calls are frames of one video, in time order."""

    IMAGE = "image"
    VIDEO = "video"


AU_BASELINES = ("track", "population")


@dataclass(frozen=True)
class Options:
    """What the pipeline measures and how; validated on construction (``OptionsError``).

    mode: ``Mode.IMAGE`` (default) or ``Mode.VIDEO``.
    detector: face detector: ``"short"`` (faces within about 2 m), ``"full"`` (small, distant faces),
        ``"both"``, or ``"auto"`` (default: short range, and full range too where short range cannot
        see; ``mien.detect.needs_full_range``).
    min_detection_score: detector confidence a face needs, 0..1 (default 0.5).
    min_presence: landmark model's face-presence probability a face needs, 0..1 (default 0.5, as MediaPipe).
    max_faces: most faces per image, >= 1 (default 32).
    iris: run the iris model for iris centres and gaze (about 1.3 ms per face).
    action_units: measure FACS action units from the mesh.
    perceived: run the perceived-expression model (how observers would label the face; not what anyone feels).
    quality: thresholds of the reliability checks (docs/quality.md).
    num_threads: threads per model, >= 1 (default 1: parallelism comes from running several processes).
    Video mode only:
    detect_every: run the detector every N frames to find new faces, >= 1 (default 10); between,
        faces are tracked from their landmarks.
    smooth: smooth landmarks, pose and perceived shares over time (One Euro filter).
    perceived_hz: with smoothing, run the perceived-expression model on each track at most this
        often (default 10 Hz; None: every frame).
    au_baseline: the action units' neutral reference: ``"track"`` (the track's own neutral, from its
        frames that look neutral, once it has ``baseline_min_frames`` of them; default; see
        video/baseline.py) or ``"population"``.
    baseline_min_frames, baseline_window: neutral-looking frames a track needs before its own
        neutral is used, and how many of its latest such frames that neutral is taken over.
    Landmarks are measured always, since everything else derives from them; they reach a table only
    when ``to_frame(..., landmarks=True)`` (``mien analyze --landmarks``) asks for them, because they
    are biometric data.
    """

    mode: Mode = Mode.IMAGE
    detector: DetectorRange = DetectorRange.AUTO
    min_detection_score: float = 0.5
    min_presence: float = 0.5
    max_faces: int = 32
    iris: bool = True
    action_units: bool = True
    perceived: bool = True
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    num_threads: int = 1
    detect_every: int = 10
    smooth: bool = True
    perceived_hz: float | None = 10.0
    au_baseline: str = "track"
    baseline_min_frames: int = 15
    baseline_window: int = 900

    def __post_init__(self):
        try:
            object.__setattr__(self, "mode", Mode(self.mode))
            object.__setattr__(self, "detector", DetectorRange(self.detector))
        except ValueError as exc:
            raise OptionsError(f"Options: {exc}") from None
        for name, low, high in (("min_detection_score", 0.0, 1.0), ("min_presence", 0.0, 1.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                raise OptionsError(f"Options.{name} must be a number in {low}..{high}, not {value!r}")
        for name, low in (("max_faces", 1), ("num_threads", 1), ("detect_every", 1), ("baseline_min_frames", 1),
                          ("baseline_window", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise OptionsError(f"Options.{name} must be an integer >= {low}, not {value!r}")
        if self.perceived_hz is not None and not (isinstance(self.perceived_hz, (int, float)) and self.perceived_hz > 0):
            raise OptionsError(f"Options.perceived_hz must be positive or None (every frame), not {self.perceived_hz!r}")
        if self.au_baseline not in AU_BASELINES:
            raise OptionsError(f"Options.au_baseline must be one of {', '.join(AU_BASELINES)}, not {self.au_baseline!r}")
        if self.baseline_window < self.baseline_min_frames:
            raise OptionsError(f"Options.baseline_window ({self.baseline_window}) must be at least baseline_min_frames "
                               f"({self.baseline_min_frames})")
        if not isinstance(self.quality, QualityThresholds):
            raise OptionsError(f"Options.quality must be a QualityThresholds, not {type(self.quality).__name__}")

    def as_dict(self) -> dict[str, str]:
        """Every field as text (for fingerprints and run settings)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


class Analyzer:
    """Loads the models once; ``analyze`` measures the faces of an image or, in video mode, of the next frame.

    ``options``: what to measure and how (default ``Options()``: image mode, every measure on);
    anything other than ``Options`` raises OptionsError.

    >>> analyzer = Analyzer()                                   # image mode
    >>> faces = analyzer.analyze("photo.jpg")                   # path, RGB array or PIL image
    >>> video = Analyzer(Options(mode=Mode.VIDEO))
    >>> for frame in read_video("clip.mp4"):                     # doctest: +SKIP
    ...     faces = video.analyze(frame)                         # or video.analyze(rgb, time_s=t)
    >>> # or several frames at a time (faster, same results): video.analyze_batch(frames)
    """

    def __init__(self, options: Options | None = None):
        self.options = options or Options()
        if not isinstance(self.options, Options):
            raise OptionsError(f"Analyzer takes mien.Options, not {type(self.options).__name__}")
        o = self.options
        self._detector = FaceDetector(o.detector, o.min_detection_score, o.num_threads)
        self._mesher = FaceMesher(o.num_threads)
        self._perceiver = PerceivedModel(o.num_threads) if o.perceived else None
        self._measurer = FaceMeasurer(o.quality, o.action_units, IrisLocator(o.num_threads) if o.iris else None,
                                      self._perceiver)
        self._video = None
        if o.mode is Mode.VIDEO:
            from .video.session import VideoSession

            self._video = VideoSession(self._detector, self._mesher, self._measurer, o)

    # ------------------------------------------------------------------------------ public
    def analyze(self, image, *, time_s: float | None = None, source: str | None = None,
                frame: int | None = None) -> Faces:
        """The faces of one image, or of the next video frame.

        image: a path, an RGB uint8 array (H, W, 3), a PIL image, or (video mode) a ``mien.Frame``
            from ``read_video``, which brings its own time and index (a frame that failed to decode
            gives ``Faces`` with status ``error``).
        time_s: video mode: the frame's time in seconds, never earlier than the previous frame's
            (``TimestampError`` otherwise). Image mode: must be None.
        source, frame: what the table's ``source`` and ``frame`` columns say (default: the path, or
            ``"<array>"``; frame 0, or the count of frames analysed in video mode).
        Raises ``InputError`` for pixels of the wrong type, dtype or shape and ``ImageReadError`` for
        a file that cannot be read (``analyze_file`` returns an error row instead).
        """
        if isinstance(image, Frame):
            return self.analyze_batch([image if frame is None else replace(image, index=frame)], source=source)[0]
        if isinstance(image, (str, os.PathLike)):
            decoded = decode_image(image)
            faces = self.analyze(decoded.rgb, time_s=time_s, source=str(image) if source is None else source, frame=frame)
            return in_file_pixels(faces, decoded)
        rgb = to_rgb(image)
        source = "<array>" if source is None else source
        if self._video is None:
            if time_s is not None:
                raise InputError("time_s is for video mode: create the analyzer with Options(mode=Mode.VIDEO)")
            return self._describe(self._detect_and_measure(rgb), rgb, source, 0 if frame is None else frame, None)
        index = self._video.state.frames_seen if frame is None else frame
        return self._analyze_frames([Frame(index, time_s, rgb)], source)[0]

    def analyze_batch(self, frames: Sequence[Frame], *, source: str | None = None) -> list[Faces]:
        """Video mode: the faces of several frames, the next ones of the video in time order, one
        ``Faces`` each; the same as ``analyze`` on each frame in turn, but faster, since the faces of
        all of them are measured together (``mien.video.analysis`` reads 16 frames at a time).

        frames: ``mien.Frame`` objects (as ``read_video`` gives them), each with its index and its
        time in seconds, never earlier than the previous frame's (``TimestampError`` otherwise,
        raised before any frame is analysed); a frame that failed to decode gives ``Faces`` with
        status ``error``. source: what the table's ``source`` column says (default ``"<video>"``).
        Raises ``InputError`` in image mode, or for pixels of the wrong type, dtype or shape.
        """
        if self._video is None:
            raise InputError("a video Frame needs Options(mode=Mode.VIDEO)")
        return self._analyze_frames(frames, source or "<video>")

    def analyze_file(self, path: str | Path) -> Faces:
        """Like ``analyze(path)`` in image mode, but a file that cannot be read gives ``Faces`` with
        status ``error`` and the reason, instead of an exception."""
        try:
            return self.analyze(path)
        except ImageReadError as exc:
            return Faces.failed(str(path), str(exc))

    def reset(self) -> None:
        """Video mode: forget all tracks and state, to start a new video."""
        if self._video is not None:
            self._video.reset()

    @property
    def video_state(self):
        """Video mode: the tracking, smoothing and baseline state (plain data, for checkpoints)."""
        return None if self._video is None else self._video.state

    def restore_video_state(self, state) -> None:
        """Video mode: continue from a state saved from ``video_state``."""
        if self._video is None:
            raise InputError("restore_video_state needs Options(mode=Mode.VIDEO)")
        self._video.restore(state)

    # ---------------------------------------------------------------------------- pipeline
    def _analyze_frames(self, frames: Sequence[Frame], source: str) -> list[Faces]:
        """Video mode: the faces of ``frames`` in order, every frame's pixels and time checked first."""
        decoded = [f for f in frames if f.rgb is not None]
        pixels = [to_rgb(f.rgb) for f in decoded]
        self._check_times([f.time_s for f in decoded])
        measured = self._video.process([(rgb, float(f.time_s), f.index) for f, rgb in zip(decoded, pixels)])
        described = iter([self._describe(faces, rgb, source, f.index, float(f.time_s))
                          for faces, f, rgb in zip(measured, decoded, pixels)])
        return [next(described) if f.rgb is not None else Faces.failed(source, f.error, f.index, f.time_s) for f in frames]

    def _check_times(self, times: list[float | None]) -> None:
        """Video frames' times must be finite and never go backwards (from the last frame analysed on)."""
        previous = self._video.state.last_time_s
        for time_s in times:
            if time_s is None or not np.isfinite(time_s):
                raise InputError(f"video mode needs each frame's time in seconds (time_s=), got {time_s!r}")
            if previous is not None and time_s < previous:
                raise TimestampError(f"time went backwards: frame at {time_s:.6f} s after one at {previous:.6f} s; "
                                     "start a new video with reset()")
            previous = time_s

    def _detect_and_measure(self, rgb: np.ndarray) -> Faces:
        # Small images are detected and meshed enlarged, then measured in their own pixels (mien.small_faces).
        seen, enlargement = enlarge_small_image(rgb)
        det, meshes, keep = self._confirmed_faces(seen)
        if not len(keep) and self._detector.looks_again(det):
            det, meshes, keep = self._confirmed_faces(seen, full_range=True)
        keep = keep[distinct_faces(meshes.points[keep], det.scores[keep] * meshes.presence[keep])]
        boxes, scores, meshes = det.boxes[keep], det.scores[keep], meshes.take(keep)
        searched = not len(keep) and not enlargement.identity
        if searched:
            boxes, scores, meshes = self._searched_face(seen, search_regions(*rgb.shape[:2], enlargement))
        boxes, meshes = enlargement.boxes_to_original(boxes), enlargement.meshes_to_original(meshes)
        return self._measure(rgb, boxes, scores, meshes, searched)

    def _searched_face(self, seen: np.ndarray, regions) -> tuple[np.ndarray, np.ndarray, Meshes]:
        """Boxes, scores and meshes of a small image's face that no detector placed: of the meshes in
        ``regions``, the one surest of a face, if a detector finds a face in its crop (``mien.small_faces``)."""
        meshes = self._mesher(seen, regions)
        best = meshes.take([int(np.argmax(meshes.presence))])
        if best.presence[0] >= self.options.min_presence:
            confirmed = self._detector(best.crops[0], max_faces=1)
            if len(confirmed):
                return mesh_boxes(best.points), confirmed.scores, best
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), Meshes.empty()

    def _confirmed_faces(self, rgb: np.ndarray, full_range: bool = False):
        """Detections, their meshes, and the indices of those the landmark model confirms (presence)."""
        det = self._detector(rgb, max_faces=self.options.max_faces, full_range=full_range)
        meshes = self._mesher(rgb, roi_from_detections(det))
        return det, meshes, np.flatnonzero(meshes.presence >= self.options.min_presence)

    def _measure(self, rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, meshes: Meshes, searched: bool) -> Faces:
        """Pose, quality, iris, action units and perceived expression of an image's faces whose meshes
        are known; ``searched``: found by the small-image search (so never ``reliable``)."""
        m = self._measurer
        measures = m.measure([meshes], [m.cut(rgb, meshes)], np.full(len(scores), searched))
        units = None if measures.raw_units is None else actions.analyse_measures(measures.raw_units)
        return measured_faces(boxes, scores, measures, units, None if m.perceiver is None else m.perceived(measures))

    @staticmethod
    def _describe(faces: Faces, rgb: np.ndarray, source: str, frame: int, time_s: float | None) -> Faces:
        h, w = rgb.shape[:2]
        return replace(faces, source=source, frame=int(frame), time_s=time_s, width=w, height=h)


def in_file_pixels(faces: Faces, image: DecodedImage) -> Faces:
    """``faces`` measured on ``image``'s pixels, in the file's own pixels: scaled back when a very
    large JPEG was decoded at reduced size, with the file's size and how it was read."""
    k = image.scale
    if k != 1 and len(faces):
        faces = replace(faces, boxes=faces.boxes * k, landmarks=faces.landmarks * k,
                        iris=None if faces.iris is None else faces.iris * k,
                        quality=replace(faces.quality, iod_px=faces.quality.iod_px * k))
    return replace(faces, width=image.width, height=image.height, note=image.note)
