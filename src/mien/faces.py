"""``Faces``: everything mien measured in one image or video frame, as arrays with the face first.

One type flows from the pipeline to every consumer (tables, pictures, reports, the audit): a
frozen dataclass whose per-face fields are arrays of length N (or typed batches of N faces), with
the image's own facts (source, frame, time, size, status) beside them. ``faces[mask]`` keeps the
faces a boolean mask or index array selects, in the spirit of supervision's ``Detections``.
Conventions: pixels of the image as read (x right, y down); angles in degrees; see ``mien schema``
for what each measure means and what it cannot tell.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .actions import ActionUnitResult
from .errors import InputError
from .geometry import Pose
from .mesh import LANDMARK_COUNT
from .perceived import Perceived
from .quality import Quality

OK, NO_FACE, ERROR = "ok", "no_face", "error"
OPTIONAL = ("pose", "quality", "iris", "gaze", "actions", "perceived", "track_ids", "au_baseline", "au_baseline_frames",
            "track_scores")


@dataclass(frozen=True)
class Faces:
    """The faces of one image (or video frame), N first.

    source, frame, time_s, width, height: the input's name (its path, or ``"<array>"``), its frame
    index, its time in seconds (video; else None) and its size in pixels. status: ``ok``,
    ``no_face`` or ``error``; error: why, for status ``error``; note: how the file was read, when
    that matters (reduced-size decoding, first of several frames).
    boxes: (N, 4) float32 x0, y0, x1, y1 in pixels. scores: (N,) detector confidence (NaN in video
    frames where the face was tracked, not detected). presence: (N,) landmark model's face-presence
    probability. landmarks: (N, 468, 3) pixels (biometric data: tables get them only on request).
    pose, quality: typed batches of N. iris: (N, 2, 2) iris centres, image-left eye first, or None
    when the iris model is off; gaze: (N, 2) yaw, pitch degrees, or None. actions, perceived: typed
    batches of N, or None when turned off. track_ids: (N,) int64 in video mode, else None;
    au_baseline: per face "population" or "track" in video mode, else None; au_baseline_frames: (N,)
    int64, the neutral-looking frames the track's neutral was built from (0: population), in video mode.
    track_scores: (N,) float32 in video mode, the detector score of each track's latest detection.
    """

    source: str = "<array>"
    frame: int = 0
    time_s: float | None = None
    width: int | None = None
    height: int | None = None
    status: str = NO_FACE  # ok | no_face | error
    error: str = ""
    note: str = ""  # how the file was read, when that matters (reduced-size decoding, first of several frames)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32), repr=False)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    presence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((0, LANDMARK_COUNT, 3), np.float32), repr=False)
    pose: Pose | None = field(default=None, repr=False)
    quality: Quality | None = field(default=None, repr=False)
    iris: np.ndarray | None = field(default=None, repr=False)
    gaze: np.ndarray | None = field(default=None, repr=False)
    actions: ActionUnitResult | None = field(default=None, repr=False)
    perceived: Perceived | None = field(default=None, repr=False)
    track_ids: np.ndarray | None = field(default=None, repr=False)
    au_baseline: tuple[str, ...] | None = field(default=None, repr=False)
    au_baseline_frames: np.ndarray | None = field(default=None, repr=False)
    track_scores: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> "Faces":
        """The faces selected by a boolean mask, an index array, a slice or an integer (kept as a batch of one)."""
        picked = np.arange(len(self))[index]
        picked = np.atleast_1d(picked)
        return replace(
            self,
            status=self.status if self.status == ERROR else (OK if len(picked) else NO_FACE),
            boxes=self.boxes[picked], scores=self.scores[picked], presence=self.presence[picked],
            landmarks=self.landmarks[picked],
            pose=None if self.pose is None else self.pose.take(picked),
            quality=None if self.quality is None else self.quality.take(picked),
            iris=None if self.iris is None else self.iris[picked],
            gaze=None if self.gaze is None else self.gaze[picked],
            actions=None if self.actions is None else self.actions.take(picked),
            perceived=None if self.perceived is None else self.perceived.take(picked),
            track_ids=None if self.track_ids is None else self.track_ids[picked],
            au_baseline=None if self.au_baseline is None else tuple(self.au_baseline[i] for i in picked),
            au_baseline_frames=None if self.au_baseline_frames is None else self.au_baseline_frames[picked],
            track_scores=None if self.track_scores is None else self.track_scores[picked],
        )

    @staticmethod
    def concat(batches: list["Faces"]) -> "Faces":
        """The faces of several batches as one (image-level fields from the first). Every batch must have
        the same measures turned on (``measured`` equal); ``to_frame`` groups them so."""
        first = batches[0]
        if any(b.measured != first.measured for b in batches):
            raise InputError("Faces.concat needs batches with the same measures turned on")

        def join(name: str, combine):
            parts = [getattr(b, name) for b in batches]
            return None if parts[0] is None else combine(parts)

        return replace(
            first,
            status=OK if any(len(b) for b in batches) else first.status,
            boxes=join("boxes", np.concatenate), scores=join("scores", np.concatenate),
            presence=join("presence", np.concatenate), landmarks=join("landmarks", np.concatenate),
            pose=join("pose", Pose.concat), quality=join("quality", Quality.concat), iris=join("iris", np.concatenate),
            gaze=join("gaze", np.concatenate), actions=join("actions", ActionUnitResult.concat),
            perceived=join("perceived", Perceived.concat), track_ids=join("track_ids", np.concatenate),
            au_baseline=join("au_baseline", lambda parts: tuple(k for p in parts for k in p)),
            au_baseline_frames=join("au_baseline_frames", np.concatenate),
            track_scores=join("track_scores", np.concatenate),
        )

    @property
    def measured(self) -> tuple[bool, ...]:
        """Which optional measures these faces carry (pose, quality, iris, gaze, actions, perceived, tracks)."""
        return tuple(getattr(self, name) is not None for name in OPTIONAL)

    @property
    def reliable(self) -> np.ndarray:
        """(N,) bool: every quality check passed."""
        return np.zeros(0, bool) if self.quality is None else self.quality.reliable

    @staticmethod
    def failed(source: str, message: str, frame: int = 0, time_s: float | None = None) -> "Faces":
        """An input that could not be read or decoded: no faces, status ``error`` and why (``message``),
        with its ``source``, ``frame`` and ``time_s`` as for any other row."""
        return Faces(source=source, frame=frame, time_s=time_s, status=ERROR, error=message)
