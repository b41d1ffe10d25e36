"""The validity card: one audit result (:class:`~mien.audit.result.AuditResult`) as JSON, Markdown
and a self-contained HTML page; and, for a run over several datasets, a comparison page.

The HTML has inline SVG plots and an inline style sheet, no scripts and no external resources (its
Content-Security-Policy forbids both). Every string that comes from the dataset, the model or the
user is escaped where it is written.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from ..io import atomic_path, to_csv_safe
from .metrics import CLASSES
from .result import AuditResult, ComparisonRow, json_value


# ---- JSON ----------------------------------------------------------------------------------------------

def to_json(result: AuditResult) -> str:
    """The card's JSON text (``AuditResult.to_dict()``, indented, NaN written as null), ending in a newline."""
    return json.dumps(result.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# ---- words ---------------------------------------------------------------------------------------------

def _pct(x, digits: int = 1) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.{digits}f}%"


def _ci(ci, digits: int = 1) -> str:
    if not ci or any(v is None or not math.isfinite(v) for v in ci):
        return ""
    if ci[0] < 0:  # "−1.6% to 1.0%" reads better than "-1.6–1.0%"
        return f"{100 * ci[0]:.{digits}f}% to {100 * ci[1]:.{digits}f}%".replace("-", "−")
    return f"{100 * ci[0]:.{digits}f}–{100 * ci[1]:.{digits}f}%"


def _num(x, digits: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def meaning(result: AuditResult) -> str:
    """The card's first paragraph (plain text; escape it where it is written)."""
    d, m, h = result.dataset, result.model, result.headline
    if d.has_votes:
        who = (f"the label that most of the (about {d.votes_per_image_median:.0f}) people who looked at each picture "
               f"chose")
    else:
        who = "the one label that the dataset gives each picture"
    text = f"This card shows how often the model “{m.name}” picks {who}, for {h.images} face images of “{d.name}”"
    if h.single_annotator:
        text += ", and how often a single one of those people agrees with the others"
    text += (". These numbers measure agreement with what observers said about how a face looks. They cannot show "
             "what anyone in the pictures felt: neither the model nor the observers know that, and a face that most "
             "people call happy may belong to someone who is not. They also do not show that the model will agree "
             "with observers on other people, cameras, cultures or settings. mien refuses to use such numbers "
             "for emotion inference, lie detection, hiring, or judging people at work or school.")
    return text


def _label_kind(result: AuditResult) -> str:
    """What the model is compared with: the crowd majority (votes) or the dataset's one label."""
    return "crowd majority" if result.dataset.has_votes else "dataset's label"


def _reference(result: AuditResult) -> str:
    return f"the {_label_kind(result)}"


def summary(result: AuditResult) -> str:
    """The card's one-sentence summary (plain text): the model's agreement with the reference labels
    with its 95% interval, the coverage when some images got no prediction, and the single-annotator
    baseline where there are crowd votes."""
    h = result.headline
    s = f"Agreement with {_reference(result)}: {_pct(h.accuracy)}"
    if _ci(h.accuracy_ci95):
        s += f" (95% interval {_ci(h.accuracy_ci95)})"
    if h.coverage < 1:
        s += f", with a prediction for {_pct(h.coverage)} of the images (the others count as wrong)"
    if h.single_annotator:
        s += (f"; one human annotator against the majority of the others: {_pct(h.single_annotator.accuracy)} "
              f"({_ci(h.single_annotator.accuracy_ci95)})")
    return s + "."


def absent_classes_note(result: AuditResult) -> str:
    """What a dataset without some classes (e.g. no neutral, no contempt) changes; empty if none."""
    absent = result.dataset.classes_absent
    if not absent:
        return ""
    present = len(CLASSES) - len(absent)
    return (f"No scored image is labelled {', '.join(absent)}: per-class recall and UAR are over the {present} "
            f"classes present. The model can still answer {', '.join(absent)}; such answers count as wrong.")


def _rows_headline(result: AuditResult) -> list[tuple[str, str, str, str]]:
    """(what, model, 95% interval, single annotator)."""
    h = result.headline
    base = h.single_annotator
    rows = [(f"accuracy vs {_reference(result)}", _pct(h.accuracy), _ci(h.accuracy_ci95), _pct(base and base.accuracy)),
            ("unweighted average recall (UAR)", _pct(h.uar), _ci(h.uar_ci95), _pct(base and base.uar))]
    if h.uar_classes_it_can_output is not None:
        rows.append(("UAR over the classes the model can output", _pct(h.uar_classes_it_can_output), "", ""))
    if h.coverage < 1:
        rows.append(("images with a prediction (coverage)", _pct(h.coverage), "", ""))
    if h.kl is not None:
        rows.append(("KL(crowd ‖ model), nats, lower is better", _num(h.kl), f"{_num(h.kl_ci95[0])}–{_num(h.kl_ci95[1])}", ""))
    rows.append(("expected calibration error (ECE, 10 bins)", _pct(h.ece), _ci(h.ece_ci95), ""))
    rows.append(("area under risk–coverage (AURC), lower is better", _num(h.aurc), "", ""))
    for r, c in h.coverage_at_risk.items():
        rows.append((f"share answered with error ≤ {float(r):.0%}", _pct(c), "", ""))
    rows.append(("images scored", str(h.images), "", str(base.images) if base else ""))
    return rows


def _subset_rows(result: AuditResult) -> list[tuple[str, ...]]:
    h = result.headline
    base = h.single_annotator
    rows = [("all images scored", str(h.images), _pct(h.accuracy), _ci(h.accuracy_ci95), _pct(h.uar),
             _num(h.kl), _pct(base and base.accuracy))]
    for s in result.subsets.values():
        rows.append((s.what, str(s.images), _pct(s.accuracy), _ci(s.accuracy_ci95), _pct(s.uar), _num(s.kl),
                     _pct(s.single_annotator_accuracy)))
    return rows


def _per_class_rows(result: AuditResult) -> list[tuple[str, ...]]:
    h = result.headline
    base = h.single_annotator.per_class_recall if h.single_annotator else {}
    return [(c, str(h.per_class_images[c]), _pct(h.per_class_recall[c]), _pct(base.get(c))) for c in CLASSES]


def _robustness_rows(result: AuditResult) -> list[tuple[str, ...]]:
    return [(r.label, _pct(r.accuracy), _pct(r.drop), _ci(r.drop_ci95), _pct(r.changed))
            for r in result.robustness.rows or []]


def _data_and_model(result: AuditResult) -> list[str]:
    """The card's closing list (plain text)."""
    d, m = result.dataset, result.model
    out = [f"Protocol: {result.protocol}",
           f"Dataset: {d.path} ({d.layout} layout), {d.images_listed} images listed, {d.images_scored} scored, "
           f"{d.left_out_no_majority} left out without a majority label.",
           f"Model: {m.description}. Classes it can output: {', '.join(m.classes_out)}."]
    if m.classes_missing:
        out.append(f"Classes it cannot output (counted as wrong when the crowd chose them): {', '.join(m.classes_missing)}.")
    out += d.notes + m.notes + ([d.duplicates] if d.duplicates else [])
    out.append(f"mien {result.mien_version}, seed {result.seed}, {result.bootstrap_samples} bootstrap resamples; "
               "see mien's docs/audit.md for what each metric means.")
    return out


COMPARISON_TITLE = "How it holds on other datasets"
COMPARISON_HEADER = ("dataset", "labels", "classes absent", "images", "accuracy", "UAR", "ECE",
                     "images with a prediction", "no face found by mien")
COMPARISON_TEXT = (
    "The same model and settings on each dataset of this run. Labels differ in kind between datasets (a crowd "
    "majority, one annotator's label, or the expression a person was asked to pose), so a gap between rows mixes "
    "the model's dependence on the data with the labels' own differences. UAR is over the classes each dataset "
    "has. “No face found by mien” counts images where mien's own face measurement (the strata) found no face; "
    "it does not change the model's predictions.")


def comparison_rows(rows: list[ComparisonRow]) -> list[tuple[str, ...]]:
    """The comparison table's cells as text, one tuple per dataset, in ``COMPARISON_HEADER`` order."""
    return [(r.dataset, "crowd votes" if r.has_votes else "one label", ", ".join(r.classes_absent) or "none",
             str(r.images), _pct(r.accuracy), _pct(r.uar), _num(r.ece),
             f"{_pct(r.coverage)} ({r.without_prediction} without)" if r.without_prediction else _pct(r.coverage),
             "n/a" if r.no_face is None else str(r.no_face)) for r in rows]


CANNOT = (
    "Agreement with observers is not knowledge of what anyone feels. The labels are what people said a face "
    "looks like; people often show no typical face for what they feel and make these faces for other reasons.",
    "The crowd is one crowd: these annotators, this labelling task, these word choices. Another crowd, "
    "culture or language may label the same faces differently.",
    "The images are one dataset: posed and candid web photos of a certain mix of people, cameras and "
    "framings. Accuracy elsewhere can be much lower.",
    "A single annotator's score is a reference for how much people agree, not a ceiling or a target: a model "
    "can beat it by learning the majority's habits, including its biases.",
    "Strata are measured by mien on the same images and can be wrong; small strata have wide intervals.",
    "Nothing here says whether it is appropriate to use the model on anyone. mien refuses emotion inference, "
    "lie detection, hiring, and the judging of people at work or school.",
)


# ---- Markdown ------------------------------------------------------------------------------------------

def md_escape(s) -> str:
    """``s`` as text that Markdown shows literally inside a table cell (one line, no markup, no HTML)."""
    s = str(s).replace("\\", "\\\\")
    for ch in "|`*_[]#":
        s = s.replace(ch, "\\" + ch)
    return s.replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_table(header, rows) -> str:
    out = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(out)



def to_markdown(result: AuditResult) -> str:
    """The whole validity card for ``result`` as Markdown (the same sections as :func:`to_html`, without figures)."""
    d, m, h = result.dataset, result.model, result.headline
    parts = [f"# Validity card: {md_escape(m.name)} on {md_escape(d.name)}", "", md_escape(meaning(result)), "",
             md_escape(summary(result)), "", "## Headline", "",
             _md_table(("what", "model", "95% interval", "single annotator"), _rows_headline(result)), ""]
    for note in (h.calibration_note, absent_classes_note(result)):
        if note:
            parts += [md_escape(note), ""]
    parts += ["## Per class", "", _md_table(("crowd label", "images", "model recall", "single annotator"),
                                            _per_class_rows(result)), ""]
    parts += [f"## Confusion matrix (rows: {_label_kind(result)}, columns: model)", "",
              _md_table(("",) + CLASSES, [(c,) + tuple(str(v) for v in row) for c, row in zip(CLASSES, h.confusion)]), ""]
    if h.images_without_prediction:
        parts += [md_escape(f"Not in the matrix: {h.images_without_prediction} images without a prediction ("
                            + ", ".join(f"{c} {n}" for c, n in h.no_prediction_per_class.items() if n) + ")."), ""]
    if result.subsets:
        parts += ["## With and without duplicates", "", _md_table(
            ("images", "n", "accuracy", "95% interval", "UAR", "KL", "single annotator"), _subset_rows(result)), ""]
    if result.other_datasets:
        parts += [f"## {COMPARISON_TITLE}", "", md_escape(COMPARISON_TEXT), "",
                  _md_table(COMPARISON_HEADER, comparison_rows(result.other_datasets)), ""]
    parts += ["## Robustness", ""]
    rob = result.robustness
    if rob.rows:
        if rob.note:
            parts += [f"Robustness {md_escape(rob.note)}.", ""]
        parts += [_md_table(("change", "accuracy", "drop", "95% interval of drop", "predictions changed"),
                            _robustness_rows(result)), ""]
    else:
        parts += [f"Not measured: {md_escape(rob.skipped or 'no predictions for changed images')}.", ""]
    parts += ["## Strata (mien's measurements of the same images)", ""]
    st = result.strata
    if st.groups is not None:
        for g, rows in st.groups.items():
            parts += [f"**{md_escape(g)}**", "", _md_table(
                ("bin", "images", "accuracy", "95% interval"),
                [(r.bin, str(r.images), _pct(r.accuracy), _ci(r.ci95)) for r in rows]), ""]
    else:
        parts += [f"Not measured: {md_escape(st.skipped)}.", ""]
    parts += ["## Where it breaks", ""] + [f"- {md_escape(s)}" for s in result.breaks] + [""]
    parts += ["## What these numbers cannot mean", ""] + [f"- {md_escape(s)}" for s in CANNOT] + [""]
    if result.examples:
        parts += ["## Most confident disagreements", "", _md_table(
            ("image", "crowd", "model", "model's probability"),
            [(e.image, e.crowd, e.model, _pct(e.model_p)) for e in result.examples]), ""]
    parts += ["## Data and model", ""] + [f"- {md_escape(s)}" for s in _data_and_model(result)] + [""]
    return "\n".join(parts)


# ---- SVG plots ------------------------------------------------------------------------------------------

E = html.escape
BLUE, GREY, RED = "#2b6cb0", "#a0aec0", "#c53030"


def _svg(w, h, body, title) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{E(title)}"><title>{E(title)}</title>{body}</svg>')


def _axes(x0, y0, w, h, xlabel, ylabel, xticks, yticks) -> str:
    s = f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>'
    for v, px in xticks:
        s += f'<line x1="{px:.1f}" y1="{y0 + h}" x2="{px:.1f}" y2="{y0 + h + 4}" stroke="#888"/>'
        s += f'<text x="{px:.1f}" y="{y0 + h + 16}" font-size="11" text-anchor="middle">{E(v)}</text>'
    for v, py in yticks:
        s += f'<line x1="{x0 - 4}" y1="{py:.1f}" x2="{x0}" y2="{py:.1f}" stroke="#888"/>'
        s += f'<text x="{x0 - 6}" y="{py + 4:.1f}" font-size="11" text-anchor="end">{E(v)}</text>'
    s += f'<text x="{x0 + w / 2}" y="{y0 + h + 32}" font-size="12" text-anchor="middle">{E(xlabel)}</text>'
    s += (f'<text x="{x0 - 40}" y="{y0 + h / 2}" font-size="12" text-anchor="middle" '
          f'transform="rotate(-90 {x0 - 40} {y0 + h / 2})">{E(ylabel)}</text>')
    return s


def svg_reliability(bins: list[dict]) -> str:
    """A reliability diagram as an SVG string: per confidence bin (``bins``: dicts with ``lo``, ``hi``,
    ``count``, ``accuracy`` and ``confidence``), accuracy against the model's top probability; the
    diagonal is perfect calibration."""
    x0, y0, w, h = 60, 15, 260, 260
    sx = lambda v: x0 + v * w
    sy = lambda v: y0 + h - v * h
    ticks = [(f"{t:.1f}", sx(t)) for t in (0, .2, .4, .6, .8, 1)]
    s = _axes(x0, y0, w, h, "model confidence (top probability)", "accuracy", ticks,
              [(f"{t:.1f}", sy(t)) for t in (0, .2, .4, .6, .8, 1)])
    s += f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="{GREY}" stroke-dasharray="4 3"/>'
    total = sum(b["count"] for b in bins) or 1
    for b in bins:
        if not b["count"] or b["accuracy"] is None or not math.isfinite(b["accuracy"]):
            continue
        bw = (b["hi"] - b["lo"]) * w
        tip = "{:.1f}–{:.1f}: {} images, accuracy {:.2f}, confidence {:.2f}".format(
            b["lo"], b["hi"], b["count"], b["accuracy"], b["confidence"])
        s += (f'<rect x="{sx(b["lo"]) + 1:.1f}" y="{sy(b["accuracy"]):.1f}" width="{bw - 2:.1f}" '
              f'height="{b["accuracy"] * h:.1f}" fill="{BLUE}" fill-opacity="0.75"><title>{E(tip)}</title></rect>')
        s += (f'<circle cx="{sx(b["confidence"]):.1f}" cy="{sy(b["confidence"]):.1f}" r="3" fill="{RED}"/>')
        share = b["count"] / total
        s += f'<rect x="{sx(b["lo"]) + 1:.1f}" y="{y0 + h - 2 - share * 40:.1f}" width="{bw - 2:.1f}" height="{share * 40:.1f}" fill="#222" fill-opacity="0.35"/>'
    legend = (f'<rect x="{x0 + 8}" y="{y0 + 8}" width="10" height="10" fill="{BLUE}"/><text x="{x0 + 22}" y="{y0 + 17}" '
              f'font-size="11">accuracy per bin</text><circle cx="{x0 + 13}" cy="{y0 + 28}" r="3" fill="{RED}"/>'
              f'<text x="{x0 + 22}" y="{y0 + 32}" font-size="11">mean confidence</text>'
              f'<text x="{x0 + 8}" y="{y0 + 47}" font-size="11">dark foot: share of images</text>')
    return _svg(340, 320, s + legend, "Reliability diagram")


def svg_risk_coverage(curve: dict, human: float | None) -> str:
    """A risk-coverage curve as an SVG string: the error rate among the images answered when only the
    most confident share is answered. ``curve``: lists ``coverage`` and ``risk`` (0-1); ``human``: the
    single annotator's accuracy, drawn as a reference line at its error rate (None: no line)."""
    x0, y0, w, h = 60, 15, 260, 260
    cov, risk = curve.get("coverage", []), curve.get("risk", [])
    ref = [1 - human] if human is not None and math.isfinite(human) else []
    ymax = max([0.1] + [r for r in risk if r is not None] + ref) * 1.1
    ymax = min(1.0, math.ceil(ymax * 10) / 10)
    sx = lambda v: x0 + v * w
    sy = lambda v: y0 + h - v / ymax * h
    yt = [round(t, 2) for t in np.linspace(0, ymax, 6)]
    s = _axes(x0, y0, w, h, "coverage (share of images answered)", "error rate among answered",
              [(f"{t:.1f}", sx(t)) for t in (0, .2, .4, .6, .8, 1)], [(f"{t:.2f}", sy(t)) for t in yt])
    if cov:
        pts = " ".join(f"{sx(c):.1f},{sy(r):.1f}" for c, r in zip(cov, risk))
        s += f'<polyline points="{pts}" fill="none" stroke="{BLUE}" stroke-width="2"/>'
    if human is not None and math.isfinite(human) and 1 - human <= ymax:
        s += (f'<line x1="{sx(0)}" y1="{sy(1 - human):.1f}" x2="{sx(1)}" y2="{sy(1 - human):.1f}" stroke="{RED}" '
              f'stroke-dasharray="5 3"/><text x="{sx(0.02)}" y="{sy(1 - human) - 4:.1f}" font-size="11" fill="{RED}">'
              f'single annotator\'s error rate</text>')
    return _svg(340, 320, s, "Risk–coverage curve")


def _nice_ticks(vmin: float, vmax: float) -> list[float]:
    span = (vmax - vmin) or 1.0
    step = next(st for st in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0) if span / st <= 6)
    first = math.ceil(vmin / step - 1e-9) * step
    return [round(first + i * step, 6) for i in range(int((vmax - first) / step + 1e-9) + 1)]


def svg_bars(items: list[tuple[str, float, float | None, tuple | None]], title: str, xlabel: str,
             ref: float | None = None, ref_label: str = "", vmax: float = 1.0, vmin: float = 0.0,
             second_label: str = "") -> str:
    """Horizontal bars: (label, value, optional second value (a tick), optional CI)."""
    left, top, w = 190, 10, 250
    bh = 22
    h = len(items) * bh
    span = (vmax - vmin) or 1.0
    sx = lambda v: left + (min(max(v, vmin), vmax) - vmin) / span * w
    s = ""
    for i, (label, v, v2, ci) in enumerate(items):
        y = top + i * bh
        s += f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end">{E(label)}</text>'
        if v is not None and math.isfinite(v):
            x_a, x_b = sorted((sx(0.0 if vmin < 0 else vmin), sx(v)))
            s += (f'<rect x="{x_a:.1f}" y="{y + 4}" width="{max(x_b - x_a, 0.5):.1f}" height="{bh - 8}" fill="{BLUE}">'
                  f'<title>{E(label)}: {v:.3f}</title></rect>')
        if ci and all(c is not None and math.isfinite(c) for c in ci):
            s += f'<line x1="{sx(ci[0]):.1f}" y1="{y + bh / 2}" x2="{sx(ci[1]):.1f}" y2="{y + bh / 2}" stroke="#111"/>'
        if v2 is not None and math.isfinite(v2):
            s += f'<line x1="{sx(v2):.1f}" y1="{y + 1}" x2="{sx(v2):.1f}" y2="{y + bh - 1}" stroke="{RED}" stroke-width="3"/>'
    s += f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#888"/>'
    for t in _nice_ticks(vmin, vmax):
        s += (f'<line x1="{sx(t):.1f}" y1="{top + h}" x2="{sx(t):.1f}" y2="{top + h + 4}" stroke="#888"/>'
              f'<text x="{sx(t):.1f}" y="{top + h + 16}" font-size="11" text-anchor="middle">{E(f"{t:g}")}</text>')
    if ref is not None and math.isfinite(ref):
        s += (f'<line x1="{sx(ref):.1f}" y1="{top}" x2="{sx(ref):.1f}" y2="{top + h}" stroke="{GREY}" '
              f'stroke-dasharray="4 3"/>')
    s += f'<text x="{left + w / 2}" y="{top + h + 32}" font-size="12" text-anchor="middle">{E(xlabel)}</text>'
    legend = ""
    if second_label:
        legend += (f'<line x1="{left}" y1="{top + h + 44}" x2="{left}" y2="{top + h + 56}" stroke="{RED}" stroke-width="3"/>'
                   f'<text x="{left + 6}" y="{top + h + 54}" font-size="11">{E(second_label)}</text>')
    if ref_label:
        legend += (f'<line x1="{left + 150}" y1="{top + h + 50}" x2="{left + 170}" y2="{top + h + 50}" stroke="{GREY}" '
                   f'stroke-dasharray="4 3"/><text x="{left + 174}" y="{top + h + 54}" font-size="11">{E(ref_label)}</text>')
    return _svg(left + w + 20, top + h + 64, s + legend, title)


def svg_confusion(cm: list[list[int]], rows_label: str = "crowd majority") -> str:
    """The confusion matrix ``cm`` (8x8 counts, rows: the reference label named by ``rows_label``,
    columns: the model's top class) as an SVG string, each cell shaded by its share of the row."""
    a = np.asarray(cm, float)
    rows = a.sum(1, keepdims=True)
    share = np.divide(a, rows, out=np.zeros_like(a), where=rows > 0)
    cell, left, top = 44, 90, 80
    s = ""
    for j, c in enumerate(CLASSES):
        x = left + j * cell + cell / 2
        s += f'<text x="{x}" y="{top - 6}" font-size="11" text-anchor="start" transform="rotate(-45 {x} {top - 6})">{E(c)}</text>'
    for i, c in enumerate(CLASSES):
        y = top + i * cell
        s += f'<text x="{left - 6}" y="{y + cell / 2 + 4}" font-size="11" text-anchor="end">{E(c)}</text>'
        for j in range(len(CLASSES)):
            v = share[i, j]
            fill = f"rgba(43,108,176,{0.08 + 0.92 * v:.3f})" if a[i, j] else "#f7f7f7"
            colour = "#fff" if v > 0.5 else "#111"
            s += (f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{fill}">'
                  f'<title>{E(f"crowd {c}, model {CLASSES[j]}: {int(a[i, j])} images ({v:.0%} of the row)")}</title></rect>')
            if a[i, j]:
                s += f'<text x="{left + j * cell + cell / 2}" y="{y + cell / 2 + 4}" font-size="10" text-anchor="middle" fill="{colour}">{int(a[i, j])}</text>'
    s += f'<text x="{left + 4 * cell}" y="{top + 8 * cell + 20}" font-size="12" text-anchor="middle">model\'s top class (colour: share of the row)</text>'
    s += (f'<text x="14" y="{top + 4 * cell}" font-size="12" text-anchor="middle" '
          f'transform="rotate(-90 14 {top + 4 * cell})">{E(rows_label)}</text>')
    return _svg(left + 8 * cell + 20, top + 8 * cell + 32, s, "Confusion matrix")



CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1180px;margin:24px auto;padding:0 16px;color:#1a202c;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #e2e8f0;padding-bottom:.2em}
.lead{font-size:1.08em;background:#fffbea;border-left:4px solid #d69e2e;padding:10px 14px}
.big{font-size:1.15em;font-weight:600}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}td.n{text-align:right;font-variant-numeric:tabular-nums}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}.fig{margin:6px 0}.fig p{font-size:.9em;color:#4a5568;max-width:460px}
.muted{color:#718096;font-size:.9em}code{background:#edf2f7;padding:0 3px}
"""


def _table(header, rows, numeric_from: int = 1) -> str:
    s = "<table><tr>" + "".join(f"<th>{E(str(h))}</th>" for h in header) + "</tr>"
    for r in rows:
        s += "<tr>" + "".join(f'<td{" class=n" if j >= numeric_from else ""}>{E(str(c))}</td>' for j, c in enumerate(r)) + "</tr>"
    return s + "</table>"


def _fig(svg: str, caption: str) -> str:
    return f'<div class="fig">{svg}<p>{E(caption)}</p></div>'



def _page(title: str, body: list[str]) -> str:
    csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{E(title)}</title>'
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _comparison_html(rows: list[ComparisonRow]) -> list[str]:
    items = [(r.dataset, r.accuracy, r.uar, None) for r in rows]
    return [f"<h2>{E(COMPARISON_TITLE)}</h2>", f"<p>{E(COMPARISON_TEXT)}</p>",
            _table(COMPARISON_HEADER, comparison_rows(rows), 3),
            _fig(svg_bars(items, "Accuracy per dataset", "accuracy (bar) and UAR (red tick)", second_label="UAR"), "")]


def to_html(result: AuditResult) -> str:
    """The whole validity card for ``result`` as one self-contained HTML page (figures inline as SVG)."""
    d, m, h = result.dataset, result.model, result.headline
    base = h.single_annotator
    title = f"Validity card: {m.name} on {d.name}"
    body = [f"<h1>{E(title)}</h1>", f'<p class="lead">{E(meaning(result))}</p>', f'<p class="big">{E(summary(result))}</p>']
    body += ["<h2>Headline</h2>", _table(("what", "model", "95% interval", "single annotator"), _rows_headline(result))]
    body += [f"<p>{E(note)}</p>" for note in (h.calibration_note, absent_classes_note(result)) if note]
    recall_items = [(f"{c} ({h.per_class_images[c]})", h.per_class_recall[c],
                     base.per_class_recall.get(c) if base else None, None) for c in CLASSES]
    body += ["<h2>Per class and confusions</h2>", '<div class="row">',
             _fig(svg_bars(recall_items, "Recall per crowd label", "recall",
                           second_label="single annotator" if base else ""),
                  "Blue: the model's recall for each crowd label (images in brackets). Red tick: the expected recall of "
                  "one annotator against the majority of the others." if base else
                  "The model's recall for each label (images in brackets)."),
             _fig(svg_confusion(h.confusion, _label_kind(result)),
                  f"Rows: {_label_kind(result)}; columns: the model's top class."
                  + (f" Not in it: {h.images_without_prediction} images without a prediction."
                     if h.images_without_prediction else "")),
             "</div>"]
    body += ["<h2>Calibration and abstention</h2>", '<div class="row">',
             _fig(svg_reliability(h.reliability), "If the model were calibrated, bars would reach the dashed "
                  "diagonal: of the faces it gives 70% to, 70% would match the crowd."),
             _fig(svg_risk_coverage(h.risk_coverage, base.accuracy if base else None),
                  "Answer only the faces the model is surest about: the curve shows the error rate among those answered "
                  "as more are answered. A model that knows when it is unsure falls steeply to the left."),
             "</div>"]
    if result.subsets:
        body += ["<h2>With and without duplicates</h2>",
                 _table(("images", "n", "accuracy", "95% interval", "UAR", "KL", "single annotator"), _subset_rows(result))]
    if result.other_datasets:
        body += _comparison_html(result.other_datasets)
    body.append("<h2>Robustness: the same faces, slightly changed</h2>")
    rob = result.robustness
    if rob.rows:
        rows = rob.rows
        if rob.note:
            body.append(f"<p class=\"muted\">Robustness {E(rob.note)}.</p>")
        vmax = max([0.1] + [max(r.drop, (r.drop_ci95[1] or 0) if r.drop_ci95 else 0) for r in rows])
        vmin = min([0.0] + [min(r.drop, (r.drop_ci95[0] or 0) if r.drop_ci95 else 0) for r in rows])
        items = [(r.label, r.drop, None, r.drop_ci95) for r in rows]
        body += ['<div class="row">', _fig(svg_bars(items, "Accuracy drop under changes", "accuracy drop (clean − changed)",
                                                    vmax=vmax * 1.05, vmin=vmin * 1.05),
                                           "Drop in agreement with the crowd when every image is changed; black line: "
                                           "95% paired bootstrap interval. Negative: the change helped."),
                 _fig(svg_bars([(r.label, r.changed, None, None) for r in rows], "Predictions changed",
                               "share of images whose top class changed", vmax=max(0.1, max(r.changed for r in rows)) * 1.05),
                      "A person would give most of these images the same label as before."), "</div>",
                 _table(("change", "accuracy", "drop", "95% interval of drop", "predictions changed"),
                        _robustness_rows(result))]
    else:
        body.append(f"<p>Not measured: {E(rob.skipped or 'no predictions for changed images')}.</p>")
    body.append("<h2>Strata: accuracy by measured face conditions</h2>")
    st = result.strata
    if st.groups is not None:
        body.append(f'<p class="muted">Measured by mien on the same images ({st.faces_found} of {st.images} faces '
                    "found). Dashed line: overall accuracy; black line: 95% Wilson interval.</p><div class=\"row\">")
        for g, rows in st.groups.items():
            items = [(f"{r.bin} ({r.images})", r.accuracy, None, r.ci95) for r in rows]
            body.append(_fig(svg_bars(items, g, f"accuracy — {g}", ref=st.overall_accuracy, ref_label="overall"), ""))
        body.append("</div>")
    else:
        body.append(f"<p>Not measured: {E(st.skipped)}.</p>")
    body += ["<h2>Where it breaks</h2>", "<ul>" + "".join(f"<li>{E(s)}</li>" for s in result.breaks) + "</ul>"]
    body += ["<h2>What these numbers cannot mean</h2>", "<ul>" + "".join(f"<li>{E(s)}</li>" for s in CANNOT) + "</ul>"]
    if result.examples:
        body += ["<h2>Most confident disagreements</h2>",
                 _table(("image", "crowd", "model", "model's probability"),
                        [(e.image, e.crowd, e.model, _pct(e.model_p)) for e in result.examples], 3)]
    body += ["<h2>Data and model</h2>", "<ul>" + "".join(f"<li>{E(s)}</li>" for s in _data_and_model(result)) + "</ul>"]
    return _page(title, body)


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_card(result: AuditResult, out_dir, stem: str = "card", predictions: bool = True) -> dict[str, Path]:
    """Write ``<stem>.html``, ``<stem>.md``, ``<stem>.json`` and (unless ``predictions`` is False)
    ``predictions.csv``, one row per image, into out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / f"{stem}.html", "md": out / f"{stem}.md", "json": out / f"{stem}.json"}
    for kind, render in (("json", to_json), ("md", to_markdown), ("html", to_html)):
        _write(paths[kind], render(result))
    if predictions:
        paths["predictions"] = out / "predictions.csv"
        with atomic_path(paths["predictions"]) as tmp:
            to_csv_safe(result.per_image.to_frame(), tmp)
    return paths


def comparison_markdown(results: list[AuditResult]) -> str:
    """The comparison of one model across several datasets (``results``: one per dataset, same model)
    as Markdown."""
    rows = [r.comparison_row() for r in results]
    m = results[0].model
    return "\n".join([f"# {COMPARISON_TITLE}: {md_escape(m.name)}", "", md_escape(COMPARISON_TEXT), "",
                      _md_table(COMPARISON_HEADER, comparison_rows(rows)), "",
                      f"Model: {md_escape(m.description)}. Each dataset's card is in its own folder.", ""])


def comparison_html(results: list[AuditResult], links: list[str]) -> str:
    """The comparison of one model across several datasets as an HTML page; ``links``: the path of
    each dataset's card, relative to the page, in the order of ``results``."""
    rows = [r.comparison_row() for r in results]
    title = f"{COMPARISON_TITLE}: {results[0].model.name}"
    body = [f"<h1>{E(title)}</h1>"] + _comparison_html(rows)[1:]
    body.append("<ul>" + "".join(f'<li><a href="{E(link)}">{E(r.dataset)}</a></li>' for r, link in zip(rows, links))
                + "</ul>")
    body.append(f"<p class=\"muted\">Model: {E(results[0].model.description)}.</p>")
    return _page(title, body)


def write_comparison(results: list[AuditResult], out_dir, card_dirs: list[str]) -> dict[str, Path]:
    """``comparison.{html,md,json}`` for the results of one run over several datasets; ``card_dirs``:
    each result's card folder, relative to out_dir."""
    out = Path(out_dir)
    paths = {"html": out / "comparison.html", "md": out / "comparison.md", "json": out / "comparison.json"}
    rows = [r.comparison_row() for r in results]
    _write(paths["json"], json.dumps({"model": json_value(results[0].model), "datasets": json_value(rows)},
                                     indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    _write(paths["md"], comparison_markdown(results))
    _write(paths["html"], comparison_html(results, [f"{c}/card.html" for c in card_dirs]))
    return paths
