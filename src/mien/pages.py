"""Parts shared by mien's HTML pages (the image-set gallery, the video report): colours that
colour-blind readers can tell apart, the style sheet, sortable tables, escaped text.

Pages are self-contained (no network): images are data URIs, the only script is inline, and
every string that comes from the input (file names, metadata) is HTML-escaped.
"""
from __future__ import annotations

import base64
import html

from . import __version__
from .perceived import CLASSES as PERCEIVED_CLASSES

# Okabe & Ito's palette, which stays distinct under the common colour-vision deficiencies;
# black is kept for text, grey for "no value".
SERIES = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
PERCEIVED_COLOURS = dict(zip(PERCEIVED_CLASSES, ("#BBBBBB", "#E69F00", "#56B4E9", "#0072B2", "#D55E00", "#009E73",
                                                 "#CC79A7", "#F0E442")))
RELIABLE_COLOUR, UNRELIABLE_COLOUR = "#009E73", "#D55E00"

CSS = ("body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}"
       "h1{font-size:22px}h2{font-size:18px;margin-top:28px}h3{font-size:14px;margin:14px 0 4px}"
       "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:middle}"
       "th{background:#f4f4f4;text-align:left}th.sort{cursor:pointer}th.sort:after{content:' \\2195';color:#999}"
       ".warn{color:#a33b00;font-weight:600}.muted{color:#666}.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:11px}"
       ".sw{display:inline-block;width:10px;height:10px;margin-right:3px;vertical-align:-1px}"
       "nav ul{columns:3;font-size:13px}img.face{width:72px;height:72px;display:block}img.apex{width:44px;height:44px;display:block}"
       ".num{text-align:right;font-variant-numeric:tabular-nums}")

# Sorts a table by a header's column when clicked: numbers (data-v) numerically, else text.
SORT_SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th.sort').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.dataset.dir !== 'up'; th.dataset.dir = up ? 'up' : 'down';
      var key = function (row) { var cell = row.cells[th.cellIndex]; var v = cell.dataset.v;
        return v === undefined ? cell.textContent : (v === '' ? NaN : parseFloat(v)); };
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (typeof x === 'number' || typeof y === 'number') {
          if (isNaN(x)) return 1; if (isNaN(y)) return -1; return up ? x - y : y - x; }
        return up ? String(x).localeCompare(String(y)) : String(y).localeCompare(String(x)); });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def esc(value) -> str:
    """``value`` as text, HTML-escaped (quotes too), safe inside elements and attribute values."""
    return html.escape(str(value), quote=True)


def jpeg_uri(data: bytes) -> str:
    """A ``data:`` URI for JPEG bytes, for an ``<img src>`` that needs no file."""
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def swatch(colour: str, label: str) -> str:
    """HTML for one legend entry: a square of ``colour`` (CSS) and its escaped ``label``."""
    return f'<span><span class="sw" style="background:{colour}"></span>{esc(label)}</span>'


def perceived_legend() -> str:
    """HTML legend of the colour used for each perceived-expression class."""
    return '<div class="legend">' + "".join(swatch(c, name) for name, c in PERCEIVED_COLOURS.items()) + "</div>"


def page(title: str, body: str, script: str = "") -> str:
    """A whole HTML document; ``title`` is escaped here, ``body`` must already be."""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="generator" content="mien {esc(__version__)}"><style>{CSS}</style></head><body>{body}'
            + (f"<script>{script}</script>" if script else "") + "</body></html>")


def settings_table(settings: dict[str, str]) -> str:
    """HTML table of the run's settings (name -> value, escaped), led by the mien version."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in settings.items())
    return f"<table><tr><th>mien version</th><td>{esc(__version__)}</td></tr>{rows}</table>"
