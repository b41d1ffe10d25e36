"""The report of a set of photos: one self-contained HTML page with every face found, whether
mien vouches for it, the action units present and how observers would label it, in a table that
sorts by any column. Built from the face table and a thumbnail per face; see mien.pages."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from . import actions
from .annotate import face_thumbnail, is_true
from .pages import (PERCEIVED_COLOURS, RELIABLE_COLOUR, SORT_SCRIPT, UNRELIABLE_COLOUR, esc, jpeg_uri, page,
                    perceived_legend, settings_table)
from .perceived import CLASSES as PERCEIVED_CLASSES
from .io import atomic_path

INTRO = ("One row per face (and per photo without a face, or that could not be read). Click a column's "
         "header to sort by it. <b>reliable</b> says whether mien vouches for the face's measurements (size, "
         "sharpness, exposure, pose; docs/quality.md); an unreliable face's numbers may be wrong. Action units "
         "are facial movements, not feelings; units marked experimental (docs/action_units.md) are left out here. Perceived expression is how a crowd of observers would label the "
         "face, not what the person feels: the bar shows the expected shares of each label, and the label is "
         "'uncertain' when no label has enough of them or the face is unreliable.")


def face_thumbnails(rgb: np.ndarray, boxes) -> list[bytes]:
    """A JPEG thumbnail per face box (x, y, w, h) of an image."""
    return [face_thumbnail(rgb, box) for box in boxes]


def _units_present(row: pd.Series) -> str:
    validated = set(actions.validated_columns())
    present = [u for u in actions.action_units() if u.column in validated and is_true(row.get(f"{u.column}_present"))]
    numbers = dict.fromkeys(u.number for u in present)
    return " ".join(f"AU{n}" for n in numbers)


def _shares_bar(row: pd.Series, width: int = 160) -> str:
    shares = [float(row.get(f"perceived_{c}", np.nan)) for c in PERCEIVED_CLASSES]
    if not np.isfinite(shares).all():
        return ""
    parts, x = [], 0.0
    for name, share in zip(PERCEIVED_CLASSES, shares):
        w = share * width
        parts.append(f'<rect x="{x:.1f}" width="{w:.1f}" height="12" fill="{PERCEIVED_COLOURS[name]}">'
                     f"<title>{esc(name)}: {share:.0%}</title></rect>")
        x += w
    return f'<svg width="{width}" height="12" role="img">{"".join(parts)}</svg>'


def _number(value, digits: int = 0) -> tuple[str, str]:
    """(data-v, shown text) of a number cell; empty when missing."""
    if value is None or value is pd.NA or not np.isfinite(float(value)):
        return "", ""
    return f"{float(value):.4g}", f"{round(float(value), digits) + 0.0:.{digits}f}"  # + 0.0: no "-0"


def _row(row: pd.Series, thumbnail: bytes | None) -> str:
    source = str(row["source"])
    has_face = pd.notna(row.get("face"))
    image = f'<img class="face" alt="face" src="{jpeg_uri(thumbnail)}">' if thumbnail else ""
    cells = [f"<td>{image}</td>", f'<td title="{esc(source)}">{esc(Path(source).name)}</td>',
             f'<td data-v="{int(row["face"]) if has_face else ""}">{int(row["face"]) if has_face else ""}</td>']
    status = str(row["status"])
    if not has_face:
        note = f'{esc(status)}{": " + esc(row.get("error")) if status == "error" else ""}'
        return "<tr>" + "".join(cells) + f'<td colspan="7" class="muted">{note}</td></tr>'
    reliable = is_true(row.get("reliable"))
    reasons = str(row.get("quality_reasons") or "").replace(";", ", ")
    cells.append(f'<td data-v="{int(reliable)}" style="color:{RELIABLE_COLOUR if reliable else UNRELIABLE_COLOUR}">'
                 f'{"yes" if reliable else "no: " + esc(reasons)}</td>')
    v, text = _number(row.get("iod_px"))
    cells.append(f'<td class="num" data-v="{v}">{text}</td>')
    for angle in ("yaw", "pitch"):
        v, text = _number(row.get(angle))
        cells.append(f'<td class="num" data-v="{v}">{text}</td>')
    cells.append(f"<td>{esc(_units_present(row))}</td>")
    top = row.get("perceived_top")
    v, text = _number(row.get("perceived_top_p"), 2)
    label = esc(top) if isinstance(top, str) else ""
    why = row.get("perceived_abstain_reason")
    if label == "uncertain" and isinstance(why, str) and why:
        label += f" ({esc(why.replace('_', ' ').replace(';', ', '))})"
    cells.append(f'<td data-v="{v}">{label}{f" <span class=muted>{text}</span>" if text else ""}</td>')
    cells.append(f"<td>{_shares_bar(row)}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def render_gallery(table: pd.DataFrame, thumbnails: dict[tuple[int, int], bytes], title: str,
                   settings: dict[str, str] | None = None, data_link: str = "") -> str:
    """The page. ``thumbnails``: (image number in input order, face) -> JPEG; ``data_link``: a
    relative link to the table the page was made from."""
    images = table["source"].astype(str)
    image_number = pd.Series(pd.factorize(images)[0], index=table.index)
    faces = table[table["face"].notna()]
    reliable = int((faces["reliable"] == True).sum())  # noqa: E712 (nullable booleans)
    counts = (f"{images.nunique()} photo(s), {len(faces)} face(s) ({reliable} reliable), "
              f"{int(((table['status'] == 'no_face')).sum())} without a face, "
              f"{int((table['status'] == 'error').sum())} that could not be read")
    rows = []
    for index, row in table.iterrows():
        key = (int(image_number[index]), int(row["face"])) if pd.notna(row.get("face")) else None
        rows.append(_row(row, thumbnails.get(key) if key else None))
    head = ("<thead><tr><th>face</th><th class=sort>file</th><th class=sort>#</th><th class=sort>reliable</th>"
            "<th class=sort>eye distance px</th><th class=sort>yaw °</th><th class=sort>pitch °</th>"
            "<th class=sort>action units present (validated)</th><th class=sort>perceived (top share)</th>"
            "<th>perceived shares</th></tr></thead>")
    link = f' · data: <a href="{esc(data_link)}">{esc(Path(data_link).name)}</a>' if data_link else ""
    body = (f"<h1>mien: {esc(title)}</h1><p>{esc(counts)}{link}</p><p>{INTRO}</p>{perceived_legend()}"
            f'<table class="sortable">{head}<tbody>{"".join(rows)}</tbody></table>'
            f"<h2>Run settings</h2>{settings_table(settings or {})}")
    return page(f"mien: {title}", body, SORT_SCRIPT)


def write_gallery(path, table: pd.DataFrame, thumbnails: dict[tuple[int, int], bytes], data_table=None,
                  settings: dict[str, str] | None = None) -> Path:
    """Write the page to ``path``, atomically; ``data_table``: the table file it links to."""
    path = Path(path)
    link = os.path.relpath(Path(data_table).resolve(), path.resolve().parent) if data_table else ""
    with atomic_path(path) as tmp:
        tmp.write_text(render_gallery(table, thumbnails, path.stem, settings, link), encoding="utf-8")
    return path
