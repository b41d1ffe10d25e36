"""Fusing the perceived-expression CNN with pose-free mesh geometry (one thread, numpy).

    python training/perceived_fusion.py --out training/runs/fusion            # extract (cached), try every head, report
    python training/perceived_fusion.py --out training/runs/fusion --record   # and copy the figures to training/perceived_fusion.json

Geometry comes from mien's own pipeline (``Analyzer`` with default detection, small images through
``mien.small_faces``; iris and perceived off, which change neither the mesh nor the action units),
largest face of each image, for FERPlus Train, Valid, Test and the crossval sets. Per face:

- the action-unit raw measures of both sides (``mien.actions.measures`` of the pose-free canonical mesh)
  and their intensities against the population neutral (``mien.actions.analyse_measures``);
- the first ``PCA_COMPONENTS`` principal components of the canonical mesh's offsets from the population
  neutral (each mesh divided by its inter-ocular distance), the PCA fitted on Train faces only.

The CNN side is the shipped model's logits (``perceived.onnx`` with its mirror averaging and logit
adjustment, before calibration) and its pooled features (the input of its last layer): on the 48x48
files for FERPlus, on the pipeline's crops for crossval, as ``training/perceived_head.py`` does.

Heads (every weight fitted on FERPlus Train against the crowd distribution; each image weighted by its
majority class's Train count ** -beta; every hyper-parameter chosen on Valid):

- ``geometry(beta)``: a linear softmax head on the geometry features alone; ``action units(beta)``: on
  the action-unit columns alone (no mesh components);
- ``features(beta)``: the control, a new last layer on the pooled CNN features alone, trained the same way;
- ``logits + geometry(beta)``: a linear head on the shipped logits and the geometry features, jointly;
- ``features + geometry(beta)``: a linear head on the pooled CNN features and the geometry features,
  started from the shipped last layer;
- ``logits + a * geometry(beta)`` (and ``action units``): the shipped logits plus a times the geometry
  head's logits (a product of experts; the CNN has seen Train, so a joint fit there under-weights
  geometry; a is picked on Valid);
- each with logit adjustment ``- tau * log(Train prior)`` on top.

A face without a mesh (no face found by the pipeline) keeps the shipped logits alone. Each candidate's
temperature is fitted on Valid (majority NLL). The chosen candidate: the highest Valid UAR among those
whose Valid accuracy is at least the shipped model's. Crossval figures are written for comparing
candidates, never to fit; FERPlus Test only for reporting.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "training"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import ferplus as FP  # noqa: E402
import perceived_crossval as CV  # noqa: E402  (the crossval sets, read and keyed as the benchmark does)
from mien import actions  # noqa: E402
from mien import perceived as P  # noqa: E402
from mien.geometry import to_canonical_frame  # noqa: E402
from mien.mesh import interocular_distance  # noqa: E402
from mien.runtime import verified_model_path  # noqa: E402
from perceived_head import (K, choose, crossval_figures, feature_session, figures, gemm_weights, softmax,  # noqa: E402
                            train_linear_head)

CACHE = ROOT / "cache" / "perceived"
RECORD = ROOT / "training" / "perceived_fusion.json"
SPLITS = ("Train", "Valid", "Test")
SHIPPED = P.MODEL_NAME
POOLED = "pooled_mean"  # the shipped graph's last-layer input: mirror-averaged pooled features
PCA_COMPONENTS = 24
BETAS = (0.0, 0.5)
TAUS = (0.0, 0.2)
ALPHAS = (0.25, 0.5)
HEAD_STEPS = 600
ACTION_UNIT_COLUMNS = 2 * len(actions.columns())  # raw measures, then intensities
# Linear heads fitted on Train; "features" alone is the control that shows what geometry adds.
PROFILE_UNITS = (4, 9, 10, 24, 25)  # brow lowerer, nose wrinkler, upper lip raiser, lip pressor, lips part
PROFILE_CLASSES = ("anger", "disgust", "fear", "contempt")  # the posed classes the CNN calls neutral
HEADS = ("geometry", "action units", "features", "logits + geometry", "features + geometry")


# ---- geometry through the pipeline ----------------------------------------------------------------------

@dataclass(frozen=True)
class PipelineFaces:
    """The largest face of each image as the pipeline measures it; rows where no face was found are zeros."""

    found: np.ndarray  # (N,) bool
    reliable: np.ndarray  # (N,) bool, mien's quality flag
    crops: np.ndarray  # (N, 48, 48) uint8, the perceived model's input
    canonical: np.ndarray  # (N, 468, 3) float32, pose-free mesh in centimetres


def run_pipeline(paths: list[Path]) -> PipelineFaces:
    from mien.analyzer import Analyzer, Options
    from mien.images import read_image

    analyzer = Analyzer(Options(iris=False, perceived=False))
    n = len(paths)
    found, reliable = np.zeros(n, bool), np.zeros(n, bool)
    crops = np.zeros((n, P.FACE_SIZE, P.FACE_SIZE), np.uint8)
    canonical = np.zeros((n, 468, 3), np.float32)
    for i, path in enumerate(paths):
        rgb = read_image(path)
        faces = analyzer.analyze(rgb, source=str(path))
        if len(faces.scores) == 0:
            continue
        k = CV.largest(faces.boxes)
        found[i], reliable[i] = True, bool(faces.quality.reliable[k])
        crops[i] = P.aligned_face_crops(rgb, faces.landmarks[k:k + 1])[0]
        canonical[i] = to_canonical_frame(faces.landmarks[k:k + 1], faces.pose.take([k]))[0]
    return PipelineFaces(found, reliable, crops, canonical)


def cached_pipeline(name: str, paths: list[Path]) -> PipelineFaces:
    """``run_pipeline`` once per set and pipeline version (``perceived_crossval.pipeline_key``)."""
    path = CACHE / f"geometry-{name}-{CV.pipeline_key()}.npz"
    if path.exists():
        with np.load(path) as z:
            return PipelineFaces(z["found"], z["reliable"], z["crops"], z["canonical"])
    t = time.time()
    faces = run_pipeline(paths)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, found=faces.found, reliable=faces.reliable, crops=faces.crops, canonical=faces.canonical)
    tmp.replace(path)
    print(f"{name}: pipeline on {len(paths)} images in {time.time() - t:.0f} s, {faces.found.sum()} faces", flush=True)
    return faces


def set_paths(name: str) -> list[Path]:
    if name in SPLITS:
        return [FP.split_dir(name) / n for n in FP.read_votes(name)[0]]
    return CV.labelled_images(name)[0]


# ---- CNN outputs ------------------------------------------------------------------------------------------

def cnn_outputs(name: str, images: np.ndarray, session) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, 8), pooled features (N, 256)) of the shipped model, cached by its sha256."""
    digest = P.model_card()["sha256"][:12]
    path = CACHE / f"fusion-cnn-{digest}-{name}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["logits"].astype(np.float64), z["pooled"].astype(np.float64)
    logits, pooled = [], []
    for i in range(0, len(images), 256):
        z, f = session.run(None, {"face": images[i:i + 256].astype(np.float32)[:, None]})
        logits.append(z)
        pooled.append(f)
    logits, pooled = np.concatenate(logits), np.concatenate(pooled)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, logits=logits, pooled=pooled)
    tmp.replace(path)
    return logits.astype(np.float64), pooled.astype(np.float64)


# ---- geometry features ----------------------------------------------------------------------------------

def mesh_offsets(canonical: np.ndarray) -> np.ndarray:
    """(N, 1404) offsets of each canonical mesh from the population neutral, both in inter-ocular units."""
    m = canonical.astype(np.float64)
    neutral = actions.population_neutral().mesh
    scaled = m / interocular_distance(m, dims=3)[:, None, None]
    return (scaled - neutral / interocular_distance(neutral[None], dims=3)[0]).reshape(len(m), -1)


@dataclass(frozen=True)
class GeometryBasis:
    """What the geometry features need from Train: the offsets' PCA and every column's mean and spread."""

    offset_mean: np.ndarray  # (1404,)
    components: np.ndarray  # (PCA_COMPONENTS, 1404)
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)


def unscaled_geometry(canonical: np.ndarray, offset_mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """(N, 2K + PCA_COMPONENTS): action-unit raw measures, their intensities, offset components."""
    au = actions.analyse_measures(actions.measures(canonical.astype(np.float64)))
    pcs = (mesh_offsets(canonical) - offset_mean) @ components.T
    return np.nan_to_num(np.column_stack([au.raw, au.intensity, pcs]))


def fit_basis(canonical: np.ndarray) -> GeometryBasis:
    """PCA of the offsets and standardisation, fitted on (Train) meshes."""
    offsets = mesh_offsets(canonical)
    offset_mean = offsets.mean(0)
    components = np.linalg.svd(offsets - offset_mean, full_matrices=False)[2][:PCA_COMPONENTS]
    g = unscaled_geometry(canonical, offset_mean, components)
    return GeometryBasis(offset_mean, components, g.mean(0), g.std(0) + 1e-9)


def geometry_features(faces: PipelineFaces, basis: GeometryBasis) -> np.ndarray:
    """(N, F) standardised geometry of the faces found; zeros where no face was found."""
    out = np.zeros((len(faces.found), len(basis.mean)))
    mesh = faces.canonical[faces.found]
    out[faces.found] = (unscaled_geometry(mesh, basis.offset_mean, basis.components) - basis.mean) / basis.scale
    return out


# ---- data -------------------------------------------------------------------------------------------------

def load_set(name: str, session) -> dict:
    """A set's labels, pipeline faces and shipped CNN outputs. FERPlus: the CNN reads the 48x48 files (as
    training/perceived_head.py does); crossval: the pipeline's crops."""
    faces = cached_pipeline(name, set_paths(name))
    if name in SPLITS:
        names, votes = FP.read_votes(name)
        targets, usable = FP.soft_targets(votes)
        z, pooled = cnn_outputs(name, FP.read_images(name, names), session)
        return {"labels": FP.majority_labels(votes), "crowd": FP.crowd_distribution(votes).astype(np.float64),
                "targets": targets.astype(np.float64), "usable": usable, "faces": faces, "z": z, "pooled": pooled}
    z, pooled = cnn_outputs(f"{name}-{CV.pipeline_key()}", faces.crops, session)
    return {"labels": CV.labelled_images(name)[1], "found": faces.found, "faces": faces, "z": z, "pooled": pooled}


# ---- heads ------------------------------------------------------------------------------------------------

def fit_head(x: np.ndarray, s: dict, beta: float, w0: np.ndarray, b0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A linear softmax head on Train faces with a mesh, soft crowd targets, class weights count ** -beta."""
    keep = s["usable"] & s["faces"].found
    t = s["targets"][keep]
    major = t.argmax(1)
    counts = np.bincount(major, minlength=K).astype(np.float64)
    return train_linear_head(x[keep], t, counts[major] ** -beta, w0, b0, steps=HEAD_STEPS)


def head_inputs(kind: str, s: dict, g: np.ndarray) -> np.ndarray:
    """The columns a head of this kind reads: geometry, its action-unit part, pooled features, shipped logits."""
    parts = {"geometry": g, "action units": g[:, :ACTION_UNIT_COLUMNS], "features": s["pooled"], "logits": s["z"]}
    return np.column_stack([parts[p] for p in kind.split(" + ")])


def initial_head(kind: str, nz: int, fc: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Start a head where the CNN side alone gives the shipped logits (geometry weights zero)."""
    first = kind.split(" + ")[0]
    width = {"geometry": nz, "action units": ACTION_UNIT_COLUMNS, "features": fc[0].shape[1], "logits": K}
    w = np.column_stack([np.zeros((K, width[p])) for p in kind.split(" + ")])
    if first == "features":
        w[:, :width["features"]] = fc[0]
        return w, fc[1].copy()
    if first == "logits":
        w[:, :K] = np.eye(K)
    return w, np.zeros(K)


def candidate_logits(s: dict, g: np.ndarray, heads: dict, recipe: tuple, log_prior: np.ndarray) -> np.ndarray:
    """Logits of one recipe (kind, beta, alpha, tau) on a set; faces without a mesh keep the shipped logits.
    A kind "logits + a * X" adds alpha times the logits of the head trained on X alone to the shipped logits."""
    kind, beta, alpha, tau = recipe
    z = s["z"]
    if kind == "shipped":
        fused = z
    elif kind.startswith("logits + a * "):
        base = kind.removeprefix("logits + a * ")
        w, b = heads[base, beta]
        fused = z + alpha * (head_inputs(base, s, g) @ w.T + b)
    else:
        w, b = heads[kind, beta]
        fused = head_inputs(kind, s, g) @ w.T + b
    return np.where(s["faces"].found[:, None], fused, z) - tau * log_prior


def recipe_name(recipe: tuple) -> str:
    kind, beta, alpha, tau = recipe
    if kind == "shipped":
        return "shipped"
    name = kind.replace(" a * ", f" {alpha:g} * ") + f"({beta:g})"
    return name + (f" adjusted({tau:g})" if tau else "")


def recipes() -> list[tuple]:
    out = [("shipped", 0.0, 0.0, 0.0)]
    out += [(kind, beta, 0.0, tau) for kind in HEADS for beta in BETAS for tau in TAUS]
    out += [(f"logits + a * {base}", beta, alpha, tau) for base in ("geometry", "action units")
            for beta in BETAS for alpha in ALPHAS for tau in TAUS]
    return out


def class_profiles(s: dict) -> dict:
    """Per labelled class (``PROFILE_CLASSES``): face count and the mean intensity of each ``PROFILE_UNITS`` unit (the
    larger side) on the faces with a mesh: does a class show the same movements in FERPlus and elsewhere?"""
    found = s["faces"].found
    intensity = actions.analyse_measures(actions.measures(s["faces"].canonical[found].astype(np.float64))).intensity
    units = actions.action_units()
    labels = s["labels"][found]
    out = {}
    for c in PROFILE_CLASSES:
        k = P.CLASSES.index(c)
        rows = intensity[labels == k]
        if len(rows):
            out[c] = {"n": len(rows)} | {f"AU{n}": float(np.nanmax(rows[:, [i for i, u in enumerate(units) if u.number == n]], 1).mean())
                                         for n in PROFILE_UNITS}
    return out


def verdict(ideas: dict, ideas_cv: dict, chosen: str) -> str:
    """Whether the chosen candidate meets the bar for shipping: higher Valid UAR, no lower Valid accuracy, and
    higher crossval accuracy and UAR on every set than the shipped model."""
    if chosen == "shipped":
        return "No candidate keeps the shipped Valid accuracy while raising Valid UAR: the shipped model stays."
    control = "" if "geometry" in chosen or "action units" in chosen else (
        "The candidate chosen reads no geometry (the control): no head with geometry does better on Valid. ")
    worse = [f"{n} {m}" for n, r in ideas_cv[chosen].items() for m in ("accuracy", "uar")
             if r[m] <= ideas_cv["shipped"][n][m]]
    if worse:
        return control + ("It does not improve crossval everywhere (no gain in " + ", ".join(worse) +
                          "), so it is recorded, not shipped.")
    return control + "It raises Valid UAR without losing Valid accuracy and improves crossval accuracy and UAR on every set."


def calibrated(z: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(z / temperature)


# ---- main -------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--record", action="store_true", help="copy the figures to training/perceived_fusion.json (the model card's record)")
    a = ap.parse_args(argv)
    np.random.seed(0)
    t0 = time.time()
    a.out.mkdir(parents=True, exist_ok=True)
    session = feature_session(verified_model_path(SHIPPED), POOLED)
    sets = {name: load_set(name, session) for name in SPLITS + CV.SETS}
    tr, va, te = (sets[n] for n in SPLITS)
    cv = {n: sets[n] for n in CV.SETS}
    basis = fit_basis(tr["faces"].canonical[tr["faces"].found])
    geometry = {n: geometry_features(s["faces"], basis) for n, s in sets.items()}
    print(f"features ready in {time.time() - t0:.0f} s; {geometry['Train'].shape[1]} geometry columns", flush=True)
    log_prior = np.log(FP.train_prior())

    fc = gemm_weights(verified_model_path(SHIPPED))
    nz = geometry["Train"].shape[1]
    heads = {(kind, beta): fit_head(head_inputs(kind, tr, geometry["Train"]), tr, beta, *initial_head(kind, nz, fc))
             for kind in HEADS for beta in BETAS}
    print(f"{len(heads)} heads trained ({time.time() - t0:.0f} s)", flush=True)

    ideas, ideas_cv, temperatures = {}, {}, {}
    for recipe in recipes():
        key = recipe_name(recipe)
        zv = candidate_logits(va, geometry["Valid"], heads, recipe, log_prior)
        known = va["labels"] >= 0
        t = FP.fit_temperature(zv[known], va["labels"][known])
        temperatures[key] = t
        ideas[key] = figures(calibrated(zv, t), va["labels"], va["crowd"]) | {"temperature": t}
        ideas_cv[key] = {n: crossval_figures(calibrated(candidate_logits(s, geometry[n], heads, recipe, log_prior), t), s)
                         for n, s in cv.items()}
        print(f"{key:44s} Valid acc {ideas[key]['accuracy']:.4f} UAR {ideas[key]['uar']:.4f} ECE {ideas[key]['ece']:.3f} | " +
              " ".join(f"{n} {r['accuracy']:.3f}/{r['uar']:.3f}/{r['ece']:.3f}" for n, r in ideas_cv[key].items()), flush=True)
    chosen = choose(ideas)
    by_name = {recipe_name(r): r for r in recipes()}
    test = {key: figures(calibrated(candidate_logits(te, geometry["Test"], heads, by_name[key], log_prior), temperatures[key]),
                         te["labels"], te["crowd"]) for key in ("shipped", chosen)}
    report = {"chosen": chosen, "verdict": verdict(ideas, ideas_cv, chosen),
              "selection": "highest FERPlus Valid UAR among the candidates whose Valid accuracy is at least the shipped model's",
              "geometry_columns": {"action_unit_raw": len(actions.columns()), "action_unit_intensity": len(actions.columns()),
                                   "offset_components": PCA_COMPONENTS},
              "faces_with_mesh": {n: {"found": int(s["faces"].found.sum()), "images": len(s["faces"].found)} for n, s in sets.items()},
              "train_faces_used": int((tr["usable"] & tr["faces"].found).sum()),
              "cnn_train_accuracy": float((tr["z"].argmax(1) == tr["labels"])[tr["labels"] >= 0].mean()),
              "class_profiles": {n: class_profiles(sets[n]) for n in ("Train",) + CV.SETS},
              "ideas": ideas, "ideas_crossval": ideas_cv, "test": test, "wall_seconds": time.time() - t0, "threads": 1}
    (a.out / "fusion.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"chosen on Valid: {chosen}")
    for key, r in test.items():
        print(f"Test {key}: acc {r['accuracy']:.4f} UAR {r['uar']:.4f} ECE {r['ece']:.3f}")
    if a.record:
        tmp = RECORD.with_suffix(".tmp")
        tmp.write_text((a.out / "fusion.json").read_text())
        tmp.replace(RECORD)
        print(f"recorded in {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
