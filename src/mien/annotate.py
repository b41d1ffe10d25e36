"""Pictures for people to look at: boxes, mesh, head-pose axes and iris centres."""
from __future__ import annotations

import functools

import cv2
import numpy as np
import pandas as pd

from . import actions
from .geometry import canonical_face, rotation_from_euler
from .faces import Faces
from .io import atomic_path

RELIABLE = (40, 200, 80)
UNRELIABLE = (235, 150, 30)


@functools.cache
def mesh_edges() -> np.ndarray:
    tri = canonical_face().triangles
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
    return np.unique(np.sort(edges, axis=1), axis=0)


def draw(rgb: np.ndarray, faces: Faces) -> np.ndarray:
    """Copy of the RGB image with each face drawn: green when reliable, orange otherwise."""
    out = rgb.copy()
    thick = max(1, round(max(rgb.shape[:2]) / 500))
    for i in range(len(faces)):
        reliable, landmarks = bool(faces.quality.reliable[i]), faces.landmarks[i]
        yaw, pitch, roll = (float(a[i]) for a in (faces.pose.yaw, faces.pose.pitch, faces.pose.roll))
        colour = RELIABLE if reliable else UNRELIABLE
        pts = np.round(landmarks[:, :2] * 16).astype(np.int32)
        cv2.polylines(out, list(pts[mesh_edges()]), False, (200, 200, 200), 1, cv2.LINE_AA, shift=4)
        x0, y0, x1, y1 = (float(v) for v in faces.boxes[i])
        cv2.rectangle(out, (int(x0), int(y0)), (int(x1), int(y1)), colour, thick, cv2.LINE_AA)
        label = f"#{i} yaw {yaw:+.0f} pitch {pitch:+.0f} roll {roll:+.0f}"
        if not reliable:
            label += f" [{faces.quality.reasons[i]}]"
        w = x1 - x0
        scale = max(0.35, w / 250)
        cv2.putText(out, label, (int(x0), max(12, int(y0) - 4)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)
        origin = landmarks[1, :2]
        axes = rotation_from_euler(yaw, pitch, roll) * (0.6 * w)
        for k, axis_colour in enumerate(((230, 40, 40), (40, 200, 40), (40, 80, 230))):
            tip = origin + axes[:2, k] * np.array([1, -1])
            cv2.arrowedLine(out, tuple(np.round(origin).astype(int)), tuple(np.round(tip).astype(int)), axis_colour, thick + 1, cv2.LINE_AA, tipLength=0.15)
        if faces.iris is not None:
            for c in faces.iris[i]:
                cv2.circle(out, tuple(np.round(c).astype(int)), max(2, thick + 1), (255, 255, 0), -1, cv2.LINE_AA)
    return out


def write_image(path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png" if str(path).lower().endswith(".png") else ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"could not encode {path}")
        tmp.write_bytes(data.tobytes())


def write_annotations(folder, stem: str, rgb: np.ndarray, faces: Faces) -> None:
    """``<stem>_annotated.png`` (faces, mesh, pose, action units present) and, per face,
    ``<stem>_face<i>_action_units.png`` (bar chart of intensities)."""
    from pathlib import Path

    from .actions_plot import bar_chart, draw_action_units

    folder = Path(folder)
    picture = draw(rgb, faces)
    if faces.actions is not None:
        for i in range(len(faces)):
            picture = draw_action_units(picture, faces.landmarks[i], faces.actions, i)
            write_image(folder / f"{stem}_face{i}_action_units.png", bar_chart(faces.actions, i))
    write_image(folder / f"{stem}_annotated.png", picture)


def _true(value) -> bool:
    return value is not None and value is not pd.NA and bool(value)


def _video_label(row) -> str:
    """Track id, units present (those not marked experimental) and the perceived label."""
    present = [c.split("_")[0].upper() for c in actions.validated_columns() if _true(row.get(f"{c}_present"))]
    label = f"track {int(row['track'])}"
    if present:
        label += " " + " ".join(dict.fromkeys(present))
    if "perceived_top" in row and isinstance(row["perceived_top"], str):
        label += f" | seen as {row['perceived_top']}"
    return label


def write_annotated_video(video, info, table, out, options) -> None:
    """Draw each analysed frame's faces (box, track id, action units present, perceived label)
    from the final per-frame table into a new MPEG-4 video, written atomically. ``info``: the
    video's ``probe``."""
    from pathlib import Path

    from .video import frames

    out = Path(out)
    rows = table[table["track"].notna()].groupby("frame")
    fps = options.target_fps or (info.fps or 30.0) / options.stride
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (info.width, info.height))
        try:
            for frame in frames(video, options.stride, options.target_fps, options.start_s, options.end_s, options.sequence_fps):
                if frame.rgb is None:
                    continue
                picture = frame.rgb.copy()
                if frame.index in rows.groups:
                    for _, row in rows.get_group(frame.index).iterrows():
                        colour = RELIABLE if _true(row["reliable"]) else UNRELIABLE
                        x, y, w, h = (int(row[k]) for k in ("x", "y", "w", "h"))
                        cv2.rectangle(picture, (x, y), (x + w, y + h), colour, 2, cv2.LINE_AA)
                        cv2.putText(picture, _video_label(row), (x, max(14, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
                if picture.shape[:2] != (info.height, info.width):
                    picture = cv2.resize(picture, (info.width, info.height))
                writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
