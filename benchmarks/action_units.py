"""Action units: speed on one core, and convergent validity against the FERPlus crowd.

(a) Per-face time of ``actions.analyse`` (all units, change from neutral, occurrence) on batches
    of 1 and 64 faces, one thread; also with the pose removal (``head_pose`` +
    ``to_canonical_frame``) included.
(b) Convergent validity on FERPlus Test (label.csv, fer0033120.png excluded): the mesh is run on
    ``upscale_with_border`` images (meshes cached in cache/). For each unit where FACS-based
    expression prototypes predict a link, the AUC of the unit's change from neutral (sides
    averaged) for images whose crowd majority (FERPlus protocol) is that class vs all other kept
    images, with a 95% interval (Hanley & McNeil), and the Spearman correlation with the class's
    vote share over all faces found. Also: how often each unit is "present" on crowd-neutral Test
    faces (the thresholds were set for 2.5% on Valid) and on the linked class.
    The table is written into docs/action_units.md between the validity markers.

    python benchmarks/action_units.py              # Test, writes the docs table
    python benchmarks/action_units.py --split Valid --no-write   # development split
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "src"))
from mien import actions  # noqa: E402
from mien.geometry import canonical_face, from_canonical_frame, head_pose, to_canonical_frame  # noqa: E402

DOC = ROOT / "docs" / "action_units.md"
MARKERS = {"definitions": ("<!-- definitions:start -->", "<!-- definitions:end -->"),
           "validity": ("<!-- validity:start -->", "<!-- validity:end -->")}
CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")

# (units summed, crowd class, why): links predicted by FACS-based expression prototypes (EMFACS).
LINKS = (
    ((12,), "happiness", "smile: lip corners up"),
    ((6,), "happiness", "Duchenne smile: cheeks up"),
    ((25,), "happiness", "open smile"),
    ((1,), "surprise", "brows up"),
    ((2,), "surprise", "brows up"),
    ((5,), "surprise", "eyes wide"),
    ((26,), "surprise", "jaw drop"),
    ((27,), "surprise", "mouth stretched open"),
    ((1, 2, 5, 26), "surprise", "prototype 1+2+5+26"),
    ((4,), "anger", "brows down and together"),
    ((7,), "anger", "lids tightened"),
    ((23,), "anger", "lips tightened"),
    ((24,), "anger", "lips pressed"),
    ((4, 7, 23), "anger", "prototype 4+5+7+23, 5 left out (it opposes 7)"),
    ((15,), "sadness", "lip corners down"),
    ((1,), "sadness", "inner brows up"),
    ((17,), "sadness", "chin raised"),
    ((9,), "disgust", "nose wrinkled"),
    ((10,), "disgust", "upper lip raised"),
    ((20,), "fear", "lips stretched"),
    ((1, 2, 4, 5, 20), "fear", "prototype 1+2+4+5+20(+26)"),
    ((14,), "contempt", "one-sided dimple"),
)


# ---------------------------------------------------------------------------------------------- speed
def timing(repeats: int = 2000) -> dict:
    face = canonical_face()
    rng = np.random.default_rng(0)
    base = from_canonical_frame(face.points, 10, -5, 3, 30.0, (200, 200))
    out = {}
    for n in (1, 64):
        image = base[None] + rng.normal(0, 0.3, (n, 468, 3))
        pose = head_pose(image)
        canon = to_canonical_frame(image, pose)
        actions.analyse(canon)  # warm-up
        reps = max(20, repeats // n)
        for label, fn in (("units", lambda: actions.analyse(canon)),
                          ("pose+units", lambda: actions.analyse(to_canonical_frame(image, head_pose(image))))):
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            out[f"{label} batch {n}"] = float(np.median(times)) / n * 1e3
    return out


# ---------------------------------------------------------------------------------------------- validity
def average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    return ranks


def auc_with_ci(score: np.ndarray, positive: np.ndarray) -> tuple[float, float, float]:
    r = average_ranks(score)
    n1, n0 = positive.sum(), (~positive).sum()
    auc = (r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc ** 2) + (n0 - 1) * (q2 - auc ** 2)) / (n1 * n0))
    return float(auc), float(auc - 1.96 * se), float(auc + 1.96 * se)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(average_ranks(a), average_ranks(b))[0, 1])


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus majority protocol: drop single votes; the top class must hold more than half of the
    rest and be one of the 8 expressions; else -1."""
    v = np.where(votes == 1, 0, votes)
    total = v.sum(1)
    top = v.argmax(1)
    ok = (total > 0) & (v.max(1) > 0.5 * total) & (top < 8)
    return np.where(ok, top, -1)


def verdict(lo: float, auc: float, hi: float) -> str:
    if lo > 0.5:
        return "link" if auc >= 0.6 else "weak link"
    if hi < 0.5:
        return "opposite direction"
    return "no link shown"


def validity(split: str) -> dict:
    import ferplus_meshes as fm
    names, votes = fm.read_votes(split)
    points = fm.meshes(split, names)
    found = np.isfinite(points).all(axis=(1, 2))
    points, votes = points[found].astype(np.float64), votes[found]
    result = actions.analyse(to_canonical_frame(points, head_pose(points)))
    units = result.units
    labels = majority_labels(votes)
    share = votes[:, :8] / np.maximum(votes.sum(1, keepdims=True), 1)
    kept = labels >= 0

    def unit_score(numbers, normalise: bool):
        cols = [k for k, u in enumerate(units) if u.number in numbers]
        values = result.change[:, cols]
        if normalise:  # composite: sum of changes in threshold units
            values = values / np.array([actions.population_neutral().thresholds[k] for k in cols])
        return values.mean(1) if not normalise else values.sum(1)

    rows = []
    for numbers, cls, why in LINKS:
        c = CLASSES.index(cls)
        score = unit_score(numbers, len(numbers) > 1)
        positive = labels[kept] == c
        auc, lo, hi = auc_with_ci(score[kept], positive)
        cols = [k for k, u in enumerate(units) if u.number in numbers]
        present_cls = result.present[kept][positive][:, cols].any(1).mean()
        rows.append(dict(units="+".join(f"AU{n}" for n in numbers), crowd=cls, why=why, n_class=int(positive.sum()),
                         n_other=int((~positive).sum()), auc=auc, auc_lo=lo, auc_hi=hi,
                         spearman=spearman(score, share[:, c]), present_in_class=float(present_cls),
                         verdict=verdict(lo, auc, hi)))
    neutral = labels == 0
    false_pos = {}
    for number in sorted({u.number for u in units}):
        cols = [k for k, u in enumerate(units) if u.number == number]
        false_pos[f"AU{number}"] = float(result.present[neutral][:, cols].mean())
    return dict(split=split, images=int(len(names)), faces=int(found.sum()), kept=int(kept.sum()),
                neutral=int(neutral.sum()), rows=rows, present_on_neutral=false_pos)


def markdown(v: dict, speed: dict) -> str:
    lines = [
        f"Generated by `python benchmarks/action_units.py` on FERPlus {v['split']} (label.csv votes; "
        f"{v['faces']} of {v['images']} images with a face; {v['kept']} with a crowd majority, FERPlus protocol).",
        "AUC: the unit's change from neutral (sides averaged; composites: sum in threshold units) for images "
        "whose crowd majority is the class vs all other majority images, 95% interval (Hanley-McNeil). "
        "ρ: Spearman correlation with the class's vote share over all faces found. Present: share of that "
        "class's images where the unit (either side) is present. Verdict: *link* when the interval is "
        "above 0.5 and AUC ≥ 0.6, *weak link* when above 0.5 but AUC < 0.6.",
        "",
        "| unit | crowd class | expected because | n class / other | AUC [95%] | ρ | present | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in v["rows"]:
        lines.append(f"| {r['units']} | {r['crowd']} | {r['why']} | {r['n_class']} / {r['n_other']} | "
                     f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | {r['spearman']:+.3f} | "
                     f"{r['present_in_class']:.0%} | {r['verdict']} |")
    lines += ["", f"Occurrence on the {v['neutral']} {v['split']} faces whose crowd majority is neutral (thresholds were set so that "
              "2.5% of Valid faces with >= 8/10 neutral votes exceed them; majority-neutral is a looser set), per side:", "",
              "| " + " | ".join(v["present_on_neutral"]) + " |",
              "|" + "---|" * len(v["present_on_neutral"]),
              "| " + " | ".join(f"{x:.1%}" for x in v["present_on_neutral"].values()) + " |", "",
              "Speed, one thread, per face (median): " + "; ".join(f"{k}: {t:.4f} ms" for k, t in speed.items()) + "."]
    return "\n".join(lines)


def definitions_table() -> str:
    """Per-unit definitions, thresholds and reliability, from mien.actions and neutral_face.npz."""
    ref = actions.population_neutral()
    lines = [f"Generated from `mien.actions` and `src/mien/data/neutral_face.npz` ({ref.source}). Landmark "
             "numbers are for the subject's right side; the left side uses the mirror landmarks. "
             "Threshold: on `change`, in the measure's units (IOD; AU27: ratio).", "",
             "| AU | columns | measure (canonical frame) | threshold | reliability |", "|---|---|---|---|---|"]
    seen = set()
    for u, t in zip(actions.action_units(), ref.thresholds):
        if u.number in seen:
            continue
        seen.add(u.number)
        col = f"`au{u.number:02d}_{u.name}`" + (" `_l` / `_r`" if u.side else "")
        lines.append(f"| AU{u.number} | {col} | {u.definition} | {t:.4f} | **{u.reliability}**: {u.note} |")
    return "\n".join(lines)


def write_doc(sections: dict) -> None:
    doc = DOC.read_text()
    for key, text in sections.items():
        start, end = MARKERS[key]
        if start not in doc or end not in doc:
            raise SystemExit(f"{DOC} lacks the {start} / {end} markers")
        head, rest = doc.split(start, 1)
        _, tail = rest.split(end, 1)
        doc = f"{head}{start}\n{text}\n{end}{tail}"
    DOC.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="Test", choices=("Train", "Valid", "Test"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/action_units.md alone")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    speed = timing()
    for k, t in speed.items():
        print(f"{k}: {t:.4f} ms per face")
    v = validity(args.split)
    text = markdown(v, speed)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(dict(speed_ms_per_face=speed, validity=v), indent=1))
    if not args.no_write:
        if args.split != "Test":
            raise SystemExit("the docs table reports Test only; use --no-write for other splits")
        write_doc({"definitions": definitions_table(), "validity": text})
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
