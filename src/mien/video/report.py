"""A self-contained HTML report of a video run.

An overview first (what was analysed and how, a table of every track, a timeline of the tracks,
links to the data files, and the annotated video when there is one, whose playing moves a cursor
over every plot), then a section per track long enough to plot: faces spread over the track,
action units, perceived expression, head pose and quality over time, and the strongest episodes
with the face at each apex. Short tracks (a few frames) are rows of the overview's table only.

Plots are downsampled to at most MAX_POINTS time bins and shaded spans are merged to the plot's
resolution, so the page's size depends on the number of tracks, not on the video's length.
Everything is inline (SVG, JPEG data URIs, CSS, one script); every string from the input (file
names, metadata) is HTML-escaped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import actions
from ..pages import (PERCEIVED_COLOURS, SERIES, SORT_SCRIPT, esc, jpeg_uri, page, settings_table, swatch)
from ..perceived import CLASSES as PERCEIVED_CLASSES
from ..quality import CHECKS, NOT_DETECTED
from ..io import atomic_path
from ..paths import source_text
from .sinks import TOP_EPISODES

WIDTH, HEIGHT, PAD, AXIS = 900, 150, 10, 22
LEFT, RIGHT = 90, 20  # room for the quality checks' names; every plot uses it, so their time axes line up
MAX_POINTS = 250  # time bins per plot at most
GAP_S = 0.5  # lines and areas break where a track's face was not seen for longer than this
SECTION_MIN_S, SECTION_MIN_FRAMES = 1.0, 3  # shorter tracks get a row in the overview, not a section
MAX_SECTIONS = 24  # the longest tracks get sections; the others are in the overview's table
THUMBNAILS = 12
WEAK_RELIABILITY = 0.5  # a track with fewer reliable frames than this gets a warning on its episodes
QUALITY_CHECKS = tuple(c for c in CHECKS if c != NOT_DETECTED)
HATCH = ('<svg width="0" height="0" style="position:absolute"><defs><pattern id="hatch" width="6" height="6" '
         'patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff" '
         'fill-opacity="0.55"/><line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="1.2"/></pattern></defs></svg>')
HATCH_SWATCH = ('<span><svg width="14" height="10"><rect width="14" height="10" fill="url(#hatch)" stroke="#999"/></svg> '
                '{}</span>')

INTRO = ("A face track is one face followed from frame to frame within this video, without recognising who it "
         "is. Action units are facial movements measured against a neutral face (the track's own, once enough "
         "reliable frames are seen); a movement is not a feeling. Perceived expression is how a crowd of observers "
         "would label the face, not what the person feels. Hatched spans are frames mien marked unreliable (the "
         "quality strip says which check failed): their numbers may be wrong. In a long track each plot shows at most "
         f"{MAX_POINTS} time steps: a line is the mean of the frames in its step, a hatched step is one where most "
         "frames are unreliable, and a mark in the quality strip means at least one frame of that step failed.")

CURSOR_SCRIPT = """
(function () {
  var video = document.getElementById('player'); if (!video) return;
  var offset = parseFloat(video.dataset.offset), plots = document.querySelectorAll('svg[data-t0]');
  function place() {
    var t = video.currentTime + offset;
    plots.forEach(function (svg) {
      var t0 = +svg.dataset.t0, t1 = +svg.dataset.t1, x0 = +svg.dataset.x0, x1 = +svg.dataset.x1;
      var x = (t < t0 || t > t1) ? -10 : x0 + (t - t0) / (t1 - t0) * (x1 - x0);
      var line = svg.querySelector('.cursor'); line.setAttribute('x1', x); line.setAttribute('x2', x);
    });
  }
  ['timeupdate', 'seeked', 'loadedmetadata'].forEach(function (e) { video.addEventListener(e, place); });
  (function tick() { if (!video.paused) place(); requestAnimationFrame(tick); })();
  plots.forEach(function (svg) {
    svg.addEventListener('click', function (e) {
      var box = svg.getBoundingClientRect(), x = (e.clientX - box.left) * svg.viewBox.baseVal.width / box.width;
      var t0 = +svg.dataset.t0, t1 = +svg.dataset.t1, x0 = +svg.dataset.x0, x1 = +svg.dataset.x1;
      if (x < x0 || x > x1) return;
      video.currentTime = Math.max(0, t0 + (x - x0) / (x1 - x0) * (t1 - t0) - offset);
    });
  });
})();
"""
EXTRA_CSS = ("<style>#playerbox{position:sticky;top:0;background:#fff;z-index:2;padding:4px 0;border-bottom:1px solid #ddd}"
             "#playerbox video{max-height:260px;max-width:100%}svg[data-t0]{cursor:crosshair}"
             ".thumbs{display:flex;gap:6px;flex-wrap:wrap}figure{margin:0;font-size:10px;text-align:center}"
             "section{border-top:1px solid #ddd;margin-top:24px}.legend{margin-left:90px}</style>")


@dataclass(frozen=True)
class ReportInputs:
    """What the report is made from: the run's tables, the faces kept along each track
    (track -> [(time_s, JPEG)]), the video's ``probe``, the faces at episode apexes
    ((track, frame) -> JPEG), the annotated video (anything with ``path``, ``playable`` and
    ``first_time``, or None), the run's settings and the data files to link to."""

    table: pd.DataFrame
    tracks: pd.DataFrame
    episodes: pd.DataFrame
    thumbnails: dict
    info: object
    apex_faces: dict = field(default_factory=dict)
    video: object = None
    settings: dict = field(default_factory=dict)
    data_files: tuple = ()


# ------------------------------------------------------------------------------------------ time
def tick_step(span_s: float, most: int = 10) -> float:
    """A round step (1, 2 or 5 times a power of ten, or whole minutes) giving at most ``most`` ticks."""
    raw = max(span_s, 1e-6) / most
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if raw > 1 and step >= raw:
            return float(step)
    power = 10.0 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def clock(t: float, step: float, end: float) -> str:
    """A tick label: seconds on an axis that ends before a minute, else m:ss (or h:mm:ss)."""
    if end < 60 or step < 1:
        return f"{t:.{max(0, int(-np.floor(np.log10(step))))}f} s" if step < 1 else f"{t:.0f} s"
    s = int(round(t))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def downsample(times: np.ndarray, values: np.ndarray, bins: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(times, values) with at most ``bins`` time bins: the mean of each bin's finite values at the
    mean of its rows' times; bins without rows are left out (so gaps stay gaps). ``values``: (N,)
    or (N, K). Short series come back unchanged."""
    values = np.asarray(values, float)
    if len(times) <= bins:
        return times, values
    flat = values.reshape(len(values), -1)
    t0, t1 = float(times[0]), float(times[-1])
    index = np.minimum(((times - t0) / max(t1 - t0, 1e-9) * bins).astype(int), bins - 1)
    rows = np.bincount(index, minlength=bins)
    keep = rows > 0
    centre = np.bincount(index, weights=times, minlength=bins)[keep] / rows[keep]
    out = np.empty((int(keep.sum()), flat.shape[1]))
    for k in range(flat.shape[1]):
        ok = np.isfinite(flat[:, k])
        total = np.bincount(index[ok], weights=flat[ok, k], minlength=bins)
        count = np.bincount(index[ok], minlength=bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = np.where(count > 0, total / np.maximum(count, 1), np.nan)[keep]
    return centre, out.reshape((-1,) + values.shape[1:])


def spans(times: np.ndarray, mask: np.ndarray, step: float, merge_s: float) -> list[tuple[float, float]]:
    """(start, end) of the runs of frames where ``mask`` holds, each frame ``step`` wide; runs
    less than ``merge_s`` apart are joined (a plot cannot show a smaller gap)."""
    out: list[list[float]] = []
    for t in times[mask]:
        if out and t - out[-1][1] <= merge_s:
            out[-1][1] = t + step
        else:
            out.append([t, t + step])
    return [(a, b) for a, b in out]


def shaded_spans(times: np.ndarray, mask: np.ndarray, span: tuple[float, float], share: float,
                 bins: int = MAX_POINTS) -> list[tuple[float, float]]:
    """The stretches to shade where ``mask`` holds. Up to ``bins`` frames: each frame (one frame
    step wide). Longer: the plot's time bins in which more than ``share`` of the rows hold the
    mask (0: any row), so a long video's shading costs at most ``bins`` rectangles."""
    step = _step(times)
    if len(times) <= bins:
        return spans(times, mask, step, step / 2)
    t0, t1 = span
    width = (t1 - t0) / bins
    index = np.minimum(((times - t0) / width).astype(int), bins - 1)
    rows = np.bincount(index, minlength=bins)
    hits = np.bincount(index[mask], minlength=bins)
    selected = (rows > 0) & (hits > share * rows) & (hits > 0)
    starts = np.flatnonzero(selected & ~np.r_[False, selected[:-1]])
    ends = np.flatnonzero(selected & ~np.r_[selected[1:], False])
    return [(t0 + a * width, t0 + (b + 1) * width) for a, b in zip(starts, ends)]


def _runs(times: np.ndarray, ok: np.ndarray, step: float) -> list[np.ndarray]:
    """Index runs of consecutive good points, broken where the face was unseen for over GAP_S (or
    1.5 steps, when points are sparser than that)."""
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


def _step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.04


# ------------------------------------------------------------------------------------------ plots
class Plot:
    """One SVG plot: time across (with a labelled axis), values up; clipped to its area."""

    count = 0

    def __init__(self, span: tuple[float, float], y_range: tuple[float, float] = (0.0, 1.0), height: int = HEIGHT,
                 unit: str = ""):
        Plot.count += 1
        self.id = f"p{Plot.count}"
        self.t0, self.t1 = span[0], (span[1] if span[1] > span[0] else span[0] + 1.0)
        self.lo, self.hi = y_range
        self.height = height
        self.top, self.bottom = PAD, height - AXIS
        self.x0, self.x1 = LEFT, WIDTH - RIGHT
        self.parts = [f'<svg viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" '
                      f'data-t0="{self.t0:.3f}" data-t1="{self.t1:.3f}" data-x0="{self.x0}" data-x1="{self.x1}">'
                      f'<clipPath id="{self.id}"><rect x="{self.x0}" y="{self.top}" width="{self.x1 - self.x0}" '
                      f'height="{self.bottom - self.top}"/></clipPath>'
                      f'<rect x="{self.x0}" y="{self.top}" width="{self.x1 - self.x0}" height="{self.bottom - self.top}" '
                      f'fill="#fbfbfb" stroke="#ccc"/>']
        self.inner: list[str] = []
        if unit:
            self.parts.append(f'<text x="{self.x0 - 4}" y="{self.top + 9}" font-size="9" text-anchor="end" fill="#777">'
                              f"{esc(unit)}</text>")
        self._axis()

    def x(self, t) -> np.ndarray:
        """Horizontal SVG coordinates of times ``t`` (seconds)."""
        return self.x0 + (np.asarray(t, float) - self.t0) / (self.t1 - self.t0) * (self.x1 - self.x0)

    def y(self, v) -> np.ndarray:
        """Vertical SVG coordinates of values ``v`` (clipped to the plot's range; larger is higher)."""
        v = np.clip(np.asarray(v, float), self.lo, self.hi)
        return self.bottom - (v - self.lo) / (self.hi - self.lo) * (self.bottom - self.top)

    def _axis(self) -> None:
        step = tick_step(self.t1 - self.t0)
        first = np.ceil(self.t0 / step) * step
        for t in np.arange(first, self.t1 + 1e-9, step):
            x = float(self.x(t))
            self.parts.append(f'<line x1="{x:.1f}" y1="{self.bottom}" x2="{x:.1f}" y2="{self.bottom + 4}" stroke="#888"/>'
                              f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.bottom}" stroke="#eee"/>'
                              f'<text x="{x:.1f}" y="{self.bottom + 15}" font-size="10" text-anchor="middle" fill="#555">'
                              f"{clock(t, step, self.t1)}</text>")

    def y_labels(self, values) -> None:
        """Label these ``values`` on the vertical axis."""
        for value in values:
            self.parts.append(f'<text x="{self.x0 - 4}" y="{self.y(value) + 4:.1f}" font-size="10" text-anchor="end" '
                              f'fill="#555">{value:g}</text>')

    def shade(self, ranges: list[tuple[float, float]], fill: str, y0: float | None = None, y1: float | None = None,
              title: str = "") -> None:
        """Shade each (start, end) time range of ``ranges`` (seconds) with ``fill``, over the plot's
        height or between SVG heights ``y0`` and ``y1``; ``title``: the tooltip."""
        top = self.top if y0 is None else y0
        tall = (self.bottom - self.top) if y1 is None else y1 - y0
        tip = f"<title>{esc(title)}</title>" if title else ""
        for a, b in ranges:
            xa, xb = float(self.x(a)), float(self.x(b))
            self.inner.append(f'<rect x="{xa:.1f}" y="{top:.1f}" width="{max(1.0, xb - xa):.1f}" height="{tall:.1f}" '
                              f'fill="{fill}">{tip}</rect>')

    def lines(self, times: np.ndarray, series: np.ndarray, colours) -> None:
        """(N, K) series as K lines, broken at gaps; a lone point is a dot."""
        step = _step(times)
        for k, colour in enumerate(colours):
            values = series[:, k]
            for run in _runs(times, np.isfinite(values), step):
                xs, ys = self.x(times[run]), self.y(values[run])
                if len(run) == 1:
                    self.inner.append(f'<circle cx="{xs[0]:.1f}" cy="{ys[0]:.1f}" r="2" fill="{colour}"/>')
                    continue
                points = _points(xs, ys)
                self.inner.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')

    def stacked(self, times: np.ndarray, shares: np.ndarray, colours) -> None:
        """(N, K) shares that sum to 1, as stacked areas, drawn only over runs of rows that have them."""
        tops = np.cumsum(shares, axis=1)
        half = _step(times) / 2
        for run in _runs(times, np.isfinite(shares).all(axis=1), 2 * half):
            xs = self.x(times[run])
            if len(run) == 1:  # a lone row: a bar one step wide
                xs = self.x([times[run[0]] - half, times[run[0]] + half])
                run = np.repeat(run, 2)
            for k, colour in enumerate(colours):
                upper = self.y(tops[run, k])
                lower = self.y(tops[run, k] - shares[run, k])
                if (lower - upper).max() < 0.5:  # thinner than half a pixel everywhere: nothing to see
                    continue
                points = _points(np.r_[xs, xs[::-1]], np.r_[upper, lower[::-1]])
                self.inner.append(f'<polygon fill="{colour}" points="{points}"/>')

    def svg(self) -> str:
        """The finished plot as an SVG string (with the playback cursor the page moves)."""
        cursor = f'<line class="cursor" x1="-10" y1="{self.top}" x2="-10" y2="{self.bottom}" stroke="#000" stroke-width="1.5"/>'
        return ("".join(self.parts) + f'<g clip-path="url(#{self.id})">{"".join(self.inner)}</g>' + cursor + "</svg>")


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    """SVG points to a tenth of a pixel across (time) and a whole pixel up (values)."""
    return " ".join(f"{a:.1f},{b:.0f}" for a, b in zip(xs, ys))


def _legend(items: list[tuple[str, str]], extra: str = "") -> str:
    return '<div class="legend">' + "".join(swatch(c, n) for n, c in items) + extra + "</div>"


# ------------------------------------------------------------------------------------------ pieces
def strongest_episodes(episodes: pd.DataFrame, track: int) -> pd.DataFrame:
    """The ``TOP_EPISODES`` episodes of ``track`` with the highest peak intensity, strongest first."""
    return episodes[episodes["track"] == track].sort_values("peak_intensity", ascending=False).head(TOP_EPISODES)


def apex_frames(table: pd.DataFrame, episodes: pd.DataFrame) -> set[tuple[int, int]]:
    """(track, frame) of the apex of each track's strongest episodes: the frames whose faces the
    report shows (grabbed while the annotated video is drawn)."""
    if not len(episodes):
        return set()
    top = episodes.sort_values("peak_intensity", ascending=False).groupby("track").head(TOP_EPISODES)
    faces = table.loc[table["track"].notna(), ["track", "time_s", "frame"]].astype({"track": "int64"})
    hits = top[["track", "apex_s"]].astype({"track": "int64"}).merge(faces, left_on=["track", "apex_s"],
                                                                    right_on=["track", "time_s"])
    return {(int(a), int(b)) for a, b in zip(hits["track"], hits["frame"])}


def _is_section(row) -> bool:
    return row["last_s"] - row["first_s"] >= SECTION_MIN_S and row["frames"] >= SECTION_MIN_FRAMES


def section_tracks(tracks: pd.DataFrame) -> list[int]:
    """The tracks that get a section: long enough, the MAX_SECTIONS longest, in track order."""
    if not len(tracks):
        return []
    long = tracks[tracks.apply(_is_section, axis=1)]
    longest = long.assign(d=long["last_s"] - long["first_s"]).sort_values("d", ascending=False).head(MAX_SECTIONS)
    return sorted(int(t) for t in longest["track"])


def _reliability_warning(share: float) -> str:
    if not share > 0:
        return ('<p class="warn">No frame of this track passed the quality checks: its action units, episodes and '
                "perceived expression are not measurements to rely on.</p>")
    if share < WEAK_RELIABILITY:
        return (f'<p class="warn">Only {share:.0%} of this track\'s frames passed the quality checks: read its episodes '
                "with care (the hatched spans below).</p>")
    return ""


def _thumbnails(kept: list) -> str:
    if not kept:
        return ""
    chosen = np.unique(np.round(np.linspace(0, len(kept) - 1, min(len(kept), THUMBNAILS))).astype(int))
    return '<div class="thumbs">' + "".join(
        f'<figure><img alt="face at {kept[i][0]:.1f} s" src="{jpeg_uri(kept[i][1])}"><figcaption>{kept[i][0]:.1f} s'
        "</figcaption></figure>" for i in chosen) + "</div>"


def _track_section(track: int, g: pd.DataFrame, row, episodes: pd.DataFrame, inputs: ReportInputs) -> str:
    g = g.sort_values("time_s")
    t = g["time_s"].to_numpy(float)
    step = _step(t)
    span = (float(t[0]), float(t[-1]) + step)
    unreliable = shaded_spans(t, ~g["reliable"].fillna(False).to_numpy(bool), span, 0.5)
    share = float(row["reliable_share"]) if pd.notna(row["reliable_share"]) else 0.0
    out = [f'<section id="track-{track}"><h2>Track {track}</h2>',
           f'<p>{row["first_s"]:.2f}–{row["last_s"]:.2f} s ({row["last_s"] - row["first_s"]:.1f} s), {int(row["frames"])} '
           f'frames, {100 * share:.0f}% reliable, median yaw {row["median_yaw"]:+.0f}°, pitch {row["median_pitch"]:+.0f}°, '
           f'{int(row["episodes"])} action-unit episodes.</p>', _reliability_warning(share),
           _thumbnails(inputs.thumbnails.get(track, []))]
    hatch = HATCH_SWATCH.format("unreliable frames")
    au_cols = [c for c in actions.validated_columns() if c in g and g[c].notna().any()]  # all-NaN: turned off
    active = sorted(au_cols, key=lambda c: -float(g[c].fillna(0).clip(upper=3).mean()))[:6]
    if active:
        tb, vb = downsample(t, g[active].to_numpy(float, na_value=np.nan))
        plot = Plot(span, (0.0, 3.0), unit="intensity")
        plot.shade(unreliable, "url(#hatch)", title="unreliable")
        plot.y_labels((0, 1, 2, 3))
        plot.lines(tb, vb, SERIES[: len(active)])
        out += ["<h3>Most active action units (intensity, 1 = occurrence threshold)</h3>",
                _legend(list(zip(active, SERIES)), hatch), plot.svg()]
    perceived = [c for c in PERCEIVED_CLASSES if f"perceived_{c}" in g and g[f"perceived_{c}"].notna().any()]
    if perceived:
        tb, vb = downsample(t, g[[f"perceived_{c}" for c in perceived]].to_numpy(float, na_value=np.nan))
        plot = Plot(span, (0.0, 1.0), unit="share")
        plot.y_labels((0.0, 0.5, 1.0))
        plot.stacked(tb, vb, [PERCEIVED_COLOURS[c] for c in perceived])
        plot.shade(unreliable, "url(#hatch)", title="unreliable")
        out += ["<h3>Perceived expression (share of observers expected to choose each label)</h3>",
                _legend([(c, PERCEIVED_COLOURS[c]) for c in perceived], hatch), plot.svg()]
    tb, vb = downsample(t, g[["yaw", "pitch", "roll"]].to_numpy(float, na_value=np.nan))
    plot = Plot(span, (-60.0, 60.0), unit="degrees")
    plot.shade(unreliable, "url(#hatch)", title="unreliable")
    plot.y_labels((-60, 0, 60))
    plot.lines(tb, vb, SERIES[:3])
    out += ["<h3>Head pose (degrees)</h3>", _legend(list(zip(("yaw", "pitch", "roll"), SERIES)), hatch), plot.svg()]
    out += ["<h3>Quality and abstention (marked where a check failed)</h3>", _quality_strip(t, g, span)]
    out.append(_episode_table(track, g, episodes, inputs.apex_faces, share))
    out.append("</section>")
    return "".join(out)


def _quality_strip(t, g, span) -> str:
    reasons = g["quality_reasons"].fillna("").astype(str).str.split(";")
    rows = [(check, reasons.apply(lambda names, c=check: c in names).to_numpy(bool)) for check in QUALITY_CHECKS]
    if "perceived_top" in g and g["perceived_top"].notna().any():
        rows.append(("mien abstains", g["perceived_top"].eq("uncertain").fillna(False).to_numpy(bool)))
    row_h = 12
    plot = Plot(span, height=int(PAD + AXIS + row_h * len(rows)))
    for i, (name, failed) in enumerate(rows):
        top = PAD + i * row_h
        plot.parts.append(f'<text x="{LEFT - 4}" y="{top + row_h - 2:.1f}" font-size="10" text-anchor="end" '
                          f'fill="#555">{esc(name)}</text>')
        plot.shade(shaded_spans(t, failed, span, 0.0), "#555" if name == "mien abstains" else "#D55E00", top + 1,
                   top + row_h - 1, name)
    return plot.svg()


def _episode_table(track: int, g: pd.DataFrame, episodes: pd.DataFrame, apex_faces: dict, share: float) -> str:
    mine = strongest_episodes(episodes, track)
    if not len(mine):
        return ""
    frame_at = dict(zip(g["time_s"].to_numpy(float), g["frame"].to_numpy(int)))
    label = "Strongest episodes" + (" (from unreliable frames: see the warning above)" if share < WEAK_RELIABILITY else "")
    out = [f"<h3>{label}</h3><table><tr><th>face at apex</th><th>unit</th><th>onset</th><th>apex</th><th>offset</th>"
           "<th>duration</th><th>peak</th></tr>"]
    for e in mine.itertuples():
        face = apex_faces.get((track, frame_at.get(float(e.apex_s), -1)))
        image = f'<img class="apex" alt="face at the apex" src="{jpeg_uri(face)}">' if face else '<span class="muted">–</span>'
        out.append(f"<tr><td>{image}</td><td>{esc(e.unit)}</td><td>{e.onset_s:.2f} s</td><td>{e.apex_s:.2f} s</td>"
                   f"<td>{e.offset_s:.2f} s</td><td>{e.duration_s:.2f} s</td><td>{e.peak_intensity:.2f}</td></tr>")
    out.append("</table>")
    if not apex_faces:
        out.append('<p class="muted">Faces at the apexes are taken while the annotated video is drawn: run with '
                   "--annotate DIR to see them.</p>")
    return "".join(out)


def _track_table(tracks: pd.DataFrame, with_section: set[int]) -> str:
    head = ("<thead><tr><th class=sort>track</th><th class=sort>first (s)</th><th class=sort>last (s)</th>"
            "<th class=sort>duration (s)</th><th class=sort>frames</th><th class=sort>reliable</th>"
            "<th class=sort>median yaw °</th><th class=sort>episodes</th></tr></thead>")
    rows = []
    for r in tracks.itertuples():
        track = int(r.track)
        name = f'<a href="#track-{track}">{track}</a>' if track in with_section else f"{track}"
        share = r.reliable_share if pd.notna(r.reliable_share) else 0.0
        warn = ' class="warn"' if share < WEAK_RELIABILITY else ""
        rows.append(f'<tr><td data-v="{track}">{name}</td><td data-v="{r.first_s:.3f}" class=num>{r.first_s:.2f}</td>'
                    f'<td data-v="{r.last_s:.3f}" class=num>{r.last_s:.2f}</td>'
                    f'<td data-v="{r.last_s - r.first_s:.3f}" class=num>{r.last_s - r.first_s:.2f}</td>'
                    f'<td data-v="{int(r.frames)}" class=num>{int(r.frames)}</td>'
                    f'<td data-v="{share:.4f}" class=num><span{warn}>{100 * share:.0f}%</span></td>'
                    f'<td data-v="{r.median_yaw:.2f}" class=num>{r.median_yaw + 0.0:+.0f}</td>'
                    f'<td data-v="{int(r.episodes)}" class=num>{int(r.episodes)}</td></tr>')
    return f'<table class="sortable">{head}<tbody>{"".join(rows)}</tbody></table>'


def _timeline(tracks: pd.DataFrame, span: tuple[float, float], with_section: list[int], step: float) -> str:
    """A row per sectioned track, and one row for all the others, across the whole video."""
    rows = [(f"track {t}", tracks[tracks["track"] == t]) for t in with_section]
    others = tracks[~tracks["track"].isin(with_section)]
    if len(others):
        rows.append(("other tracks", others))
    row_h = 14
    plot = Plot(span, height=int(PAD + AXIS + row_h * max(1, len(rows))))
    for i, (name, members) in enumerate(rows):
        top = PAD + i * row_h
        plot.parts.append(f'<text x="{LEFT - 4}" y="{top + row_h - 3:.1f}" font-size="10" text-anchor="end" '
                          f'fill="#555">{esc(name)}</text>')
        for r in members.itertuples():
            reliable = pd.notna(r.reliable_share) and r.reliable_share >= WEAK_RELIABILITY
            plot.shade([(r.first_s, r.last_s + step)], SERIES[0] if reliable else "url(#hatch)", top + 2, top + row_h - 2,
                       f"track {int(r.track)}: {r.first_s:.1f}–{r.last_s:.1f} s, {r.reliable_share:.0%} reliable")
    legend = _legend([("track, mostly reliable", SERIES[0])], HATCH_SWATCH.format("track, mostly unreliable"))
    return legend + plot.svg()


def _links(paths, report: Path) -> str:
    items = []
    for p in paths:
        href = os.path.relpath(Path(p).resolve(), report.resolve().parent)
        items.append(f'<a href="{esc(href)}">{esc(Path(p).name)}</a>')
    return " · ".join(items)


def render_report(inputs: ReportInputs, report_path: str | Path = "report.html") -> str:
    """The HTML report of one analysed video (``inputs``: its tables, metadata and thumbnails) as text;
    ``report_path``: where it will be written, so that its links to the
    annotated video and the data files are relative to it."""
    table, tracks, episodes, info = inputs.table, inputs.tracks, inputs.episodes, inputs.info
    Plot.count = 0
    faces = table[table["track"].notna()]
    name = source_text(Path(info.path).name)
    times = table["time_s"].dropna().to_numpy(float)
    step = _step(np.sort(np.unique(times))) if len(times) else 0.04
    span = (float(times.min()), float(times.max()) + step) if len(times) else (0.0, 1.0)
    meta = (f"{info.width}x{info.height}, {info.fps:.2f} frames/s nominal, rotation {info.rotation}°, "
            f"{table['frame'].nunique()} frames analysed ({span[0]:.1f}–{span[1]:.1f} s), {len(tracks)} tracks, "
            f"{int((table['status'] == 'error').sum())} frames could not be decoded")
    chosen = section_tracks(tracks)
    by_track = dict(tuple(faces.groupby("track", sort=True))) if len(faces) else {}
    rows = {int(r["track"]): r for _, r in tracks.iterrows()}
    sections = [_track_section(t, by_track[t], rows[t], episodes, inputs) for t in chosen if t in by_track]
    report_path = Path(report_path)
    video = ""
    if inputs.video is not None:
        href = esc(os.path.relpath(Path(inputs.video.path).resolve(), report_path.resolve().parent))
        if inputs.video.playable:
            video = (f'<div id="playerbox"><video id="player" controls preload="metadata" src="{href}" '
                     f'data-offset="{inputs.video.first_time or 0.0:.3f}"></video><div class="muted">Playing moves the '
                     f"black cursor over every plot; click a plot to jump there.</div></div>")
        else:
            video = (f'<p class="warn">The annotated video (<a href="{href}">{esc(Path(inputs.video.path).name)}</a>) is '
                     "MPEG-4 Part 2, which browsers do not play: no H.264 or VP9 encoder was found (install PyAV, "
                     "`pip install av`, for one). Open it in a video player.</p>")
    short = len(tracks) - len(sections)
    toc = ["<li><a href=#overview>Overview</a></li>", "<li><a href=#timeline>Timeline of tracks</a></li>"]
    toc += [f'<li><a href="#track-{t}">Track {t}</a></li>' for t in chosen]
    toc.append("<li><a href=#settings>Run settings and data files</a></li>")
    links = _links([*inputs.data_files, *([inputs.video.path] if inputs.video is not None else [])], report_path)
    body = [HATCH, EXTRA_CSS, f"<h1>mien report: {esc(name)}</h1>", video,
            f'<p>{esc(source_text(info.path))}<br>{esc(meta)}</p><p>{esc(INTRO)}</p><nav><ul>{"".join(toc)}</ul></nav>',
            '<h2 id="overview">Overview</h2>']
    if len(tracks):
        body.append(f"<p>{len(sections)} tracks have a section below; the other "
                    f"{short}, shorter than {SECTION_MIN_S:g} s or {SECTION_MIN_FRAMES} frames"
                    f"{f' (or beyond the {MAX_SECTIONS} longest)' if len(tracks) > MAX_SECTIONS else ''}, are in one table "
                    "under it. Click a header to sort.</p>")
        in_sections = tracks["track"].isin(chosen)
        body.append(_track_table(tracks[in_sections], set(chosen)))
        if short:
            body.append(f"<details><summary>The other {short} track(s), in one table</summary>"
                        f"{_track_table(tracks[~in_sections], set())}</details>")
        body.append(f'<h2 id="timeline">Timeline of tracks</h2>{_timeline(tracks, span, chosen, step)}')
    else:
        body.append("<p>No face was found.</p>")
    body += sections
    body.append(f'<h2 id="settings">Run settings and data files</h2><p>{links}</p>{settings_table(inputs.settings)}')
    return page(f"mien report: {name}", "".join(body), SORT_SCRIPT + CURSOR_SCRIPT)


def write_report(path, inputs: ReportInputs) -> Path:
    """Write the report of ``inputs`` to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(render_report(inputs, path), encoding="utf-8")
    return path
