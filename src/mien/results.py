"""The one schema: typed results per image and face, and every table derived from them.

A table has one row per face. An image with no face, or one that could not be read, still
gets one row, with ``face`` empty and ``status`` saying why, so that nothing disappears
silently from a batch. ``COLUMNS`` documents every column; writers only change the format.
Action units add ``au<NN>_<name>[_l|_r]`` intensity columns and ``…_present`` flags
(docs/action_units.md); perceived expression adds ``perceived_<class>`` shares and
``perceived_top`` (docs/perceived.md).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from . import actions, perceived


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype
    meaning: str


COLUMNS: tuple[Column, ...] = (
    Column("source", "string", "input file (or video) path as given"),
    Column("frame", "Int64", "frame index in a video; 0 for a still image"),
    Column("face", "Int64", "face index within the image, by detection score; empty when no face"),
    Column("track", "Int64", "video only: face track id, stable within one video (no identity: not comparable across videos)"),
    Column("time_s", "float64", "video only: frame timestamp from the container, seconds"),
    Column("au_baseline", "string", "video only: neutral reference of the action units: population, or track (the track's own median)"),
    Column("status", "string", "ok | no_face | error"),
    Column("error", "string", "what went wrong when status is error, else empty"),
    Column("image_width", "Int64", "image width in pixels, after EXIF rotation"),
    Column("image_height", "Int64", "image height in pixels, after EXIF rotation"),
    Column("x", "float32", "face box left edge, pixels (image x to the right)"),
    Column("y", "float32", "face box top edge, pixels (image y downwards)"),
    Column("w", "float32", "face box width, pixels"),
    Column("h", "float32", "face box height, pixels"),
    Column("score", "float32", "face detector confidence, 0..1"),
    Column("presence", "float32", "landmark model's face-presence probability, 0..1"),
    Column("yaw", "float32", "head yaw, degrees; > 0 turned towards the image's right (subject's left)"),
    Column("pitch", "float32", "head pitch, degrees; > 0 chin up"),
    Column("roll", "float32", "head roll, degrees; > 0 counterclockwise in the image"),
    Column("iod_px", "float32", "distance between the eye centres, pixels (face size)"),
    Column("sharpness", "float32", "Laplacian contrast of the face at a fixed scale; low is blurry"),
    Column("brightness", "float32", "mean grey level of the face centre, 0..1"),
    Column("clipped", "float32", "share of face-centre pixels that are black or white clipped"),
    Column("reliable", "boolean", "all quality checks passed (see docs/quality.md)"),
    Column("quality_reasons", "string", "failed quality checks, ';'-separated; empty when reliable"),
    Column("iris_left_x", "float32", "iris centre of the eye on the image's left, pixels"),
    Column("iris_left_y", "float32", "iris centre of the eye on the image's left, pixels"),
    Column("iris_right_x", "float32", "iris centre of the eye on the image's right, pixels"),
    Column("iris_right_y", "float32", "iris centre of the eye on the image's right, pixels"),
    Column("gaze_yaw", "float32", "estimated gaze direction, degrees, head yaw plus eye-in-head yaw (same signs); an estimate, see docs"),
    Column("gaze_pitch", "float32", "estimated gaze direction, degrees, head pitch plus eye-in-head pitch; > 0 up"),
)
COLUMNS = COLUMNS + tuple(Column(name, dtype, meaning) for name, dtype, meaning in actions.column_table())
COLUMNS = COLUMNS + tuple(
    Column(f"perceived_{c}", "float32", f"share of observers expected to call the face '{c}' (calibrated crowd-label "
           "model, see docs/perceived.md); not what the person feels") for c in perceived.CLASSES) + (
    Column("perceived_top", "string", "most likely crowd label, or 'uncertain' when its share is below the abstention "
           "threshold or the face is not reliable"),
    Column("perceived_top_p", "float32", "share of observers expected to choose the top label"),
    Column("perceived_entropy", "float32", "spread of the expected crowd labels, nats (0 = all agree, 2.08 = uniform)"),
)
LANDMARK_COUNT = 468


def landmark_columns() -> list[str]:
    return [f"lm{i:03d}_{axis}" for i in range(LANDMARK_COUNT) for axis in "xyz"]


@dataclass(frozen=True)
class FaceResult:
    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    presence: float
    yaw: float
    pitch: float
    roll: float
    iod_px: float
    sharpness: float
    brightness: float
    clipped: float
    reliable: bool
    quality_reasons: str
    iris: np.ndarray | None = field(default=None, repr=False)  # (2, 2) pixels
    gaze: np.ndarray | None = field(default=None, repr=False)  # (2,) yaw, pitch degrees
    landmarks: np.ndarray = field(default=None, repr=False)  # (468, 3) pixels, image frame
    extra: dict = field(default_factory=dict)  # columns added by later layers


@dataclass(frozen=True)
class ImageResult:
    source: str
    frame: int = 0
    status: str = "ok"
    error: str = ""
    width: int | None = None
    height: int | None = None
    faces: tuple[FaceResult, ...] = ()
    time_s: float | None = None  # video frames only

    @staticmethod
    def failed(source: str, message: str, frame: int = 0, time_s: float | None = None) -> "ImageResult":
        return ImageResult(source=source, frame=frame, status="error", error=message, time_s=time_s)


def _face_values(face: FaceResult) -> dict:
    x, y, w, h = face.box
    values = dict(x=x, y=y, w=w, h=h, score=face.score, presence=face.presence, yaw=face.yaw, pitch=face.pitch,
                  roll=face.roll, iod_px=face.iod_px, sharpness=face.sharpness, brightness=face.brightness,
                  clipped=face.clipped, reliable=face.reliable, quality_reasons=face.quality_reasons)
    if face.iris is not None:
        values.update(iris_left_x=face.iris[0, 0], iris_left_y=face.iris[0, 1],
                      iris_right_x=face.iris[1, 0], iris_right_y=face.iris[1, 1])
    if face.gaze is not None:
        values.update(gaze_yaw=face.gaze[0], gaze_pitch=face.gaze[1])
    values.update(face.extra)
    return values


def to_frame(results, landmarks: bool = False) -> pd.DataFrame:
    """One row per face (or per faceless image), columns in schema order."""
    rows, lm_rows = [], []
    for r in results:
        base = dict(source=r.source, frame=r.frame, status=r.status, error=r.error, image_width=r.width,
                    image_height=r.height, time_s=r.time_s)
        if not r.faces:
            rows.append(base)
            lm_rows.append(None)
        for i, face in enumerate(r.faces):
            rows.append({**base, "face": i, **_face_values(face)})
            lm_rows.append(face.landmarks)
    frame = pd.DataFrame(rows)
    names = [c.name for c in COLUMNS]
    extra = [c for c in frame.columns if c not in set(names)]
    frame = frame.reindex(columns=names + extra).astype({c.name: c.dtype for c in COLUMNS})
    if landmarks:
        flat = np.full((len(lm_rows), LANDMARK_COUNT * 3), np.nan, np.float32)
        for i, lm in enumerate(lm_rows):
            if lm is not None:
                flat[i] = lm.reshape(-1)
        frame = pd.concat([frame, pd.DataFrame(flat, columns=landmark_columns(), index=frame.index)], axis=1)
    return frame


FORMATS = (".csv", ".parquet", ".json")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (ending in the same suffix, for writers that go by
    it); it replaces ``path`` only if the block succeeds, so a crash never leaves a half-written
    output. The result gets the usual permissions (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()  # read once, at import: setting it is process-wide, not thread-safe


def check_output_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"output {path} must end in one of {', '.join(FORMATS)}")
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write by suffix (.csv, .parquet, .json), atomically."""
    return write_tables([frame], path)


def write_tables(frames: Iterable[pd.DataFrame], path: str | Path) -> Path:
    """Write frames with one set of columns (e.g. the parts of a long run, each from ``to_frame``)
    as one table by suffix, atomically, holding one frame in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = check_output_path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        if suffix == ".json":
            out = stack.enter_context(open(tmp, "w", encoding="utf-8"))
            head = json.dumps({"columns": schema_dict(), "rows": []}, ensure_ascii=False, indent=1)
            out.write(head[: head.rindex("[") + 1])  # the rows' records follow, one a line
        writer, separator, i = None, "\n", -1
        for i, frame in enumerate(frames):
            if suffix == ".parquet":
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or stack.enter_context(pq.ParquetWriter(tmp, table.schema))
                writer.write_table(table)
            elif suffix == ".csv":
                frame.to_csv(tmp, mode="a" if i else "w", header=i == 0, index=False)
            else:
                for record in json.loads(frame.to_json(orient="records", force_ascii=False)):
                    out.write(separator + json.dumps(record, ensure_ascii=False))
                    separator = ",\n"
        if i < 0:
            raise ValueError("write_tables needs at least one frame")
        if suffix == ".json":
            out.write("\n]\n}\n")
    return path


def schema_markdown() -> str:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.dtype} | {c.meaning} |" for c in COLUMNS]
    lines.append("| `lm000_x` … `lm467_z` | float32 | the 468 landmarks in pixels (x right, y down, z depth in pixel scale, "
                 "smaller is nearer); only with `--landmarks` |")
    return "\n".join(lines) + "\n"


def schema_dict() -> dict[str, str]:
    return {c.name: c.meaning for c in COLUMNS}
