"""Face tracks within one video, without identity.

Each track carries its last mesh; the next frame's region of interest comes from it (as in
MediaPipe's video mode), so the detector runs only on every ``detect_every``-th frame (the first
included), to pick up new faces, and the cost per frame stays predictable whether or not faces
are in view; and on the frame after a track was lost, to pick the face up again at once if it is
still there. While no face is tracked, and after a loss, the detector runs as on a still image
(``auto``: the short range, and the full range where the short range cannot see or where the
landmark model rejects every face it found); otherwise, for
``auto`` and ``both``, the two models take turns, so a face that joins tracked ones is found within
``detect_every`` frames when it suits both models, else within ``2 * detect_every``. New
detections are matched to tracks by box overlap; a track ends when the landmark model's
presence drops below the threshold. A detection within ``relink_s`` seconds (default 0.5) of a
track's end that overlaps that track's last box continues it: the same place a moment later,
which is continuity in space and time, not recognition.
Track ids are integers that count up within one video: they do not recognise anyone, and a
person who leaves and comes back later, or somewhere else, gets a new id.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..detect import Detections, FaceDetector, box_iou
from ..landmarks import FaceMesher, Meshes, Roi, distinct_faces, mesh_boxes, roi_from_detections, roi_from_mesh
from ..mesh import LANDMARK_COUNT

MATCH_IOU = 0.3


@dataclass
class LostTrack:
    """A track whose face was not found on a recent frame; it may be picked up again within ``relink_s``."""

    id: int
    box: np.ndarray  # (4,) its last mesh box
    time_s: float  # the time of the first frame without it


@dataclass
class TrackState:
    """The tracker's memory: live track ids and their last meshes, recently lost tracks, frame count."""

    next_id: int = 0
    frames_seen: int = 0
    ids: list[int] = field(default_factory=list)
    meshes: np.ndarray = field(default_factory=lambda: np.zeros((0, LANDMARK_COUNT, 3), np.float32))
    lost: list[LostTrack] = field(default_factory=list)  # tracks lost within the last ``relink_s``
    lost_last_frame: bool = False


@dataclass(frozen=True)
class TrackedFaces:
    """The faces of one frame, each with its track id."""

    track_ids: np.ndarray  # (N,)
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1: the mesh's bounding box
    scores: np.ndarray  # (N,) detector score when detected this frame, else NaN
    meshes: Meshes


def _concat_rois(a: Roi, b: Roi) -> Roi:
    return Roi(np.concatenate([a.centre, b.centre]), np.concatenate([a.side, b.side]), np.concatenate([a.angle, b.angle]))


class FaceTracker:
    """Face tracks without identity: each face's next region comes from its last mesh; the detector
    runs every ``detect_every`` frames (and on the frame after a track is lost) to find new faces."""

    def __init__(self, detector: FaceDetector, mesher: FaceMesher, detect_every: int = 10,
                 min_presence: float = 0.5, max_faces: int = 32, relink_s: float = 0.5):
        self.detector = detector
        self.mesher = mesher
        self.detect_every = detect_every
        self.relink_s = relink_s
        self.min_presence = min_presence
        self.max_faces = max_faces
        self.state = TrackState()
        self._last_boxes = (None, None)  # (state meshes, their mesh_boxes) as the last step left them

    def step(self, rgb: np.ndarray, time_s: float) -> TrackedFaces:
        """Track the faces of the next frame (at ``time_s`` seconds)."""
        s = self.state
        s.lost = [t for t in s.lost if time_s - t.time_s <= self.relink_s]
        meshes_then, boxes_then = self._last_boxes
        tracked_boxes = boxes_then if meshes_then is s.meshes else mesh_boxes(s.meshes)
        tracked_rois = roi_from_mesh(s.meshes, tracked_boxes)
        ids = list(s.ids)
        scores = [np.nan] * len(ids)
        rois = tracked_rois
        scheduled = s.frames_seen % self.detect_every == 0
        det = None
        first_new_id = s.next_id
        if scheduled or s.lost_last_frame:
            ranges = self.detector.ranges
            only = ranges[(s.frames_seen // self.detect_every) % len(ranges)] if ids and not s.lost_last_frame else None
            det = self.detector(rgb, self.max_faces, only)
            rois = self._add_detections(det, tracked_boxes, tracked_rois, ids, scores)
        s.frames_seen += 1
        s.lost_last_frame = False
        if not len(rois.side):
            return TrackedFaces(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float32), Meshes.empty())
        meshes = self.mesher(rgb, rois)
        if (det is not None and not len(s.ids) and not (meshes.presence >= self.min_presence).any()
                and self.detector.looks_again(det)):  # with no face followed, as on a still image
            s.next_id = first_new_id
            ids, scores = [], []
            det = self.detector(rgb, self.max_faces, full_range=True)
            rois = self._add_detections(det, tracked_boxes, tracked_rois, ids, scores)
            meshes = self.mesher(rgb, rois)
        keep = np.flatnonzero(meshes.presence >= self.min_presence)
        all_ids = np.array(ids, np.int64)
        # Two tracks on one face (a second detection, or tracks that converged): the older one stays.
        keep = keep[distinct_faces(meshes.points[keep], -all_ids[keep].astype(np.float64))]
        kept = meshes if len(keep) == len(meshes.presence) else meshes.take(keep)  # keep is sorted and unique
        live = set(all_ids[keep].tolist())
        ended = [LostTrack(t, box, time_s) for t, box in zip(s.ids, tracked_boxes) if t not in live]
        s.lost = [t for t in s.lost if t.id not in live] + ended
        s.lost_last_frame = bool(ended)
        s.ids = all_ids[keep].tolist()
        s.meshes = kept.points.copy()  # the caller gets ``kept.points``; its boxes are cached for the next step
        boxes = mesh_boxes(kept.points)
        self._last_boxes = (s.meshes, boxes.copy())  # a copy: the caller gets ``boxes``
        return TrackedFaces(all_ids[keep], boxes, np.array(scores, np.float32)[keep], kept)

    def _add_detections(self, det: Detections, tracked_boxes: np.ndarray, tracked_rois: Roi, ids: list[int],
                        scores: list[float]) -> Roi:
        """The regions to mesh: the tracked ones and those of ``det``'s new faces, whose ids and
        scores are appended to ``ids`` and ``scores`` (a detection on a tracked face gives that
        track its score)."""
        new = []
        for k in range(len(det)):
            overlaps = box_iou(det.boxes[k], tracked_boxes) if len(tracked_boxes) else np.zeros(0)
            if overlaps.size and overlaps.max() > MATCH_IOU:
                j = int(overlaps.argmax())
                scores[j] = float(det.scores[k]) if np.isnan(scores[j]) else scores[j]
            elif len(ids) < self.max_faces:
                new.append(k)
                ids.append(self._id_for(det.boxes[k], taken=ids))
                scores.append(float(det.scores[k]))
        if not new:
            return tracked_rois
        picked = Detections(det.boxes[new], det.scores[new], det.keypoints[new])
        return _concat_rois(tracked_rois, roi_from_detections(picked))

    def _id_for(self, box: np.ndarray, taken: list[int]) -> int:
        """The id of a track lost within ``relink_s`` whose last box this detection overlaps (the
        same place, a moment later: most likely the same face found again); else a new id. The
        lost track stays on the list until its face's mesh is accepted."""
        s = self.state
        candidates = [t for t in s.lost if t.id not in taken]
        if candidates:
            overlaps = box_iou(box, np.stack([t.box for t in candidates]))
            j = int(overlaps.argmax())
            if overlaps[j] > MATCH_IOU:
                return candidates[j].id
        s.next_id += 1
        return s.next_id - 1
