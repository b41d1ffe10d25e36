"""Action units: validity against FACS coders and the FERPlus crowd, and speed on one core.

One command, ``python benchmarks/action_units.py``:

(a) Against certified FACS coders, crossval CK+ (``../shared/data/crossval/ckplus48``, 375 peak
    frames of 43 people, ``AU1`` … ``AU27`` codes): per unit, the AUC of its intensity (larger
    side) against the code, and precision, recall and F1 of ``present`` (either side) at the
    shipped threshold. The 48x48 crops are upscaled 4x and padded with a 48 px replicated border
    (tools/crossval_meshes.py), as the crossval README says.
(b) FERPlus Test (label.csv, fer0033120.png excluded; meshes of ``upscale_with_border`` images,
    tools/ferplus_meshes.py): how often each unit is present on faces whose crowd majority is
    neutral (false-positive rate), how many units are present on crowd-happy faces, and
    convergent AUCs: a unit's intensity (larger side) for faces whose crowd majority is the
    class the FACS-based prototypes (EMFACS) link it to, against all other majority faces.
(c) Video (``../shared/data/demo/openmpf/video_01.mp4``, default options, track baseline): the
    largest face grins through the clip; the share of her reliable frames with AU12 present
    (either side), which baseline they used, and her AU15/AU23/AU24 episodes.
(d) Per-face time of ``actions.analyse`` on batches of 1 and 64 faces, one thread.

It writes the figures to ``src/mien/data/action_unit_validity.json`` (shipped: ``mien.actions``
reads each unit's coder AUC from it and marks units below 0.70 experimental), records its checksum in
the manifest, and regenerates the unit and validity tables in docs/action_units.md and the column
table of docs/schema.md. Meshes are cached in cache/ (ignored by git).

    python benchmarks/action_units.py                           # CK+ and FERPlus Test; writes JSON and docs
    python benchmarks/action_units.py --split Valid --no-write  # development split, prints only
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
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
FIGURES = ROOT / "src" / "mien" / "data" / "action_unit_validity.json"
MARKERS = {"definitions": ("<!-- definitions:start -->", "<!-- definitions:end -->"),
           "validity": ("<!-- validity:start -->", "<!-- validity:end -->"),
           "targets": ("<!-- targets:start -->", "<!-- targets:end -->")}
VIDEO = ROOT.parent / "shared" / "data" / "demo" / "openmpf" / "video_01.mp4"
CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
MIN_POSITIVES = 10  # coder AUCs are reported for units coded on at least this many images

# (unit, crowd classes, why): links predicted by FACS-based expression prototypes (EMFACS).
LINKS = (
    (12, ("happiness",), "smile: lip corners up"),
    (6, ("happiness",), "Duchenne smile: cheeks up"),
    (4, ("anger", "disgust"), "brows down and together"),
    (9, ("anger", "disgust"), "nose wrinkled"),
    (10, ("anger", "disgust"), "upper lip raised"),
    (7, ("anger",), "lids tightened"),
    (23, ("anger",), "lips tightened"),
    (24, ("anger",), "lips pressed"),
    (1, ("surprise",), "brows up"),
    (2, ("surprise",), "brows up"),
    (5, ("surprise",), "eyes wide"),
    (26, ("surprise",), "jaw drop"),
    (27, ("surprise",), "mouth stretched open"),
    (1, ("sadness",), "inner brows up"),
    (4, ("sadness",), "brows drawn down"),
    (15, ("sadness",), "lip corners down"),
    (17, ("sadness",), "chin raised"),
    (20, ("fear",), "lips stretched"),
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


def larger_side(values: np.ndarray, number: int) -> np.ndarray:
    cols = [k for k, u in enumerate(actions.action_units()) if u.number == number]
    return values[:, cols].max(1)


def unit_numbers() -> list[int]:
    return sorted({u.number for u in actions.action_units()})


def analyse_points(points: np.ndarray) -> actions.ActionUnitResult:
    points = points.astype(np.float64)
    return actions.analyse(to_canonical_frame(points, head_pose(points)))


def coders() -> dict:
    """(a): every measured unit against the CK+ FACS codes."""
    import crossval_meshes as cm
    names, subjects, codes = cm.read_codes()
    points = cm.meshes(names)
    found = np.isfinite(points).all(axis=(1, 2))
    result = analyse_points(points[found])
    units = {}
    for n in unit_numbers():
        if n not in codes:
            continue
        code = codes[n][found]
        score = larger_side(result.intensity, n)
        present = larger_side(result.present, n)
        hits = int((present & code).sum())
        precision = hits / present.sum() if present.sum() else None
        recall = hits / code.sum() if code.sum() else None
        f1 = 2 * hits / (present.sum() + code.sum()) if present.sum() + code.sum() else None
        enough = code.sum() >= MIN_POSITIVES and (~code).sum() >= MIN_POSITIVES
        auc, lo, hi = auc_with_ci(score, code) if enough else (None, None, None)
        units[f"AU{n}"] = dict(positives=int(code.sum()), auc=auc, auc_lo=lo, auc_hi=hi, precision=precision,
                               recall=recall, f1=f1, present=float(present.mean()))
    aucs = {k: v["auc"] for k, v in units.items() if v["auc"] is not None}
    return dict(images=int(len(names)), faces=int(found.sum()), people=int(len(set(subjects))),
                units=units, mean_auc=float(np.mean(list(aucs.values()))),
                below_070=sorted((k for k, a in aucs.items() if a < actions.VALIDATED_AUC), key=lambda k: int(k[2:])))


def crowd(split: str, coders: dict) -> dict:
    """(b): false positives on crowd-neutral faces, units on crowd-happy faces, convergent AUCs."""
    import ferplus_meshes as fm
    names, votes = fm.read_votes(split)
    points = fm.meshes(split, names)
    found = np.isfinite(points).all(axis=(1, 2))
    result = analyse_points(points[found])
    labels = fm.majority_labels(votes[found])
    kept = labels >= 0
    rows = []
    for n, classes, why in LINKS:
        positive = np.isin(labels[kept], [CLASSES.index(c) for c in classes])
        auc, lo, hi = auc_with_ci(larger_side(result.intensity, n)[kept], positive)
        present = larger_side(result.present, n)[kept]
        rows.append(dict(unit=f"AU{n}", crowd="/".join(classes), why=why, n_class=int(positive.sum()),
                         n_other=int((~positive).sum()), auc=auc, auc_lo=lo, auc_hi=hi,
                         present_in_class=float(present[positive].mean()), verdict=verdict(lo, auc, hi)))
    neutral, happy = labels == 0, labels == 1
    each = {f"AU{n}": larger_side(result.present, n) for n in unit_numbers()}
    validated = {u.number for u in actions.action_units() if not actions.is_experimental(u, coders)}
    on_happy = np.stack([each[f"AU{n}"][happy] for n in unit_numbers()], 1)
    reported = np.array([n in validated for n in unit_numbers()])
    return dict(split=split, images=int(len(names)), faces=int(found.sum()), kept=int(kept.sum()),
                neutral=int(neutral.sum()), happy=int(happy.sum()), links=rows,
                present_on_neutral={k: float(v[neutral].mean()) for k, v in each.items()},
                units_on_happy=float(on_happy.sum(1).mean()),
                reported_units_on_happy=float(on_happy[:, reported].sum(1).mean()))


def astronaut() -> dict:
    """Units present on the bundled sample photo, and any incompatible pair among them."""
    from mien.analyzer import Analyzer
    faces = Analyzer().analyze(ROOT / "src" / "mien" / "data" / "astronaut.png")
    present = faces.actions.present[0]
    labels = [u.label for u, p in zip(faces.actions.units, present) if p]
    clashes = np.argwhere(np.triu(actions.exclusive_matrix()) & present[:, None] & present[None, :])
    return dict(present=labels, contradictory_pairs=[[faces.actions.units[i].label, faces.actions.units[j].label]
                                                     for i, j in clashes])


def grinning_track() -> dict:
    """(c): the largest face of video_01.mp4, who grins throughout."""
    import pandas as pd
    from mien.analyzer import Analyzer, Mode, Options
    from mien.results import to_frame
    from mien.video.analysis import analyze_frames
    from mien.video.summaries import action_unit_episodes
    table = to_frame(list(analyze_frames(VIDEO, Analyzer(Options(mode=Mode.VIDEO, iris=False)))))
    faces = table[table["track"].notna()]
    track = int(faces.groupby("track")["iod_px"].median().idxmax())
    her = faces[(faces["track"] == track) & (faces["reliable"] == True)]  # noqa: E712 (nullable booleans)
    au12 = her["au12_lip_corner_puller_l_present"].astype(bool) | her["au12_lip_corner_puller_r_present"].astype(bool)
    episodes = action_unit_episodes(table)
    mouth = episodes[(episodes["track"] == track) & episodes["unit"].str.match(r"au(15|23|24)_")]
    return dict(video=VIDEO.name, track=track, reliable_frames=int(len(her)), au12_present=float(au12.mean()),
                baselines=pd.Series(her["au_baseline"]).value_counts().to_dict(),
                au15_au23_au24_episodes=sorted(set(mouth["unit"])))


def verdict(lo: float, auc: float, hi: float) -> str:
    if lo > 0.5:
        return "link" if auc >= 0.6 else "weak link"
    if hi < 0.5:
        return "opposite direction"
    return "no link shown"


def _fmt(x, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def targets(c: dict, v: dict, a: dict, video: dict) -> str:
    """The issue's targets against the measured figures (FERPlus part: Test only)."""
    units = c["units"]
    experimental = {f"AU{u.number}" for u in actions.action_units() if actions.is_experimental(u, c)}
    unmarked = [k for k in c["below_070"] if k not in experimental]
    worst_neutral = max(v["present_on_neutral"].items(), key=lambda kv: kv[1])
    au12 = next(r for r in v["links"] if r["unit"] == "AU12" and r["crowd"] == "happiness")
    rows = [
        ("CK+: mean AUC over units with ≥ 10 positives ≥ 0.85", f"{c['mean_auc']:.3f}", c["mean_auc"] >= 0.85),
        ("CK+: none below 0.70 unless marked experimental",
         f"below: {', '.join(c['below_070']) or 'none'}; unmarked: {', '.join(unmarked) or 'none'}", not unmarked),
        ("CK+: AU15 ≥ 0.75", f"{units['AU15']['auc']:.3f}", units["AU15"]["auc"] >= 0.75),
        ("CK+: AU23 ≥ 0.70", f"{units['AU23']['auc']:.3f}", units["AU23"]["auc"] >= 0.70),
        (f"FERPlus {v['split']}: AU12 vs happiness AUC ≥ 0.92", f"{au12['auc']:.3f}", au12["auc"] >= 0.92),
        (f"FERPlus {v['split']}: every unit present on ≤ 5% of crowd-neutral faces",
         f"highest: {worst_neutral[0]} {worst_neutral[1]:.1%}", worst_neutral[1] <= 0.05),
        (f"FERPlus {v['split']}: mean units present on crowd-happy faces ≤ 3",
         f"{v['reported_units_on_happy']:.2f} (units not experimental); {v['units_on_happy']:.2f} (all)",
         v["reported_units_on_happy"] <= 3),
        ("astronaut.png: no contradictory pair", ", ".join("/".join(p) for p in a["contradictory_pairs"]) or "none",
         not a["contradictory_pairs"]),
        (f"{video['video']}: the grinning woman has AU12 present on ≥ 90% of her reliable frames",
         f"{video['au12_present']:.0%} of {video['reliable_frames']} (baseline: "
         f"{', '.join(f'{k} {n}' for k, n in video['baselines'].items())})", video["au12_present"] >= 0.9),
        (f"{video['video']}: no AU15/AU23/AU24 episode for her", ", ".join(video["au15_au23_au24_episodes"]) or "none",
         not video["au15_au23_au24_episodes"]),
    ]
    lines = ["| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in rows]
    return "\n".join(lines)


def markdown(c: dict, v: dict, a: dict, speed: dict) -> str:
    lines = [
        "#### Against FACS coders (crossval CK+)", "",
        f"{c['faces']} of {c['images']} CK+ peak frames ({c['people']} people, three frames per sequence) "
        "with a face. AUC: the unit's intensity (larger side) against the coders' 0/1 code, 95% interval "
        "(Hanley-McNeil; frames of one sequence are near-copies, so the intervals are too narrow). Precision, "
        "recall and F1: `present` on either side at the shipped threshold. Units coded on fewer than "
        f"{MIN_POSITIVES} images get no AUC.", "",
        "| unit | positives | AUC [95%] | precision | recall | F1 | present |", "|---|---|---|---|---|---|---|"]
    for k, r in c["units"].items():
        ci = f"{_fmt(r['auc'], '.3f')} [{_fmt(r['auc_lo'], '.3f')}, {_fmt(r['auc_hi'], '.3f')}]" if r["auc"] is not None else "–"
        lines.append(f"| {k} | {r['positives']} | {ci} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | "
                     f"{_fmt(r['f1'])} | {r['present']:.0%} |")
    lines += ["", f"Mean AUC over the {len([1 for r in c['units'].values() if r['auc'] is not None])} units with "
                  f"an AUC: **{c['mean_auc']:.3f}**; below {actions.VALIDATED_AUC:.2f} (marked experimental): "
                  f"{', '.join(c['below_070']) or 'none'}.", "",
              f"#### Against the FERPlus crowd ({v['split']})", "",
              f"FERPlus {v['split']} (label.csv votes; {v['faces']} of {v['images']} images with a face; {v['kept']} "
              "with a crowd majority, FERPlus protocol). AUC: the unit's intensity (larger side) for faces whose crowd "
              "majority is the class vs all other majority faces, 95% interval. Present: share of the class's faces "
              "with the unit on either side. Verdict: *link* when the interval is above 0.5 and AUC ≥ 0.6, *weak "
              "link* when above 0.5 but AUC < 0.6.", "",
              "| unit | crowd class | expected because | n class / other | AUC [95%] | present | verdict |",
              "|---|---|---|---|---|---|---|"]
    for r in v["links"]:
        lines.append(f"| {r['unit']} | {r['crowd']} | {r['why']} | {r['n_class']} / {r['n_other']} | "
                     f"{r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | {r['present_in_class']:.0%} | {r['verdict']} |")
    lines += ["", f"Present (either side) on the {v['neutral']} faces whose crowd majority is neutral (thresholds: "
              "3% of Valid majority-neutral faces):", "",
              "| " + " | ".join(v["present_on_neutral"]) + " |",
              "|" + "---|" * len(v["present_on_neutral"]),
              "| " + " | ".join(f"{x:.1%}" for x in v["present_on_neutral"].values()) + " |", "",
              f"Units present (either side counts once) on the {v['happy']} crowd-happy faces: "
              f"{v['units_on_happy']:.2f} on average; {v['reported_units_on_happy']:.2f} counting only units that "
              "are not experimental.", "",
              f"Sample photo (`astronaut.png`): present {', '.join(a['present']) or 'nothing'}; contradictory pairs: "
              f"{', '.join('/'.join(p) for p in a['contradictory_pairs']) or 'none'}.", "",
              "Speed, one thread, per face (median): " + "; ".join(f"{k}: {t:.4f} ms" for k, t in speed.items()) + "."]
    return "\n".join(lines)


def definitions_table() -> str:
    """Per-unit definitions, thresholds, coder AUC and reliability, from mien.actions and its data."""
    ref = actions.population_neutral()
    lines = [f"Generated from `mien.actions`, `src/mien/data/neutral_face.npz` ({ref.source}) and "
             "`src/mien/data/action_unit_validity.json`. Landmark numbers are for the subject's right side; the "
             "left side uses the mirror landmarks. Threshold: on `change`, in the measure's units (AU1, AU2, AU4, "
             "AU5, AU43: share of the upper face's height; AU15, AU20, AU23: IOD; AU17: share of the nose-to-chin "
             "height; AU27: ratio; the other heights: canonical centimetres). Coder AUC: crossval CK+, from the table below.", "",
             "| AU | columns | measure (canonical frame) | threshold | coder AUC | reliability |", "|---|---|---|---|---|---|"]
    seen = set()
    for u, t in zip(actions.action_units(), ref.thresholds):
        if u.number in seen:
            continue
        seen.add(u.number)
        col = f"`au{u.number:02d}_{u.name}`" + (" `_l` / `_r`" if u.side else "")
        status = "**experimental**" if actions.is_experimental(u) else f"**{u.reliability}**"
        lines.append(f"| AU{u.number} | {col} | {u.definition} | {t:.4f} | {_fmt(actions.coder_auc(u.number))} | "
                     f"{status}: {u.note} |")
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
    tmp = DOC.with_suffix(".md.tmp")
    tmp.write_text(doc)
    tmp.replace(DOC)


def write_figures(figures: dict) -> None:
    """Write the shipped figures and record their new checksum in the manifest, which mien checks on load."""
    from mien import runtime
    tmp = FIGURES.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(figures, indent=1) + "\n")
    tmp.replace(FIGURES)
    subprocess.run([sys.executable, str(ROOT / "tools" / "refresh_manifest.py")], check=True, stdout=subprocess.DEVNULL)
    runtime._manifest_document.cache_clear()
    actions.validity.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="Test", choices=("Train", "Valid", "Test"), help="FERPlus split for (b)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the JSON and the docs alone")
    args = parser.parse_args()
    if not args.no_write and args.split != "Test":
        raise SystemExit("the shipped figures report FERPlus Test only; use --no-write for other splits")

    c = coders()
    if not args.no_write:  # mien's schema (imported with the analyzer below) reads the coder AUCs
        write_figures(dict(generated_by="python benchmarks/action_units.py", ckplus48=c))
    v = crowd(args.split, c)
    a = astronaut()
    video = grinning_track()
    speed = timing()
    text = markdown(c, v, a, speed)
    goals = targets(c, v, a, video)
    print(text, goals, sep="\n\n")
    if not args.no_write:
        write_figures(dict(generated_by="python benchmarks/action_units.py", ckplus48=c, ferplus_test=v, astronaut=a,
                           video=video))
        write_doc({"definitions": definitions_table(), "validity": text, "targets": goals})
        # the schema's column descriptions carry the coder AUCs: keep docs/schema.md in step
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_schema_doc.py")], check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, stdout=subprocess.DEVNULL)
        print(f"wrote {FIGURES.relative_to(ROOT)}, {DOC.relative_to(ROOT)} and docs/schema.md")


if __name__ == "__main__":
    main()
