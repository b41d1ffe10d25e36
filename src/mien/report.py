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

from . import actions
from .results import atomic_path

WIDTH, HEIGHT, PAD = 900, 150, 34
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

INTRO = ("Each section is one face track: a face followed from frame to frame within this video, "
         "without recognising who it is. Action units are facial movements measured against a neutral "
         "face (the track's own, once enough reliable frames are seen); a movement is not a feeling. "
         "Shaded spans are frames mien marked unreliable (small, blurred, dark or turned faces).")


def _svg_lines(times: np.ndarray, series: dict[str, np.ndarray], span: tuple[float, float], y_range: tuple[float, float],
               unit: str, shade: np.ndarray | None = None) -> str:
    t0, t1 = span
    lo, hi = y_range
    t1 = t1 if t1 > t0 else t0 + 1.0

    def x(t):
        return PAD + (np.asarray(t) - t0) / (t1 - t0) * (WIDTH - 2 * PAD)

    def y(v):
        return HEIGHT - PAD + (np.clip(np.asarray(v, float), lo, hi) - lo) / (hi - lo) * -(HEIGHT - 2 * PAD)

    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img">',
             f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" fill="#fafafa" stroke="#ccc"/>']
    if shade is not None and len(times):
        step = np.median(np.diff(times)) if len(times) > 1 else 0.04
        for t in times[shade]:
            parts.append(f'<rect x="{x(t):.1f}" y="{PAD}" width="{max(1.0, step / (t1 - t0) * (WIDTH - 2 * PAD)):.1f}" '
                         f'height="{HEIGHT - 2 * PAD}" fill="#f3d9c0"/>')
    for value in (lo, hi) + ((0.0,) if lo < 0 < hi else ()):
        parts.append(f'<text x="4" y="{y(value) + 4:.1f}" font-size="10" fill="#555">{value:g}</text>')
    parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="10" text-anchor="end" fill="#555">'
                 f'{t0:.1f}–{t1:.1f} s · {html.escape(unit)}</text>')
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        ok = np.isfinite(values)
        # break the line where the face was not seen for a while
        gaps = np.concatenate([[True], np.diff(times) > 0.5]) | ~ok
        segment: list[str] = []
        for t, v, new, good in zip(times, values, gaps, ok):
            if new and segment:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(segment)}"/>')
                segment = []
            if good:
                segment.append(f"{x(t):.1f},{y(v):.1f}")
        if segment:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(segment)}"/>')
        parts.append(f'<text x="{PAD + 6 + 130 * k}" y="{PAD - 8}" font-size="11" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _track_section(track: int, g: pd.DataFrame, tracks: pd.DataFrame, episodes: pd.DataFrame, thumbs: list, span) -> str:
    g = g.sort_values("time_s")
    t = g["time_s"].to_numpy(float)
    unreliable = ~g["reliable"].fillna(False).to_numpy(bool)
    au_cols = [c for c in actions.columns() if c in g]
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
    out.append("<h3>Most active action units (intensity, 1 = occurrence threshold)</h3>")
    out.append(_svg_lines(t, {c: g[c].to_numpy(float) for c in active}, span, (0.0, 3.0), "intensity", unreliable))
    out.append("<h3>Head pose (degrees)</h3>")
    out.append(_svg_lines(t, {n: g[n].to_numpy(float) for n in ("yaw", "pitch", "roll")}, span, (-60.0, 60.0), "degrees", unreliable))
    perceived = [c for c in g.columns if c.startswith("perceived_") and c not in ("perceived_top", "perceived_top_p", "perceived_entropy")]
    if perceived:
        out.append("<h3>Perceived expression (share of observers expected to choose each label)</h3>")
        out.append(_svg_lines(t, {c.removeprefix("perceived_"): g[c].to_numpy(float) for c in perceived}, span, (0.0, 1.0), "share", unreliable))
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
    span = (float(table["time_s"].min()), float(table["time_s"].max())) if len(table) and table["time_s"].notna().any() else (0.0, 1.0)
    title = html.escape(Path(info.path).name)
    meta = (f"{info.width}x{info.height}, {info.fps:.2f} frames/s nominal, rotation {info.rotation}°, "
            f"{table['frame'].nunique()} frames analysed, {len(tracks)} tracks, "
            f"{int((table['status'] == 'error').sum())} frames could not be decoded")
    sections = [_track_section(int(k), g, tracks, episodes, thumbnails.get(int(k), []), span)
                for k, g in faces.groupby("track", sort=True)]
    css = ("body{font-family:system-ui,sans-serif;margin:24px;max-width:960px;color:#222}"
           "section{border-top:1px solid #ddd;margin-top:24px}h3{font-size:14px;margin:14px 0 4px}"
           ".thumbs{display:flex;gap:6px;flex-wrap:wrap}figure{margin:0;font-size:10px;text-align:center}"
           "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:2px 6px}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>mien report: {title}</title>'
            f"<style>{css}</style></head><body><h1>mien report: {title}</h1>"
            f"<p>{html.escape(str(info.path))}<br>{html.escape(meta)}</p><p>{html.escape(INTRO)}</p>"
            + ("".join(sections) if sections else "<p>No face was found.</p>") + "</body></html>")


def write_report(path, table, tracks, episodes, thumbnails, info) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(table, tracks, episodes, thumbnails, info), encoding="utf-8")
    return path
