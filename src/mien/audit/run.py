"""One audit: a model scored on a dataset; returns the dict that the card (JSON, Markdown, HTML) shows."""
from __future__ import annotations

import time

import numpy as np

from .. import __version__
from . import metrics as M
from . import robustness as R
from .datasets import AuditDataset, load_images
from .models import AuditModel

PROTOCOL = ("FERPlus majority protocol: per image, classes with a single vote are dropped; the image is kept "
            "only if its top class holds more than half of the remaining votes and is one of the 8 expressions "
            "(not unknown or not-a-face). Its label is that class; the model is right when its top class is it.")
PROTOCOL_LABELS = "One label per image (no votes): the model is right when its top class is that label."


def _subset_summary(probs, labels, votes, has_votes, mask, samples, seed) -> dict:
    p, y = probs[mask], labels[mask]
    ok = (p.argmax(1) == y).astype(float)
    out = {"images": int(mask.sum()), "accuracy": float(ok.mean()) if len(ok) else float("nan"),
           "accuracy_ci95": M.bootstrap_mean_ci(ok, samples=samples, seed=seed), "uar": M.uar(p, y)}
    if has_votes:
        v = votes[mask]
        out["kl"] = M.mean_kl(M.crowd_distribution(v), p)
        out["single_annotator_accuracy"] = float(np.nanmean(M.single_annotator_scores(v))) if len(v) else float("nan")
    return out


def _one_per_group(groups: np.ndarray) -> np.ndarray:
    keep = np.ones(len(groups), bool)
    seen = set()
    for i, g in enumerate(groups):
        if g:
            if g in seen:
                keep[i] = False
            seen.add(g)
    return keep


def run_audit(ds: AuditDataset, model: AuditModel, *, robustness: bool = True, strata: bool = True,
              seed: int = 0, samples: int = 1000, log=None) -> dict:
    """Score ``model`` on the images of ``ds`` that have a crowd majority label."""
    say = log or (lambda msg: None)
    t0 = time.perf_counter()
    timing = {}
    labelled = np.nonzero(ds.labels >= 0)[0]
    left_out = len(ds) - len(labelled)
    d = ds.subset(labelled)
    y = d.labels
    need_images = model.can_run or strata
    images = load_images(d) if need_images else []
    timing["read_images_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    probs = model.predict(images, d.names)
    timing["predict_s"] = time.perf_counter() - t
    say(f"predicted {len(d)} images")

    result: dict = {"mien_version": __version__, "seed": seed, "bootstrap_samples": samples}
    shapes = sorted({im.shape[:2] for im in images}) if images else []
    result["dataset"] = {
        "name": d.root.name, "path": str(ds.root), "layout": ds.layout, "images_listed": len(ds),
        "images_scored": len(d), "left_out_no_majority": int(left_out), "has_votes": ds.has_votes,
        "votes_per_image_median": float(np.median(ds.votes.sum(1))) if len(ds) else float("nan"),
        "vote_columns": list(ds.vote_columns), "framing": ds.framing,
        "image_sizes": [f"{w}x{h}" for h, w in shapes[:5]] + (["…"] if len(shapes) > 5 else []),
        "notes": list(ds.notes), "duplicates": ds.duplicate_source,
    }
    result["protocol"] = PROTOCOL if ds.has_votes else PROTOCOL_LABELS
    result["model"] = {
        "name": model.name, "description": model.description,
        "classes_out": [M.CLASSES[c] for c in model.classes_out],
        "classes_missing": [c for i, c in enumerate(M.CLASSES) if i not in model.classes_out],
        "hard_labels": bool(model.hard_labels), "can_run": bool(model.can_run), "notes": list(model.notes),
    }
    t = time.perf_counter()
    h = M.headline(probs, y, d.votes if ds.has_votes else None, samples=samples, seed=seed,
                   classes_out=model.classes_out)
    if model.hard_labels:
        h["calibration_note"] = "hard labels: every confidence is 1, so calibration and risk–coverage say nothing"
    result["headline"] = h
    subsets = {}
    if d.duplicate is not None and d.duplicate.any():
        subsets["without_duplicates"] = _subset_summary(probs, y, d.votes, ds.has_votes, ~d.duplicate, samples, seed + 20)
        subsets["without_duplicates"]["what"] = "without the images that have a copy elsewhere (see notes)"
        subsets["only_duplicates"] = _subset_summary(probs, y, d.votes, ds.has_votes, d.duplicate, samples, seed + 21)
        subsets["only_duplicates"]["what"] = "only the images that have such a copy"
    if d.groups is not None:
        keep = _one_per_group(d.groups)
        if (~keep).any():
            subsets["one_per_duplicate_group"] = _subset_summary(probs, y, d.votes, ds.has_votes, keep, samples, seed + 22)
            subsets["one_per_duplicate_group"]["what"] = "one image per group of copies within this dataset"
    result["subsets"] = subsets
    timing["metrics_s"] = time.perf_counter() - t

    correct = probs.argmax(1) == y
    perturbed = getattr(model, "perturbations", {})
    if robustness and (model.can_run or perturbed):
        t = time.perf_counter()
        if model.can_run:
            predict = lambda p, ims: model.predict(ims, d.names)  # noqa: E731
        else:
            predict = lambda p, ims: model.predict_perturbed(p.key, d.names) if p.key in perturbed else None  # noqa: E731
        rows = R.robustness(predict, images if model.can_run else [], d.names, y, probs, seed=seed, samples=samples,
                            progress=lambda s: say(f"robustness: {s}"))
        result["robustness"] = {"rows": rows}
        if not model.can_run:
            seeds = {perturbed[k] for k in perturbed}
            result["robustness"]["note"] = (f"from the predictions file's rows for changed images (perturbation seed "
                                            f"{', '.join(map(str, sorted(seeds)))})")
            if seeds != {seed}:
                result["robustness"] = {"skipped": f"the predictions file's changed images used seed "
                                                   f"{sorted(seeds)}, this audit seed {seed}"}
        timing["robustness_s"] = time.perf_counter() - t
    elif robustness:
        result["robustness"] = {"skipped": "the model is a predictions file without rows for changed images: it "
                                           "cannot be run on them here"}
    else:
        result["robustness"] = {"skipped": "not requested (--no-robustness)"}
    if strata:
        t = time.perf_counter()
        faces = R.measure_faces(images, progress=lambda i: say(f"measured {i} faces"))
        result["strata"] = R.strata(faces, correct)
        timing["strata_s"] = time.perf_counter() - t
    else:
        result["strata"] = {"skipped": "not requested"}
    result["examples"] = _confident_errors(d.names, probs, y)
    result["_per_image"] = _per_image(d, probs, faces if strata else None)
    result["breaks"] = where_it_breaks(result)
    timing["total_s"] = time.perf_counter() - t0
    result["timing"] = {k: round(v, 2) for k, v in timing.items()}
    return result


def _per_image(d: AuditDataset, probs: np.ndarray, faces):
    import pandas as pd

    top = probs.argmax(1)
    cols = {"image": d.names, "crowd_majority": [M.CLASSES[c] for c in d.labels],
            "model_top": [M.CLASSES[c] for c in top], "agrees": top == d.labels}
    cols.update({f"p_{c}": probs[:, k].round(6) for k, c in enumerate(M.CLASSES)})
    if d.duplicate is not None:
        cols["duplicate"] = d.duplicate
    if faces is not None:
        cols.update({"face_found": faces["found"], "yaw": faces["yaw"].round(2), "pitch": faces["pitch"].round(2),
                     "iod_px": faces["iod_px"].round(2), "brightness": faces["brightness"].round(4),
                     "reliable": faces["reliable"]})
    return pd.DataFrame(cols)


def _confident_errors(names, probs, y, n: int = 10) -> list[dict]:
    top = probs.argmax(1)
    wrong = np.nonzero(top != y)[0]
    order = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:n]
    return [{"image": names[i], "crowd": M.CLASSES[y[i]], "model": M.CLASSES[top[i]],
             "model_p": float(probs[i].max())} for i in order]


def where_it_breaks(result: dict) -> list[str]:
    """Plain sentences about the weakest classes, perturbations and strata."""
    h = result["headline"]
    out = []
    miss = result["model"]["classes_missing"]
    if miss:
        out.append(f"The model cannot output {', '.join(miss)}: every such face counts as wrong.")
    rec = {c: r for c, r in h["per_class_recall"].items()
           if r == r and h["per_class_images"][c] > 0 and c not in miss}
    base = h.get("single_annotator", {}).get("per_class_recall", {})
    for c, r in sorted(rec.items(), key=lambda kv: kv[1])[:3]:
        s = f"Recall for {c} is {r:.0%} ({h['per_class_images'][c]} images)"
        if base.get(c) == base.get(c) and c in base:
            s += f"; a single annotator reaches {base[c]:.0%}"
        out.append(s + ".")
    rob = result.get("robustness", {}).get("rows", [])
    for row in sorted(rob, key=lambda r: -r["drop"])[:3]:
        if row["drop"] > 0.01:
            out.append(f"{row['label'][0].upper() + row['label'][1:]} lowers accuracy by {100 * row['drop']:.1f} percentage points "
                       f"and changes {row['changed']:.0%} of the predictions.")
    st = result.get("strata", {}).get("groups", {})
    for g, rows in st.items():
        for r in rows:
            if r["below_overall"] and r["images"] >= 20:
                out.append(f"{g}: {r['bin']}: accuracy {r['accuracy']:.0%} on {r['images']} images, below the "
                           f"overall {result['strata']['overall_accuracy']:.0%}.")
    sub = result.get("subsets", {}).get("without_duplicates")
    if sub:
        out.append(f"Without the {h['images'] - sub['images']} images that have a copy elsewhere, accuracy is "
                   f"{sub['accuracy']:.1%} (all images: {h['accuracy']:.1%}).")
    return out
