"""mien's table in the layout of OpenFace 2's CSV, for analysis scripts written for OpenFace.

The mapping, and what cannot be mapped, is in docs/openface.md. In short: ``frame`` is 1-based
(as OpenFace counts), ``face_id`` is the video track (or the face index in a photo), ``confidence``
is mien's landmark presence, ``success`` is mien's ``reliable``; head pose and gaze are mien's
angles in radians with OpenFace's signs (its camera frame: x right, y down, z away from the
camera; pose recomposed in OpenFace's order, see ``openface_pose``); ``AUxx_r`` is mien's intensity
clipped to 0..5 (1 = occurrence in both) and ``AUxx_c`` its occurrence, each the larger of the
two sides for units mien measures per side. The file is written as OpenFace writes it: ``", "``
between fields; read it with ``pandas.read_csv(path, skipinitialspace=True)``.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from . import actions
from .io import atomic_path, csv_text

# OpenFace 2's action units: intensity (_r) and occurrence (_c); AU28 (lip suck) has _c only.
OPENFACE_UNITS_R = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
# OpenFace's AU45 (blink) is the eyelids' closure frame by frame; mien's per-frame measure of it is AU43.
MIEN_UNIT_FOR = {45: 43}
HEAD = ("frame", "face_id", "timestamp", "confidence", "success")
POSE = ("pose_Rx", "pose_Ry", "pose_Rz")
GAZE = ("gaze_angle_x", "gaze_angle_y")
MAX_INTENSITY = 5.0


def openface_columns() -> list[str]:
    """The columns of the OpenFace-layout table, in order (``AUxx_r`` intensities, then ``AUxx_c``
    presence, then ``source``)."""
    units = [f"AU{n:02d}" for n in OPENFACE_UNITS_R]
    return [*HEAD, *GAZE, *POSE, *(f"{u}_r" for u in units), *(f"{u}_c" for u in units), "source"]


def _unit_columns(table: pd.DataFrame, number: int) -> list[str]:
    wanted = MIEN_UNIT_FOR.get(number, number)
    return [u.column for u in actions.action_units() if u.number == wanted and u.column in table]


def _rotations(axis: int, radians: np.ndarray) -> np.ndarray:
    """(N, 3, 3) right-handed rotations about one axis."""
    c, s = np.cos(radians), np.sin(radians)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.zeros((len(radians), 3, 3))
    out[:, axis, axis] = 1.0
    out[:, i, i], out[:, i, j], out[:, j, i], out[:, j, j] = c, -s, s, c
    return out


def openface_pose(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenFace's (pose_Rx, pose_Ry, pose_Rz), radians, of mien's head pose in degrees.

    mien's rotation ``Rz(roll) Ry(yaw) Rx(-pitch)`` in its camera frame (x right, y up, z towards
    the camera; mien.geometry) is taken into OpenFace's (x right, y down, z away from the camera)
    and split in OpenFace's order ``Rx Ry Rz``. For a turn about one axis alone this is the
    negated angle in radians; combined turns differ from simply negating (7° of roll appear at
    20° of both yaw and pitch)."""
    y, p, r = (np.radians(np.asarray(a, float)) for a in (yaw, pitch, roll))
    known = np.isfinite(y) & np.isfinite(p) & np.isfinite(r)
    rot = _rotations(2, np.where(known, r, 0)) @ _rotations(1, np.where(known, y, 0)) @ _rotations(0, np.where(known, -p, 0))
    flip = np.diag([1.0, -1.0, -1.0])
    of = flip @ rot @ flip
    rx = np.arctan2(-of[:, 1, 2], of[:, 2, 2])
    ry = np.arcsin(np.clip(of[:, 0, 2], -1.0, 1.0))
    rz = np.arctan2(-of[:, 0, 1], of[:, 0, 0])
    return tuple(np.where(known, a, np.nan) for a in (rx, ry, rz))


def _radians(table: pd.DataFrame, column: str, sign: float) -> np.ndarray:
    if column not in table:
        return np.full(len(table), np.nan)
    return sign * np.radians(table[column].to_numpy(float, na_value=np.nan))


def to_openface(table: pd.DataFrame) -> pd.DataFrame:
    """OpenFace-layout rows of a mien table (one row per face, or per faceless image or frame)."""
    n = len(table)
    has_face = table["face"].notna().to_numpy(bool) if "face" in table else np.zeros(n, bool)
    video = "track" in table and table["track"].notna().any()
    face_id = table["track"] if video else table.get("face", pd.Series(np.nan, index=table.index))
    out = {
        "frame": table["frame"].to_numpy(np.int64) + 1,
        "face_id": face_id.astype("Int64").to_numpy(),
        "timestamp": table["time_s"].to_numpy(float, na_value=0.0) if "time_s" in table else np.zeros(n),
        "confidence": np.where(has_face, table["presence"].to_numpy(float, na_value=np.nan), 0.0),
        "success": (table["reliable"].fillna(False).to_numpy(bool) & has_face).astype(np.int64),
        # OpenFace: x right, y down; mien: yaw > 0 to the image's right, pitch > 0 up (see geometry.py)
        "gaze_angle_x": _radians(table, "gaze_yaw", 1.0),
        "gaze_angle_y": _radians(table, "gaze_pitch", -1.0),
    }
    out["pose_Rx"], out["pose_Ry"], out["pose_Rz"] = openface_pose(
        *(table[c].to_numpy(float, na_value=np.nan) if c in table else np.full(n, np.nan) for c in ("yaw", "pitch", "roll")))
    for number in OPENFACE_UNITS_R:
        sides = _unit_columns(table, number)
        values = table[sides].to_numpy(float, na_value=np.nan) if sides else np.full((n, 1), np.nan)
        known = np.isfinite(values).any(axis=1)
        strongest = np.where(known, np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=1), np.nan)
        out[f"AU{number:02d}_r"] = np.clip(strongest, 0.0, MAX_INTENSITY)
        out[f"AU{number:02d}_c"] = np.where(known, (strongest >= 1.0).astype(float), np.nan)
    out["source"] = table["source"].astype(str).to_numpy()
    return pd.DataFrame(out, columns=openface_columns())


def _field(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def openface_csv_text(frame: pd.DataFrame) -> str:
    """CSV text with OpenFace's ``", "`` separators; text fields quoted where they need it."""
    lines = [", ".join(frame.columns)]
    quoted = io.StringIO()
    writer = csv.writer(quoted, lineterminator="")
    for row in frame.itertuples(index=False):
        quoted.seek(0)
        quoted.truncate()
        writer.writerow([csv_text(row[-1])])  # the source: a file name may hold a comma, a quote or start like a formula
        lines.append(", ".join([*(_field(v) for v in row[:-1]), quoted.getvalue()]))
    return "\n".join(lines) + "\n"


def write_openface(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``to_openface(table)`` to ``path`` (.csv), atomically."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise ValueError(f"the OpenFace layout is a CSV file: {path} must end in .csv")
    with atomic_path(path) as tmp:
        tmp.write_text(openface_csv_text(to_openface(table)), encoding="utf-8")
    return path


def needed_columns() -> list[str]:
    """The columns of a mien table that ``to_openface`` reads (to load no more of a long table)."""
    units = [c for n in OPENFACE_UNITS_R for c in (u.column for u in actions.action_units()
                                                   if u.number == MIEN_UNIT_FOR.get(n, n))]
    return ["source", "frame", "face", "track", "time_s", "presence", "reliable", "gaze_yaw", "gaze_pitch",
            "yaw", "pitch", "roll", *units]


def convert_to_openface(path: str | Path) -> Path:
    """Rewrite a mien CSV table (a video's per-frame rows) in the OpenFace layout, in place and
    atomically, reading only the columns the layout needs."""
    wanted = set(needed_columns())
    table = pd.read_csv(path, usecols=lambda c: c in wanted, dtype={"source": str})
    return write_openface(table, path)
