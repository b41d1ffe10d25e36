"""The one schema: every output column, what it means, and how it is read from ``Faces``.

A table has one row per face. An image with no face, or one that could not be read, still
gets one row, with ``face`` empty and ``status`` saying why, so that nothing disappears
silently from a batch. ``COLUMNS`` documents every column; writers only change the format.
Action units add ``au<NN>_<name>[_l|_r]`` intensity columns and ``…_present`` flags
(docs/action_units.md); perceived expression adds ``perceived_<class>`` shares and
``perceived_top`` (docs/perceived.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from . import actions, perceived
from .faces import Faces
from .mesh import LANDMARK_COUNT
from .paths import readable_text, source_text


@dataclass(frozen=True)
class Column:
    """One output column: its name, pandas dtype, meaning, and how to read it from ``Faces``.

    ``extract`` maps a batch of faces to N values, or to None where that measure was turned off.
    ``per_image`` columns are read from each image's own batch (one value for all of its rows, or
    the face's index within its image); the others from all batches' faces stacked at once."""

    name: str
    dtype: str  # pandas dtype
    meaning: str
    extract: Callable[[Faces], object] = field(repr=False, compare=False, default=None)
    per_image: bool = False


def _image(name: str, dtype: str, meaning: str, extract) -> Column:
    return Column(name, dtype, meaning, extract, per_image=True)


def _attr(*path: str, index=None):
    """Extractor of ``faces.<path>`` (optionally ``[:, index]``), None where a part of the path is None."""
    def extract(faces: Faces):
        value = faces
        for name in path:
            value = getattr(value, name)
            if value is None:
                return None
        return value if index is None else value[(slice(None),) + index]
    return extract


def _box(k: int):
    def extract(faces: Faces):
        b = faces.boxes.astype(np.float64)
        return b[:, k] if k < 2 else b[:, k] - b[:, k - 2]
    return extract


COLUMNS: tuple[Column, ...] = (
    _image("source", "string", "input file (or video) path as given; in a name that is not valid UTF-8 each such byte is "
           "written `\\xNN` and a backslash before `\\`, `x` or such a byte is doubled (`mien.paths.source_path` "
           "gives the exact path back)", lambda f: source_text(f.source)),
    _image("frame", "Int64", "frame index in a video; 0 for a still image", lambda f: f.frame),
    _image("face", "Int64", "face index within the image, by detection score; empty when no face",
           lambda f: np.arange(len(f)) if len(f) else None),
    Column("track", "Int64", "video only: face track id, stable within one video (no identity: not comparable across videos)",
           _attr("track_ids")),
    _image("time_s", "float64", "video only: frame timestamp from the container, seconds", lambda f: f.time_s),
    Column("au_baseline", "string", "video only: neutral reference of the action units: population, or track (the median of "
           "the track's neutral-looking frames; see docs/video.md)",
           lambda f: None if f.au_baseline is None else np.array(f.au_baseline, object)),
    Column("au_baseline_frames", "Int64", "video only: neutral-looking frames the track's neutral was built from; 0 for the "
           "population neutral", _attr("au_baseline_frames")),
    _image("status", "string", "ok | no_face | error", lambda f: f.status),
    _image("error", "string", "what went wrong when status is error, else empty", lambda f: readable_text(f.error)),
    _image("note", "string", "how the file was read, when that matters: a very large JPEG decoded at 1/2, 1/4 or 1/8 "
           "size (its coordinates are still in the file's pixels, measured at that coarser scale), or only the first "
           "frame of a multi-frame image; else empty", lambda f: f.note),
    _image("image_width", "Int64", "image width in the file's own pixels, after EXIF rotation; every coordinate is in "
           "these pixels", lambda f: f.width),
    _image("image_height", "Int64", "image height in the file's own pixels, after EXIF rotation", lambda f: f.height),
    Column("x", "float32", "face box left edge, pixels (image x to the right)", _box(0)),
    Column("y", "float32", "face box top edge, pixels (image y downwards)", _box(1)),
    Column("w", "float32", "face box width, pixels", _box(2)),
    Column("h", "float32", "face box height, pixels", _box(3)),
    Column("score", "float32", "face detector confidence, 0..1; in video only on frames where the detector ran on the "
           "face (every --detect-every frames; most frames follow the face from its landmarks): use track_score there; "
           "for a face that the small-image search found (mien.small_faces), the detector's confidence on the face's "
           "upright crop, and the box is the landmarks' extent",
           _attr("scores")),
    Column("track_score", "float32", "video only: the detector confidence of the track's latest detection, on every "
           "frame of the track, 0..1", _attr("track_scores")),
    Column("presence", "float32", "landmark model's face-presence probability, 0..1", _attr("presence")),
    Column("yaw", "float32", "head yaw, degrees; > 0 turned towards the image's right (subject's left)", _attr("pose", "yaw")),
    Column("pitch", "float32", "head pitch, degrees; > 0 chin up", _attr("pose", "pitch")),
    Column("roll", "float32", "head roll, degrees; > 0 counterclockwise in the image", _attr("pose", "roll")),
    Column("iod_px", "float32", "distance between the eye centres, pixels (face size)", _attr("quality", "iod_px")),
    Column("sharpness", "float32", "Laplacian contrast of the face at a fixed scale; low is blurry", _attr("quality", "sharpness")),
    Column("brightness", "float32", "mean grey level of the face centre, 0..1", _attr("quality", "brightness")),
    Column("clipped", "float32", "share of face-centre pixels that are black or white clipped", _attr("quality", "clipped")),
    Column("reliable", "boolean", "all quality checks passed (see docs/quality.md)", _attr("quality", "reliable")),
    Column("quality_reasons", "string", "failed quality checks, ';'-separated; empty when reliable",
           lambda f: None if f.quality is None else np.array(f.quality.reasons, object)),
    Column("iris_left_x", "float32", "iris centre of the eye on the image's left, pixels", _attr("iris", index=(0, 0))),
    Column("iris_left_y", "float32", "iris centre of the eye on the image's left, pixels", _attr("iris", index=(0, 1))),
    Column("iris_right_x", "float32", "iris centre of the eye on the image's right, pixels", _attr("iris", index=(1, 0))),
    Column("iris_right_y", "float32", "iris centre of the eye on the image's right, pixels", _attr("iris", index=(1, 1))),
    Column("gaze_yaw", "float32", "estimated gaze direction, degrees, head yaw plus eye-in-head yaw (same signs); an estimate, see docs",
           _attr("gaze", index=(0,))),
    Column("gaze_pitch", "float32", "estimated gaze direction, degrees, head pitch plus eye-in-head pitch; > 0 up",
           _attr("gaze", index=(1,))),
)
_UNITS = {u.column: k for k, u in enumerate(actions.action_units())}
COLUMNS = COLUMNS + tuple(
    Column(name, dtype, meaning, _attr("actions", "present" if name.endswith("_present") else "intensity",
                                       index=(_UNITS[name.removesuffix("_present")],)))
    for name, dtype, meaning in actions.column_table())
COLUMNS = COLUMNS + tuple(
    Column(f"perceived_{c}", "float32", f"share of observers expected to call the face '{c}' (calibrated crowd-label "
           "model, see docs/perceived.md); not what the person feels", _attr("perceived", "probabilities", index=(k,)))
    for k, c in enumerate(perceived.CLASSES)) + (
    Column("perceived_top", "string", "most likely crowd label, or 'uncertain' when its share is below the abstention "
           "threshold or the face is not reliable (perceived_abstain_reason says which)",
           lambda f: None if f.perceived is None else np.array(f.perceived.top, object)),
    Column("perceived_top_p", "float32", "share of observers expected to choose the top label", _attr("perceived", "top_p")),
    Column("perceived_entropy", "float32", "spread of the expected crowd labels, nats (0 = all agree, 2.08 = uniform)",
           _attr("perceived", "entropy")),
    Column("perceived_abstain_reason", "string", "why perceived_top is 'uncertain', ';'-separated: unreliable_face (the "
           "face failed a quality check, so no label is given however high perceived_top_p is), low_share (the top "
           "share is below the abstention threshold), not_measured; empty when there is a label",
           lambda f: None if f.perceived is None else np.array(f.perceived.abstain_reason, object)),
)


def landmark_columns() -> list[str]:
    """The 1404 landmark columns ``lm000_x`` … ``lm467_z`` (468 points, x y z each, in pixels), in order."""
    return [f"lm{i:03d}_{axis}" for i in range(LANDMARK_COUNT) for axis in "xyz"]


def _per_image_values(column: Column, batches: list[Faces], rows_per_batch: np.ndarray):
    """Columns read per image: one value for all of its rows, or (``face``) one per row."""
    values = [column.extract(b) for b in batches]
    missing = np.repeat(np.array([v is None for v in values], bool), rows_per_batch)
    if any(isinstance(v, np.ndarray) for v in values):
        filled = np.concatenate([np.zeros(n, np.int64) if v is None else np.broadcast_to(v, n)
                                 for v, n in zip(values, rows_per_batch)] or [np.zeros(0, np.int64)])
    else:
        filled = np.repeat(np.array([0 if v is None else v for v in values], object), rows_per_batch)
    return filled, missing


def _per_face_values(column: Column, groups: list[tuple[Faces, np.ndarray]], rows: int):
    """All rows' values (object or numeric array) and the mask of rows without a value. ``groups``:
    stacked faces with the rows they fill."""
    out, missing = None, np.ones(rows, bool)
    for faces, at in groups:
        values = column.extract(faces)
        if values is None:
            continue
        values = np.asarray(values)
        if out is None:
            out = np.zeros(rows, values.dtype) if values.dtype != object else np.full(rows, None, object)
        out[at] = values
        missing[at] = False
    return (np.zeros(rows) if out is None else out), missing


def _face_groups(batches: list[Faces], starts: np.ndarray) -> list[tuple[Faces, np.ndarray]]:
    """The batches with faces stacked into one ``Faces`` per set of measures turned on (usually one),
    each with the table rows its faces fill."""
    groups: dict[tuple, list[int]] = {}
    for i, b in enumerate(batches):
        if len(b):
            groups.setdefault(b.measured, []).append(i)
    return [(Faces.concat([batches[i] for i in members]),
             np.concatenate([starts[i] + np.arange(len(batches[i])) for i in members]))
            for members in groups.values()]


def _typed(values: np.ndarray, missing: np.ndarray, dtype: str) -> pd.api.extensions.ExtensionArray | np.ndarray:
    if dtype.startswith("float"):
        out = values.astype(dtype)
        out[missing] = np.nan
        return out
    if dtype == "Int64":
        return pd.arrays.IntegerArray(np.where(missing, 0, values).astype(np.int64), missing.copy())
    if dtype == "boolean":
        return pd.arrays.BooleanArray(np.where(missing, False, values).astype(bool), missing.copy())
    out = np.where(missing, None, values).astype(object)
    return pd.array(out, dtype=dtype)


def to_frame(faces: Faces | Iterable[Faces], landmarks: bool = False) -> pd.DataFrame:
    """One row per face (or per image without a face), columns in schema order (``COLUMNS``).

    ``faces``: one ``Faces`` or many (images, or the frames of a video). ``landmarks=True`` adds the
    468 landmarks (``lm000_x`` … ``lm467_z``, pixels): biometric data, so only on request."""
    batches = [faces] if isinstance(faces, Faces) else list(faces)
    rows_per_batch = np.array([max(len(b), 1) for b in batches], np.int64)
    rows = int(rows_per_batch.sum())
    starts = np.cumsum(rows_per_batch) - rows_per_batch
    groups = _face_groups(batches, starts)
    data = {}
    for column in COLUMNS:
        if column.per_image:
            values, missing = _per_image_values(column, batches, rows_per_batch)
        else:
            values, missing = _per_face_values(column, groups, rows)
        data[column.name] = _typed(values, missing, column.dtype)
    frame = pd.DataFrame(data)
    if landmarks:
        flat = np.full((rows, LANDMARK_COUNT * 3), np.nan, np.float32)
        for faces, at in groups:
            flat[at] = faces.landmarks.reshape(len(faces), -1)
        frame = pd.concat([frame, pd.DataFrame(flat, columns=landmark_columns(), index=frame.index)], axis=1)
    return frame


def schema_markdown() -> str:
    """The output columns as a Markdown table (column, type, meaning), landmark columns last."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.dtype} | {c.meaning} |" for c in COLUMNS]
    lines.append("| `lm000_x` … `lm467_z` | float32 | the 468 landmarks in pixels (x right, y down, z depth in pixel scale, "
                 "smaller is nearer); only with `--landmarks` |")
    return "\n".join(lines) + "\n"


def schema_dict() -> dict[str, str]:
    """Each output column's name -> its meaning (what ``mien schema --json`` prints)."""
    return {c.name: c.meaning for c in COLUMNS}
