"""The typed result of one audit: what was scored, with what, the figures, and the per-image table.

``AuditResult.to_dict()`` gives the card's JSON (numbers rounded to 6 places, NaN as null; a field
that does not apply, such as ``kl`` for a dataset without votes, is left out rather than null).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .metrics import CLASSES


def json_value(x):
    """A JSON-ready copy of ``x``: dataclasses become dicts (``None`` fields and fields marked
    ``json=False`` left out), numpy scalars and arrays become Python ones, non-finite floats None."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: json_value(getattr(x, f.name)) for f in dataclasses.fields(x)
                if f.metadata.get("json", True) and getattr(x, f.name) is not None}
    if isinstance(x, dict):
        return {str(k): json_value(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_value(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_value(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else round(float(x), 6)
    return x


@dataclass(frozen=True)
class DatasetInfo:
    """What was scored. ``classes_absent``: mien classes no scored image is labelled with (the
    per-class figures and UAR are over the classes present)."""

    name: str
    path: str
    layout: str
    images_listed: int
    images_scored: int
    left_out_no_majority: int
    has_votes: bool
    votes_per_image_median: float
    vote_columns: list[str]
    framing: str
    image_sizes: list[str]
    notes: list[str]
    duplicates: str
    classes_absent: list[str]


@dataclass(frozen=True)
class ModelInfo:
    """What was scored with: the model's name and description, the classes it can output
    (``classes_out``) and those it cannot (``classes_missing``), whether it gives one label per image
    without probabilities (``hard_labels``) and whether it can be run on changed images (``can_run``)."""

    name: str
    description: str
    classes_out: list[str]
    classes_missing: list[str]
    hard_labels: bool
    can_run: bool
    notes: list[str]


@dataclass(frozen=True)
class SingleAnnotator:
    """One annotator against the majority of the others (see :func:`metrics.single_annotator_baseline`)."""

    accuracy: float
    accuracy_ties_wrong: float
    accuracy_ties_right: float
    per_class_recall: dict[str, float]
    uar: float
    images: int
    votes: int
    tie_rule: str
    accuracy_ci95: tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class Headline:
    """The headline figures (see :func:`metrics.headline`), in the card JSON's order;
    ``uar_classes_it_can_output`` only for a model that cannot output every class, ``kl``, ``kl_ci95``
    and ``single_annotator`` only for a dataset with votes."""

    images: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    per_class_recall: dict[str, float]
    per_class_images: dict[str, int]
    uar: float
    uar_ci95: tuple[float, float]
    uar_classes_it_can_output: float | None = None
    confusion: list[list[int]]
    coverage: float
    no_prediction_per_class: dict[str, int]
    ece: float
    ece_ci95: tuple[float, float]
    reliability: list[dict]
    aurc: float
    coverage_at_risk: dict[str, float]
    risk_coverage: dict[str, list[float]]
    kl: float | None = None
    kl_ci95: tuple[float, float] | None = None
    single_annotator: SingleAnnotator | None = None
    calibration_note: str | None = None

    @classmethod
    def from_metrics(cls, figures: dict, calibration_note: str | None = None) -> "Headline":
        """The headline from :func:`metrics.headline`'s figures (a dict of this class's fields) and the
        note on calibration, if any."""
        base = figures.get("single_annotator")
        return cls(**{**figures, "single_annotator": SingleAnnotator(**base) if base else None},
                   calibration_note=calibration_note)

    @property
    def images_without_prediction(self) -> int:
        """How many scored images got no prediction from the model (they count as wrong)."""
        return int(sum(self.no_prediction_per_class.values()))


@dataclass(frozen=True)
class Subset:
    """The headline figures on a part of the scored images (e.g. without duplicates)."""

    images: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    uar: float
    kl: float | None = None
    single_annotator_accuracy: float | None = None
    what: str = ""


@dataclass(frozen=True)
class RobustnessRow:
    """One change of the images (``key``, shown as ``label``): the accuracy on the changed images, its
    drop from the clean accuracy (0-1, > 0 worse) with a paired 95% bootstrap interval, and the share
    of images whose top class changed (``changed``, 0-1)."""

    key: str
    label: str
    accuracy: float
    drop: float
    drop_ci95: tuple[float, float]
    changed: float


@dataclass(frozen=True)
class Robustness:
    """Rows per change of the images, or why robustness was not measured (``skipped``)."""

    rows: list[RobustnessRow] | None = None
    note: str | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class StratumRow:
    """Accuracy (0-1, with its 95% interval) on the ``images`` that fall in one ``bin`` of a mien
    measurement; ``below_overall``: the interval lies below the overall accuracy."""

    bin: str
    images: int
    accuracy: float
    ci95: tuple[float, float]
    below_overall: bool


@dataclass(frozen=True)
class Strata:
    """Accuracy by mien's measurements of the same images, or why they were not measured."""

    overall_accuracy: float | None = None
    faces_found: int | None = None
    images: int | None = None
    groups: dict[str, list[StratumRow]] | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class ConfidentError:
    """One of the model's most confident mistakes: the image, its crowd label, the model's top class
    and that class's probability (``model_p``, 0-1)."""

    image: str
    crowd: str
    model: str
    model_p: float


@dataclass(frozen=True)
class ComparisonRow:
    """One dataset's figures in the "how it holds on other datasets" table. ``no_face``: images where
    mien's face measurement found no face (None when strata were not measured)."""

    dataset: str
    images: int
    accuracy: float
    uar: float
    ece: float
    coverage: float
    without_prediction: int
    no_face: int | None
    classes_absent: list[str]
    has_votes: bool


@dataclass(frozen=True)
class PerImage:
    """One row per scored image: label, the model's probabilities (NaN: no prediction), mien's
    measurements (``faces``: arrays from :func:`robustness.measure_faces`, or None)."""

    names: list[str]
    labels: np.ndarray
    probs: np.ndarray
    duplicate: np.ndarray | None = None
    faces: dict[str, np.ndarray] | None = None

    def to_frame(self):
        """The per-image table (``predictions.csv``) as a DataFrame: image, crowd majority, the model's top
        class (empty: no prediction), whether they agree, ``p_<class>`` probabilities and, where measured,
        mien's face measurements."""
        import pandas as pd

        from .metrics import top_classes

        top = top_classes(self.probs)
        cols = {"image": self.names, "crowd_majority": [CLASSES[c] for c in self.labels],
                "model_top": [CLASSES[c] if c >= 0 else "" for c in top], "agrees": top == self.labels}
        cols.update({f"p_{c}": self.probs[:, k].round(6) for k, c in enumerate(CLASSES)})
        if self.duplicate is not None:
            cols["duplicate"] = self.duplicate
        if self.faces is not None:
            f = self.faces
            cols.update({"face_found": f["found"], "yaw": f["yaw"].round(2), "pitch": f["pitch"].round(2),
                         "iod_px": f["iod_px"].round(2), "brightness": f["brightness"].round(4),
                         "reliable": f["reliable"]})
        return pd.DataFrame(cols)


@dataclass(frozen=True)
class AuditResult:
    """One model scored on one dataset. ``other_datasets``: the comparison across the datasets of one
    ``mien audit DS1 DS2 …`` run (None for a single dataset)."""

    mien_version: str
    seed: int
    bootstrap_samples: int
    dataset: DatasetInfo
    protocol: str
    model: ModelInfo
    headline: Headline
    subsets: dict[str, Subset]
    robustness: Robustness
    strata: Strata
    examples: list[ConfidentError]
    breaks: list[str]
    timing: dict[str, float]
    per_image: PerImage = field(metadata={"json": False})
    other_datasets: list[ComparisonRow] | None = None

    def to_dict(self) -> dict:
        """The card's JSON content as plain Python data (see the module docstring; the per-image table is left out)."""
        return json_value(self)

    def comparison_row(self) -> ComparisonRow:
        """This dataset's row in the comparison across datasets."""
        h, st = self.headline, self.strata
        no_face = st.images - st.faces_found if st.groups is not None else None
        return ComparisonRow(self.dataset.name, h.images, h.accuracy, h.uar, h.ece, h.coverage,
                             h.images_without_prediction, no_face, list(self.dataset.classes_absent),
                             self.dataset.has_votes)
