"""Measuring faces whose meshes are known: pose, quality, iris and gaze, action units, perceived expression.

In two steps, so that video mode can measure the faces of many frames at once: ``FaceMeasurer.cut``
takes from one frame's pixels what needs them (the iris model's points, the perceived model's
crops) while the frame is at hand, and ``FaceMeasurer.measure`` computes the rest from the meshes
and those cuts for the faces of any number of frames together (numpy's cost is mostly per call, not
per face). A face's measures do not depend on the other faces measured with it, to the last bit, so
a video measured in batches gives the tables of one measured frame by frame. What depends on
earlier frames (per-track baselines, smoothing over time) is video/session.py's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import actions
from .faces import NO_FACE, OK, Faces
from .geometry import Pose, gaze_angles, head_pose, to_canonical_frame
from .landmarks import Irises, IrisLocator, Meshes
from .perceived import CLASSES as PERCEIVED_CLASSES, FACE_SIZE, Perceived, PerceivedModel, aligned_face_crops, energy_score
from .quality import Quality, QualityThresholds, assess


@dataclass(frozen=True)
class PixelCuts:
    """What measuring N faces needs from their frame's pixels: the iris model's points (None when it
    is off), and the perceived model's crops (M, 48, 48) of the faces that ``perceive`` (N,) marks."""

    irises: Irises | None
    perceive: np.ndarray
    crops: np.ndarray

    @staticmethod
    def concat(cuts: list[PixelCuts]) -> PixelCuts:
        """The cuts of several frames' faces, in order."""
        irises = None if cuts[0].irises is None else Irises(np.concatenate([c.irises.centres for c in cuts]),
                                                            np.concatenate([c.irises.corners for c in cuts]))
        return PixelCuts(irises, np.concatenate([c.perceive for c in cuts]), np.concatenate([c.crops for c in cuts]))


@dataclass(frozen=True)
class FaceMeasures:
    """What N faces' meshes and cuts give by themselves: their landmarks and presence (as the meshes
    had them), pose and quality; iris centres and gaze (None without the iris model); raw action-unit
    measures (N, K) (None when they are off); the perceived model's logits (N, 8) float32, NaN for
    faces it did not run on (None when it is off)."""

    landmarks: np.ndarray
    presence: np.ndarray
    pose: Pose
    quality: Quality
    iris: np.ndarray | None
    gaze: np.ndarray | None
    raw_units: np.ndarray | None
    logits: np.ndarray | None


class FaceMeasurer:
    """Measures faces whose meshes are known, with the iris and perceived models given (None: off)."""

    def __init__(self, thresholds: QualityThresholds, action_units: bool, iris: IrisLocator | None,
                 perceiver: PerceivedModel | None):
        self.thresholds = thresholds
        self.action_units = action_units
        self.iris = iris
        self.perceiver = perceiver

    def cut(self, rgb: np.ndarray, meshes: Meshes, perceive: np.ndarray | None = None) -> PixelCuts:
        """What ``meshes``' faces need from ``rgb``; the perceived model's crops only of the faces
        that ``perceive`` (N,) marks (default: all)."""
        perceive = np.ones(len(meshes.points), bool) if perceive is None else perceive
        irises = self.iris(rgb, meshes.points) if self.iris is not None else None
        if self.perceiver is not None and perceive.any():
            crops = aligned_face_crops(rgb, meshes.points[perceive])
        else:
            crops = np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8)
        return PixelCuts(irises, perceive, crops)

    def measure(self, meshes: list[Meshes], cuts: list[PixelCuts], searched: np.ndarray | None = None) -> FaceMeasures:
        """The measures of the faces of several frames' ``meshes`` and their ``cuts``, in order, as one
        batch (the perceived model runs once, on every face cut for it); ``searched`` marks the faces
        that the small-image search found (``quality.assess``)."""
        points = np.concatenate([m.points for m in meshes])
        presence = np.concatenate([m.presence for m in meshes])
        cut = PixelCuts.concat(cuts)
        pose = head_pose(points)
        quality = assess(points, [c for m in meshes for c in m.crops], presence, pose.yaw, pose.pitch, self.thresholds,
                         searched)
        raw = actions.measures(to_canonical_frame(points, pose)) if self.action_units else None
        gaze = None if cut.irises is None else gaze_angles(points, cut.irises.centres, cut.irises.corners, pose)
        logits = None
        if self.perceiver is not None:
            logits = np.full((len(points), len(PERCEIVED_CLASSES)), np.nan, np.float32)
            if cut.perceive.any():
                logits[cut.perceive] = self.perceiver.logits(cut.crops)
        return FaceMeasures(points, presence, pose, quality, None if cut.irises is None else cut.irises.centres, gaze, raw, logits)

    def perceived(self, measures: FaceMeasures) -> Perceived:
        """Perceived expression of faces measured on their own (not smoothed over time)."""
        return self.perceiver.from_logits(measures.logits, reliable=measures.quality.reliable)

    def perceived_values(self, measures: FaceMeasures) -> np.ndarray:
        """(N, 9) float32: each face's calibrated shares and energy score (NaN where the model did not
        run), the values smoothed over time; ``perceived_from_values`` turns them into ``Perceived``."""
        logits = measures.logits
        return np.column_stack([self.perceiver.calibration(logits), energy_score(logits)]).astype(np.float32)

    def perceived_from_values(self, values: np.ndarray, reliable: np.ndarray) -> Perceived:
        """Perceived expression from (N, 9) values as ``perceived_values`` gives them (smoothed): the
        shares made to sum to 1; the top label of a face whose energy score is below the model's
        ``min_energy`` is "uncertain", as for a face measured on its own."""
        familiar = values[:, -1] >= self.perceiver.min_energy
        return self.perceiver.from_probabilities(shares_of(values), reliable & familiar)


def shares_of(values: np.ndarray) -> np.ndarray:
    """(N, 8) perceived shares summing to 1, from (N, 9) perceived values (see ``FaceMeasurer.perceived_values``)."""
    return values[:, :-1] / values[:, :-1].sum(1, keepdims=True)


def measured_faces(boxes: np.ndarray, scores: np.ndarray, measures: FaceMeasures,
                   units: actions.ActionUnitResult | None, perceived: Perceived | None) -> Faces:
    """``Faces`` of faces found at ``boxes`` with detector ``scores``, and their measures."""
    return Faces(status=OK if len(boxes) else NO_FACE, boxes=np.asarray(boxes, np.float32),
                 scores=np.asarray(scores, np.float32), presence=measures.presence, landmarks=measures.landmarks,
                 pose=measures.pose, quality=measures.quality, iris=measures.iris, gaze=measures.gaze,
                 actions=units, perceived=perceived)
