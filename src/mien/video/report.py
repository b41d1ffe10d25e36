"""A self-contained HTML report of a video run: one section per face track.

Everything is inline (SVG plots, JPEG thumbnails as data URIs, CSS); every string that comes
from the input (file names, metadata) is HTML-escaped.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from .. import actions
from ..perceived import CLASSES as PERCEIVED_CLASSES
from ..quality import CHECKS
from ..io import atomic_path

WIDTH, HEIGHT, PAD = 900, 150, 34
LEFT = 90  # room for the quality checks' names; every plot uses it, so their time axes line up
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

INTRO = ("Each section is one face track: a face followed from frame to frame within this video, "
         "without recognising who it is; its plots span the track's own time. Action units are facial "
         "movements measured against a neutral face (the track's own, once enough reliable frames are "
         "seen); a movement is not a feeling. Perceived expression is how observers would label the face, "
         "not what the person feels. Peach spans are frames mien marked unreliable (the quality strip "
         "says why); grey spans in the perceived plot are frames where mien abstains from a label.")
QUALITY_CHECKS = tuple(CHECKS)
GAP_S = 0.5  # lines and areas break where a track's face was not seen for longer than this
UNRELIABLE_FILL, ABSTAIN_FILL = "#f3d9c0", "#7f7f7f"


class _Plot:
    """One SVG plot area: time (seconds) across, values up."""

    def __init__(self, span: tuple[float, float], y_range: tuple[float, float], unit: str, height: int = HEIGHT):
        t0, t1 = span
        self.t0, self.t1 = t0, (t1 if t1 > t0 else t0 + 1.0)
        self.lo, self.hi = y_range
        self.height = height
        self.parts = [f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img">',
                      f'<rect x="{LEFT}" y="{PAD / 2}" width="{WIDTH - LEFT - PAD}" height="{height - 1.5 * PAD}" fill="#fafafa" stroke="#ccc"/>',
                      f'<text x="{WIDTH - PAD}" y="{height - 8}" font-size="10" text-anchor="end" fill="#555">'
                      f'{self.t0:.2f}–{self.t1:.2f} s · {html.escape(unit)}</text>']

    def x(self, t) -> np.ndarray:
        return LEFT + (np.asarray(t, float) - self.t0) / (self.t1 - self.t0) * (WIDTH - LEFT - PAD)

    def y(self, v) -> np.ndarray:
        v = np.clip(np.asarray(v, float), self.lo, self.hi)
        return self.height - PAD + (v - self.lo) / (self.hi - self.lo) * -(self.height - 1.5 * PAD)

    def y_labels(self, values) -> None:
        for value in values:
            self.parts.append(f'<text x="{LEFT - 4}" y="{self.y(value) + 4:.1f}" font-size="10" text-anchor="end" fill="#555">{value:g}</text>')

    def spans(self, times: np.ndarray, mask: np.ndarray, fill: str, opacity: float = 1.0, y0=None, y1=None) -> None:
        """Shade the frames where ``mask`` holds, each as wide as the median frame step."""
        if not mask.any():
            return
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
        width = max(1.0, step / (self.t1 - self.t0) * (WIDTH - LEFT - PAD))
        top = PAD / 2 if y0 is None else y0
        tall = self.height - 1.5 * PAD if y1 is None else y1 - y0
        for t in times[mask]:
            self.parts.append(f'<rect x="{self.x(t):.1f}" y="{top:.1f}" width="{width:.1f}" height="{tall:.1f}" '
                              f'fill="{fill}" fill-opacity="{opacity}"/>')

    def lines(self, times: np.ndarray, series: list[np.ndarray]) -> None:
        for k, values in enumerate(series):
            colour = PALETTE[k % len(PALETTE)]
            for run in _runs(times, np.isfinite(values)):
                xs, ys = self.x(times[run]), self.y(values[run])
                if len(run) == 1:  # a lone frame: a dot, since a one-point line draws nothing
                    self.parts.append(f'<circle cx="{xs[0]:.1f}" cy="{ys[0]:.1f}" r="2" fill="{colour}"/>')
                    continue
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys))
                self.parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')

    def stacked(self, times: np.ndarray, shares: np.ndarray) -> None:
        """(frames, K) shares that sum to 1, as stacked areas."""
        tops = np.cumsum(shares, axis=1)
        for run in _runs(times, np.isfinite(shares).all(axis=1)):
            xs = self.x(times[run])
            if len(run) == 1:
                xs = np.array([xs[0], xs[0] + 1.0])
                run = np.repeat(run, 2)
            for k in range(shares.shape[1]):
                upper = self.y(tops[run, k])
                lower = self.y(tops[run, k] - shares[run, k])
                outline = list(zip(xs, upper)) + list(zip(xs[::-1], lower[::-1]))
                points = " ".join(f"{a:.1f},{b:.1f}" for a, b in outline)
                self.parts.append(f'<polygon fill="{PALETTE[k % len(PALETTE)]}" fill-opacity="0.85" points="{points}"/>')

    def svg(self) -> str:
        return "".join(self.parts) + "</svg>"


def _runs(times: np.ndarray, ok: np.ndarray) -> list[np.ndarray]:
    """Index runs of consecutive good frames, broken where the face was unseen for over GAP_S
    (or 1.5 frame steps, when frames are sparser than that: --fps 1, a large --stride)."""
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    breaks = np.concatenate([[True], np.diff(times) > max(GAP_S, 1.5 * step)]) | ~ok
    runs, current = [], []
    for i, (new, good) in enumerate(zip(breaks, ok)):
        if new and current:
            runs.append(np.array(current))
            current = []
        if good:
            current.append(i)
    if current:
        runs.append(np.array(current))
    return runs


def _legend(names: list[str], note: str = "") -> str:
    keys = "".join(f'<span style="color:{PALETTE[k % len(PALETTE)]}">&#9632; {html.escape(n)}</span>' for k, n in enumerate(names))
    return f'<div class="legend">{keys}{f"<span class=note>{html.escape(note)}</span>" if note else ""}</div>'


def _line_plot(t, g, columns, span, y_range, unit, unreliable, names=None) -> str:
    plot = _Plot(span, y_range, unit)
    plot.spans(t, unreliable, UNRELIABLE_FILL)
    plot.y_labels((y_range[0], y_range[1]) + ((0.0,) if y_range[0] < 0 < y_range[1] else ()))
    plot.lines(t, [g[c].to_numpy(float) for c in columns])
    return _legend(names or columns) + plot.svg()


def _perceived_plot(t, g, columns, span) -> str:
    plot = _Plot(span, (0.0, 1.0), "share")
    plot.y_labels((0.0, 0.5, 1.0))
    plot.stacked(t, g[columns].to_numpy(float))
    plot.spans(t, g["perceived_top"].eq("uncertain").fillna(False).to_numpy(bool), ABSTAIN_FILL, 0.45)
    return _legend([c.removeprefix("perceived_") for c in columns], "grey: mien abstains (no label)") + plot.svg()


def _quality_strip(t, g, span) -> str:
    reasons = g["quality_reasons"].fillna("").astype(str)
    row_h = 12
    plot = _Plot(span, (0.0, 1.0), "failed quality checks", height=int(1.5 * PAD + row_h * len(QUALITY_CHECKS)))
    for i, check in enumerate(QUALITY_CHECKS):
        top = PAD / 2 + i * row_h
        plot.parts.append(f'<text x="{LEFT - 4}" y="{top + row_h - 2:.1f}" font-size="10" text-anchor="end" fill="#555">{check}</text>')
        failed = reasons.str.split(";").apply(lambda names, c=check: c in names).to_numpy(bool)
        plot.spans(t, failed, "#d62728", 0.8, top + 1, top + row_h - 1)
    return plot.svg()


def _track_section(track: int, g: pd.DataFrame, tracks: pd.DataFrame, episodes: pd.DataFrame, thumbs: list) -> str:
    g = g.sort_values("time_s")
    t = g["time_s"].to_numpy(float)
    span = (float(t[0]), float(t[-1]))
    unreliable = ~g["reliable"].fillna(False).to_numpy(bool)
    au_cols = [c for c in actions.validated_columns() if c in g and g[c].notna().any()]  # all-NaN: turned off
    active = sorted(au_cols, key=lambda c: -float(g[c].fillna(0).clip(upper=3).mean()))[:6]
    row = tracks[tracks["track"] == track].iloc[0]
    out = [f'<section><h2>Track {track}</h2>',
           f'<p>{row["first_s"]:.2f}–{row["last_s"]:.2f} s, {int(row["frames"])} frames, '
           f'{100 * row["reliable_share"]:.0f}% reliable, median yaw {row["median_yaw"]:+.0f}°, '
           f'pitch {row["median_pitch"]:+.0f}°, {int(row["episodes"])} action-unit episodes.</p>']
    if thumbs:
        out.append('<div class="thumbs">' + "".join(
            f'<figure><img alt="face at {ts:.1f} s" src="data:image/jpeg;base64,{base64.b64encode(data).decode()}">'
            f'<figcaption>{ts:.1f} s</figcaption></figure>' for ts, data in thumbs) + "</div>")
    if active:
        out.append("<h3>Most active action units (intensity, 1 = occurrence threshold)</h3>")
        out.append(_line_plot(t, g, active, span, (0.0, 3.0), "intensity", unreliable))
    perceived = [f"perceived_{c}" for c in PERCEIVED_CLASSES if f"perceived_{c}" in g and g[f"perceived_{c}"].notna().any()]
    if perceived:
        out.append("<h3>Perceived expression (share of observers expected to choose each label)</h3>")
        out.append(_perceived_plot(t, g, perceived, span))
    out.append("<h3>Head pose (degrees)</h3>")
    out.append(_line_plot(t, g, ["yaw", "pitch", "roll"], span, (-60.0, 60.0), "degrees", unreliable))
    out.append("<h3>Quality</h3>")
    out.append(_quality_strip(t, g, span))
    mine = episodes[episodes["track"] == track].sort_values("peak_intensity", ascending=False).head(12)
    if len(mine):
        out.append("<h3>Strongest episodes</h3><table><tr><th>unit</th><th>onset</th><th>apex</th><th>offset</th><th>peak</th></tr>")
        for e in mine.itertuples():
            out.append(f"<tr><td>{html.escape(str(e.unit))}</td><td>{e.onset_s:.2f} s</td><td>{e.apex_s:.2f} s</td>"
                       f"<td>{e.offset_s:.2f} s</td><td>{e.peak_intensity:.2f}</td></tr>")
        out.append("</table>")
    out.append("</section>")
    return "".join(out)


def render_report(table: pd.DataFrame, tracks: pd.DataFrame, episodes: pd.DataFrame, thumbnails: dict, info) -> str:
    faces = table[table["track"].notna()]
    title = html.escape(Path(info.path).name)
    meta = (f"{info.width}x{info.height}, {info.fps:.2f} frames/s nominal, rotation {info.rotation}°, "
            f"{table['frame'].nunique()} frames analysed, {len(tracks)} tracks, "
            f"{int((table['status'] == 'error').sum())} frames could not be decoded")
    sections = [_track_section(int(k), g, tracks, episodes, thumbnails.get(int(k), []))
                for k, g in faces.groupby("track", sort=True)]
    css = ("body{font-family:system-ui,sans-serif;margin:24px;max-width:960px;color:#222}"
           "section{border-top:1px solid #ddd;margin-top:24px}h3{font-size:14px;margin:14px 0 4px}"
           ".thumbs{display:flex;gap:6px;flex-wrap:wrap}figure{margin:0;font-size:10px;text-align:center}"
           "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px}"
           ".legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:11px;margin-left:90px}.note{color:#555}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>mien report: {title}</title>'
            f"<style>{css}</style></head><body><h1>mien report: {title}</h1>"
            f"<p>{html.escape(str(info.path))}<br>{html.escape(meta)}</p><p>{html.escape(INTRO)}</p>"
            + ("".join(sections) if sections else "<p>No face was found.</p>") + "</body></html>")


def write_report(path, table, tracks, episodes, thumbnails, info) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(table, tracks, episodes, thumbnails, info), encoding="utf-8")
    return path
