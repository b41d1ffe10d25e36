"""Summaries of a video's per-frame table, as pure functions of the table: action-unit episodes
(onset, apex, offset per track and unit) and one row per track."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import actions

EPISODE_GAP_S = 0.1  # gaps up to this long (missed or unreliable frames) do not end an episode
BLINK_MAX_S = 0.5  # an eyes-closed episode this short is reported as AU45 (blink)


def _by_track(table: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, int, slice]]]:
    """The face rows sorted by source, track and time, and each track's source, id and slice of
    them (track ids are only unique within one video)."""
    faces = table[table["track"].notna()].sort_values(["source", "track", "time_s"], kind="stable")
    tracks = faces["track"].to_numpy(np.int64)
    sources = faces["source"].to_numpy(object)
    new = np.r_[True, (np.diff(tracks) != 0) | (sources[1:] != sources[:-1])] if len(tracks) else np.zeros(0, bool)
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(tracks)]
    return faces, [(sources[a], int(tracks[a]), slice(a, b)) for a, b in zip(starts, ends)]


def reported_units(experimental: bool = False) -> list[str]:
    """Unit columns that episodes and track shares report: units marked experimental only if asked."""
    return actions.columns() if experimental else actions.validated_columns()


def action_unit_episodes(table: pd.DataFrame, experimental: bool = False) -> pd.DataFrame:
    """Episodes per track (of each source) and unit column: onset, apex, offset (seconds), duration,
    peak intensity.

    An episode is a run of frames where the unit is present, joining gaps of up to EPISODE_GAP_S.
    Eyes-closed episodes no longer than BLINK_MAX_S are labelled ``au45_blink``."""
    faces, tracks = _by_track(table)
    units = [c for c in reported_units(experimental) if f"{c}_present" in faces]
    times = faces["time_s"].to_numpy(float)
    values = faces[units].to_numpy(float, na_value=np.nan)
    present = faces[[f"{c}_present" for c in units]].fillna(False).to_numpy(bool)
    rows = []
    for source, track, rows_of in tracks:
        t = times[rows_of]
        for j, column in enumerate(units):
            idx = np.flatnonzero(present[rows_of, j])
            if not len(idx):
                continue
            v = values[rows_of, j]
            breaks = np.flatnonzero(np.diff(t[idx]) > EPISODE_GAP_S)
            for run in np.split(idx, breaks + 1):
                apex = run[0] + int(np.nanargmax(v[run[0] : run[-1] + 1]))
                onset, offset = t[run[0]], t[run[-1]]
                unit = column
                if column.startswith("au43_") and offset - onset <= BLINK_MAX_S:
                    unit = "au45_blink" + column[len("au43_eyes_closed"):]
                rows.append(dict(source=source, track=track, unit=unit, onset_s=onset, apex_s=t[apex], offset_s=offset,
                                 duration_s=offset - onset, frames=len(run), peak_intensity=float(v[apex])))
    columns = ["source", "track", "unit", "onset_s", "apex_s", "offset_s", "duration_s", "frames", "peak_intensity"]
    return pd.DataFrame(rows, columns=columns).sort_values(["source", "track", "onset_s", "unit"], ignore_index=True)


def track_summary(table: pd.DataFrame, episodes: pd.DataFrame, experimental: bool = False) -> pd.DataFrame:
    """One row per track (of each source): time span, frames, reliable share, median pose and size,
    episode count, and    the share of its frames in which each action unit is present."""
    faces, tracks = _by_track(table)
    shares = [f"{c}_present" for c in reported_units(experimental) if f"{c}_present" in faces]
    present = faces[shares].astype(float).to_numpy(float, na_value=np.nan)
    reliable = faces["reliable"].astype(float).to_numpy(float, na_value=np.nan)
    episode_counts = episodes.groupby(["source", "track"]).size()
    rows = []
    for source, track, rows_of in tracks:
        g = faces.iloc[rows_of]
        row = dict(source=source, track=track, first_s=g["time_s"].iloc[0], last_s=g["time_s"].iloc[-1], frames=len(g),
                   reliable_share=_mean(reliable[rows_of]),
                   median_yaw=g["yaw"].median(), median_pitch=g["pitch"].median(), median_roll=g["roll"].median(),
                   median_iod_px=g["iod_px"].median(), episodes=int(episode_counts.get((source, track), 0)))
        row.update({f"{column}_share": _mean(present[rows_of, j]) for j, column in enumerate(shares)})
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(values: np.ndarray) -> float:
    """Mean of the known values; NaN when there are none (as pandas' mean)."""
    known = values[np.isfinite(values)]
    return float(known.mean()) if len(known) else float("nan")
