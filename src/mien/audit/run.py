"""One audit: a model scored on a dataset, in three steps (scoring, robustness, strata) that
:func:`run_audit` puts together into an :class:`~mien.audit.result.AuditResult`."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from .. import __version__
from . import metrics as M
from . import robustness as R
from .datasets import AuditDataset, load_images
from .models import AuditModel
from .result import (AuditResult, ConfidentError, DatasetInfo, Headline, ModelInfo, PerImage, Robustness,
                     RobustnessRow, Strata, StratumRow, Subset)

PROTOCOL = ("FERPlus majority protocol: per image, classes with a single vote are dropped; the image is kept "
            "only if its top class holds more than half of the remaining votes and is one of the 8 expressions "
            "(not unknown or not-a-face). Its label is that class; the model is right when its top class is it.")
PROTOCOL_LABELS = "One label per image (no votes): the model is right when its top class is that label."
HARD_LABELS_NOTE = "hard labels: every confidence is 1, so calibration and risk–coverage say nothing"


@dataclass
class Scored:
    """The scoring step's output, which the robustness and strata steps reuse: the labelled images
    (``data``), their pixels when they were read, the model's probabilities and the figures."""

    data: AuditDataset
    images: list[np.ndarray]
    probs: np.ndarray
    dataset: DatasetInfo
    model: ModelInfo
    headline: Headline
    subsets: dict[str, Subset]
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: the model's top class is the image's label (no prediction counts as wrong)."""
        return M.top_classes(self.probs) == self.data.labels


def _subset_summary(probs, labels, votes, has_votes, mask, samples, seed, what: str) -> Subset:
    p, y = probs[mask], labels[mask]
    ok = (M.top_classes(p) == y).astype(float)
    kl = single = None
    if has_votes:
        v = votes[mask]
        has = M.answered(p)
        kl = M.mean_kl(M.crowd_distribution(v[has]), p[has])
        single = float(np.nanmean(M.single_annotator_scores(v))) if len(v) else float("nan")
    return Subset(int(mask.sum()), float(ok.mean()) if len(ok) else float("nan"),
                  M.bootstrap_mean_ci(ok, samples=samples, seed=seed), M.uar(p, y), kl, single, what)


def _one_per_group(groups: np.ndarray) -> np.ndarray:
    keep = np.ones(len(groups), bool)
    seen = set()
    for i, g in enumerate(groups):
        if g:
            if g in seen:
                keep[i] = False
            seen.add(g)
    return keep


def _subsets(d: AuditDataset, probs: np.ndarray, has_votes: bool, samples: int, seed: int) -> dict[str, Subset]:
    out = {}
    summary = lambda mask, k, what: _subset_summary(probs, d.labels, d.votes, has_votes, mask, samples, seed + k, what)  # noqa: E731
    if d.duplicate is not None and d.duplicate.any():
        out["without_duplicates"] = summary(~d.duplicate, 20, "without the images that have a copy elsewhere (see notes)")
        out["only_duplicates"] = summary(d.duplicate, 21, "only the images that have such a copy")
    if d.groups is not None:
        keep = _one_per_group(d.groups)
        if (~keep).any():
            out["one_per_duplicate_group"] = summary(keep, 22, "one image per group of copies within this dataset")
    return out


def _dataset_info(ds: AuditDataset, d: AuditDataset, images: list[np.ndarray]) -> DatasetInfo:
    shapes = sorted({im.shape[:2] for im in images}) if images else []
    present = set(d.labels.tolist())
    return DatasetInfo(
        name=ds.name, path=str(ds.root), layout=ds.layout, images_listed=len(ds), images_scored=len(d),
        left_out_no_majority=len(ds) - len(d), has_votes=ds.has_votes,
        votes_per_image_median=float(np.median(ds.votes.sum(1))) if len(ds) else float("nan"),
        vote_columns=list(ds.vote_columns), framing=ds.framing,
        image_sizes=[f"{w}x{h}" for h, w in shapes[:5]] + (["…"] if len(shapes) > 5 else []),
        notes=list(ds.notes), duplicates=ds.duplicate_source,
        classes_absent=[c for k, c in enumerate(M.CLASSES) if k not in present])


def _model_info(model: AuditModel) -> ModelInfo:
    return ModelInfo(name=model.name, description=model.description,
                     classes_out=[M.CLASSES[c] for c in model.classes_out],
                     classes_missing=[c for i, c in enumerate(M.CLASSES) if i not in model.classes_out],
                     hard_labels=bool(model.hard_labels), can_run=bool(model.can_run), notes=list(model.notes))


def score(ds: AuditDataset, model: AuditModel, *, read_images: bool, seed: int = 0, samples: int = 1000,
          log=None) -> Scored:
    """Predict every image of ``ds`` that has a label and compute the headline figures and subsets.
    ``read_images``: read the pixels even when the model does not need them (for the strata)."""
    say = log or (lambda msg: None)
    t0 = time.perf_counter()
    d = ds.subset(np.nonzero(ds.labels >= 0)[0])
    images = load_images(d) if model.can_run or read_images else []
    timing = {"read_images_s": time.perf_counter() - t0}
    t = time.perf_counter()
    probs = model.predict(images, d.names, d.paths)
    timing["predict_s"] = time.perf_counter() - t
    say(f"predicted {len(d)} images")
    t = time.perf_counter()
    figures = M.headline(probs, d.labels, d.votes if ds.has_votes else None, samples=samples, seed=seed,
                         classes_out=model.classes_out)
    headline = Headline.from_metrics(figures, HARD_LABELS_NOTE if model.hard_labels else None)
    subsets = _subsets(d, probs, ds.has_votes, samples, seed)
    timing["metrics_s"] = time.perf_counter() - t
    return Scored(d, images, probs, _dataset_info(ds, d, images), _model_info(model), headline, subsets, timing)


def measure_robustness(scored: Scored, model: AuditModel, *, seed: int = 0, samples: int = 1000,
                       log=None) -> Robustness:
    """Accuracy on changed copies of the images: by running the model, or from a predictions file's rows
    for changed images made with the same seed."""
    say = log or (lambda msg: None)
    d = scored.data
    perturbed = getattr(model, "perturbations", {})
    if not model.can_run and not perturbed:
        return Robustness(skipped="the model is a predictions file without rows for changed images: it cannot be "
                                  "run on them here")
    if not model.can_run:
        seeds = sorted(set(perturbed.values()))
        if seeds != [seed]:
            return Robustness(skipped=f"the predictions file's changed images used seed {seeds}, this audit seed {seed}")

        def predict(p, ims):
            return model.predict_perturbed(p.key, d.names, d.paths) if p.key in perturbed else None
    else:
        def predict(p, ims):
            return model.predict(ims, d.names)
    rows = R.robustness(predict, scored.images if model.can_run else [], d.names, d.labels, scored.probs, seed=seed,
                        samples=samples, progress=lambda s: say(f"robustness: {s}"))
    note = None if model.can_run else f"from the predictions file's rows for changed images (perturbation seed {seed})"
    return Robustness(rows=[RobustnessRow(**r) for r in rows], note=note)


def measure_strata(scored: Scored, log=None) -> tuple[Strata, dict[str, np.ndarray]]:
    """mien's measurements of each image and the accuracy by measured condition."""
    say = log or (lambda msg: None)
    faces = R.measure_faces(scored.images, progress=lambda i: say(f"measured {i} faces"))
    st = R.strata(faces, scored.correct)
    groups = {g: [StratumRow(**r) for r in rows] for g, rows in st["groups"].items()}
    return Strata(st["overall_accuracy"], st["faces_found"], st["images"], groups), faces


def run_audit(ds: AuditDataset, model: AuditModel, *, robustness: bool = True, strata: bool = True,
              seed: int = 0, samples: int = 1000, log=None) -> AuditResult:
    """Score ``model`` on the images of ``ds`` that have a label (crowd majority or single label)."""
    t0 = time.perf_counter()
    scored = score(ds, model, read_images=strata, seed=seed, samples=samples, log=log)
    timing = dict(scored.timing)
    if robustness:
        t = time.perf_counter()
        rob = measure_robustness(scored, model, seed=seed, samples=samples, log=log)
        if rob.rows is not None:
            timing["robustness_s"] = time.perf_counter() - t
    else:
        rob = Robustness(skipped="not requested (--no-robustness)")
    faces = None
    if strata:
        t = time.perf_counter()
        st, faces = measure_strata(scored, log=log)
        timing["strata_s"] = time.perf_counter() - t
    else:
        st = Strata(skipped="not requested")
    d = scored.data
    result = AuditResult(
        mien_version=__version__, seed=seed, bootstrap_samples=samples, dataset=scored.dataset,
        protocol=PROTOCOL if ds.has_votes else PROTOCOL_LABELS, model=scored.model, headline=scored.headline,
        subsets=scored.subsets, robustness=rob, strata=st, examples=_confident_errors(d.names, scored.probs, d.labels),
        breaks=[], timing={}, per_image=PerImage(d.names, d.labels, scored.probs, d.duplicate, faces))
    timing["total_s"] = time.perf_counter() - t0
    return replace(result, breaks=where_it_breaks(result), timing={k: round(v, 2) for k, v in timing.items()})


def with_comparison(results: list[AuditResult]) -> list[AuditResult]:
    """The results of one multi-dataset run, each given the comparison across all of them."""
    rows = [r.comparison_row() for r in results]
    return [replace(r, other_datasets=rows) for r in results]


def _confident_errors(names, probs, y, n: int = 10) -> list[ConfidentError]:
    top = M.top_classes(probs)
    wrong = np.nonzero((top != y) & (top >= 0))[0]
    order = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:n]
    return [ConfidentError(names[i], M.CLASSES[y[i]], M.CLASSES[top[i]], float(probs[i].max())) for i in order]


def where_it_breaks(result: AuditResult) -> list[str]:
    """Plain sentences about missing predictions, the weakest classes, perturbations and strata."""
    h = result.headline
    out = []
    missing_out = result.model.classes_missing
    if missing_out:
        out.append(f"The model cannot output {', '.join(missing_out)}: every such face counts as wrong.")
    if h.images_without_prediction:
        out.append(f"The model gave no prediction for {h.images_without_prediction} of {h.images} images "
                   f"(coverage {h.coverage:.1%}): each counts as wrong.")
    absent = result.dataset.classes_absent
    if absent:
        out.append(f"No image is labelled {', '.join(absent)}: recall and UAR are over the other classes, and the "
                   "model's answers in those classes count as wrong.")
    rec = {c: r for c, r in h.per_class_recall.items()
           if r == r and h.per_class_images[c] > 0 and c not in missing_out}
    base = h.single_annotator.per_class_recall if h.single_annotator else {}
    for c, r in sorted(rec.items(), key=lambda kv: kv[1])[:3]:
        s = f"Recall for {c} is {r:.0%} ({h.per_class_images[c]} images)"
        if c in base and base[c] == base[c]:
            s += f"; a single annotator reaches {base[c]:.0%}"
        out.append(s + ".")
    for row in sorted(result.robustness.rows or [], key=lambda r: -r.drop)[:3]:
        if row.drop > 0.01:
            out.append(f"{row.label[0].upper() + row.label[1:]} lowers accuracy by {100 * row.drop:.1f} percentage "
                       f"points and changes {row.changed:.0%} of the predictions.")
    st = result.strata
    for g, rows in (st.groups or {}).items():
        for r in rows:
            if r.below_overall and r.images >= 20:
                out.append(f"{g}: {r.bin}: accuracy {r.accuracy:.0%} on {r.images} images, below the "
                           f"overall {st.overall_accuracy:.0%}.")
    sub = result.subsets.get("without_duplicates")
    if sub:
        out.append(f"Without the {h.images - sub.images} images that have a copy elsewhere, accuracy is "
                   f"{sub.accuracy:.1%} (all images: {h.accuracy:.1%}).")
    return out
