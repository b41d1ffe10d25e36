"""Pictures for people to look at: annotated stills (faces on an upscaled canvas with a legend
panel beside them, one picture per image), per-face charts of action units, and annotated videos.

The drawing takes the image and the face table's rows (plus, optionally, the landmarks), not the
pipeline's internals, so it draws any table mien wrote.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import actions
from .actions_plot import draw_units, intensity_chart, unit_colour
from .geometry import canonical_face
from .faces import Faces
from .io import atomic_path

RELIABLE = (40, 170, 70)
UNRELIABLE = (230, 120, 0)
INK, MUTED = (25, 25, 25), (95, 95, 95)
# The canvas's long side: small images (48 px crops) are drawn larger, so that the marks and
# their labels are smaller than the face; huge ones smaller, so that the picture stays light.
MIN_SIDE, MAX_SIDE = 480, 1600
PANEL_W = 380  # at a canvas of PANEL_BASE px; the panel and its text grow with larger canvases
PANEL_BASE = 900
JPEG_QUALITY = 90
FONT = cv2.FONT_HERSHEY_SIMPLEX
# Outlines drawn instead of the whole mesh: each eye's lids and corners, and the outer lips
# (the subject's right side; the left is its mirror image in the canonical face).
_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
_UPPER_LIP = (61, 185, 40, 39, 37, 0)  # corner to the middle
_LOWER_LIP = (146, 91, 181, 84, 17)


@dataclass(frozen=True)
class FaceMarks:
    """What is drawn of one face: read from its table row (and its landmarks, when kept)."""

    box: tuple[float, float, float, float]  # x, y, w, h in image pixels
    reliable: bool
    reasons: str
    yaw: float
    pitch: float
    roll: float
    intensity: np.ndarray  # (K,) action-unit intensities, in ``actions.action_units()`` order
    present: np.ndarray  # (K,) bool
    perceived: str  # top crowd label, "uncertain", or "" when not measured
    perceived_p: float
    landmarks: np.ndarray | None = None  # (468, 3) image pixels
    iris: np.ndarray | None = None  # (2, 2) image pixels


def is_true(value) -> bool:
    """Whether a table cell is set and true: None, ``pd.NA`` and NaN count as false."""
    return value is not None and value is not pd.NA and not (isinstance(value, float) and np.isnan(value)) and bool(value)


def face_marks(rows: pd.DataFrame, landmarks: np.ndarray | None = None) -> list[FaceMarks]:
    """One ``FaceMarks`` per face row of an image (rows without a face are skipped);
    ``landmarks``: (N, 468, 3) for those faces, in the same order, or None."""
    faces = rows[rows["face"].notna()] if "face" in rows else rows.iloc[:0]
    columns = [u.column for u in actions.action_units()]
    marks = []
    for i, (_, row) in enumerate(faces.iterrows()):
        intensity = np.array([row.get(c, np.nan) for c in columns], float)
        present = np.array([is_true(row.get(f"{c}_present")) for c in columns], bool)
        iris = None
        if all(k in row and pd.notna(row[k]) for k in ("iris_left_x", "iris_left_y", "iris_right_x", "iris_right_y")):
            iris = np.array([[row["iris_left_x"], row["iris_left_y"]], [row["iris_right_x"], row["iris_right_y"]]], float)
        top = row.get("perceived_top")
        marks.append(FaceMarks(
            box=tuple(float(row[k]) for k in ("x", "y", "w", "h")), reliable=is_true(row.get("reliable")),
            reasons=str(row.get("quality_reasons") or "") if pd.notna(row.get("quality_reasons")) else "",
            yaw=float(row["yaw"]), pitch=float(row["pitch"]), roll=float(row["roll"]),
            intensity=intensity, present=present, perceived=top if isinstance(top, str) else "",
            perceived_p=float(row.get("perceived_top_p", np.nan)),
            landmarks=None if landmarks is None else np.asarray(landmarks[i], float), iris=iris))
    return marks


@functools.cache
def validated_units() -> np.ndarray:
    """(K,) bool, read-only: the units pictures mark when present (not experimental; see actions.validated_columns)."""
    validated = set(actions.validated_columns())
    marked = np.array([u.column in validated for u in actions.action_units()])
    marked.flags.writeable = False
    return marked


def canvas_scale(height: int, width: int) -> float:
    """Factor from image pixels to canvas pixels (see MIN_SIDE, MAX_SIDE)."""
    side = max(height, width)
    return min(max(1.0, MIN_SIDE / side), max(MAX_SIDE / side, 1e-6)) if side else 1.0


@functools.cache
def outlines() -> tuple[tuple[int, ...], ...]:
    """Landmark loops of the face's outline (the mesh's open boundary) and of the eyes and lips."""
    face = canonical_face()
    tri = face.triangles
    edges, counts = np.unique(np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), axis=1),
                              axis=0, return_counts=True)
    border = edges[counts == 1]
    neighbours: dict[int, list[int]] = {}
    for a, b in border:
        neighbours.setdefault(int(a), []).append(int(b))
        neighbours.setdefault(int(b), []).append(int(a))
    loop = [int(border[0, 0])]
    while len(loop) < len(neighbours):
        loop.append(next(n for n in neighbours[loop[-1]] if n not in loop[-2:]))
    mirror = face.mirror
    lips = (_UPPER_LIP + tuple(int(mirror[i]) for i in reversed(_UPPER_LIP[:-1]))
            + tuple(int(mirror[i]) for i in _LOWER_LIP[:-1]) + tuple(reversed(_LOWER_LIP)))
    return tuple(loop), _EYE, tuple(int(mirror[i]) for i in _EYE), lips


def _text(img: np.ndarray, text: str, origin, colour, scale: float = 0.5, bold: bool = False) -> None:
    weight = max(1, round(scale * 2.2)) + (1 if bold else 0)
    cv2.putText(img, text, (int(origin[0]), int(origin[1])), FONT, scale, colour, weight, cv2.LINE_AA)


def _face_lines(face: FaceMarks, index: int) -> list[tuple[str, tuple[int, int, int], bool]]:
    """The legend's lines for one face: (text, colour, bold)."""
    colour = RELIABLE if face.reliable else UNRELIABLE
    head = f"face #{index}: " + ("reliable" if face.reliable else "UNRELIABLE")
    lines = [(head, colour, True)]
    if not face.reliable:
        lines.append((f"  failed: {face.reasons.replace(';', ', ') or 'quality checks'}", UNRELIABLE, False))
        lines.append(("  its numbers may be wrong", UNRELIABLE, False))
    lines.append((f"  yaw {face.yaw:+.0f}  pitch {face.pitch:+.0f}  roll {face.roll:+.0f} deg", INK, False))
    present = [u for u, p, ok in zip(actions.action_units(), face.present, validated_units()) if p and ok]
    if present:
        lines.append(("  units present (outlined on the face):", INK, False))
        for number in dict.fromkeys(u.number for u in present):
            sides = "".join(u.side.upper() for u in present if u.number == number)
            name = next(u.name for u in present if u.number == number).replace("_", " ")
            lines.append((f"  \u25a0 AU{number} {name}{f' ({sides})' if sides else ''}", unit_colour(number), False))
    else:
        lines.append(("  no action unit present", MUTED, False))
    if face.perceived:
        seen = (f"{face.perceived} ({face.perceived_p:.0%} of observers)" if face.perceived != "uncertain"
                else "uncertain (no label)")
        lines.append((f"  perceived: {seen}", INK, False))
    return lines


def _legend(height: int, faces: list[FaceMarks], title: str) -> np.ndarray:
    k = max(1.0, height / PANEL_BASE)
    line_h, font = round(20 * k), 0.45 * k
    lines = [(title, INK, True), ("green: reliable  orange: unreliable", MUTED, False), ("", INK, False)]
    for i, face in enumerate(faces):
        lines += _face_lines(face, i) + [("", INK, False)]
    if not faces:
        lines.append(("no face found", MUTED, False))
    panel = np.full((max(height, round(12 * k) + line_h * len(lines)), round(PANEL_W * k), 3), 255, np.uint8)
    for n, (text, colour, bold) in enumerate(lines):
        y = round(12 * k) + line_h * n
        if text.startswith("  \u25a0"):  # a swatch in the unit's colour, then its name
            cv2.rectangle(panel, (round(16 * k), y + round(4 * k)), (round(28 * k), y + round(15 * k)), colour, -1)
            _text(panel, text[4:], (round(34 * k), y + round(14 * k)), INK, font)
            continue
        _text(panel, text, (round(8 * k), y + round(14 * k)), colour, font, bold)
    return panel


def still_picture(rgb: np.ndarray, faces: list[FaceMarks], title: str = "") -> np.ndarray:
    """The image on a canvas scaled for reading (see ``canvas_scale``), each face marked by a box,
    a thin outline of face, eyes and lips, the action units present and the iris centres, and a
    legend panel on the right that says, per face, whether it is reliable (and why not), its pose,
    its units and how observers would label it."""
    h, w = rgb.shape[:2]
    s = canvas_scale(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    canvas = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
    for i, face in enumerate(faces):
        colour = RELIABLE if face.reliable else UNRELIABLE
        if face.landmarks is not None:
            mesh = face.landmarks * np.array([s, s, s])
            for loop in outlines():
                points = np.round(mesh[list(loop), :2] * 16).astype(np.int32)
                cv2.polylines(canvas, [points], True, (235, 235, 235), 1, cv2.LINE_AA, shift=4)
            shown = np.where(validated_units(), face.intensity, np.nan)
            canvas = draw_units(canvas, mesh, actions.action_units(), shown, labels=False)
        x, y, bw, bh = (v * s for v in face.box)
        cv2.rectangle(canvas, (round(x), round(y)), (round(x + bw), round(y + bh)), colour, 2 if face.reliable else 1, cv2.LINE_AA)
        tag = f"#{i}" + ("" if face.reliable else " unreliable")
        font = 0.5 * max(1.0, max(canvas.shape[:2]) / PANEL_BASE)
        (tw, th), _ = cv2.getTextSize(tag, FONT, font, 1)
        ty = round(y) - 4 if y > th + 6 else round(y + bh) + th + 4
        ty = min(max(ty, th + 3), canvas.shape[0] - 4)  # a box past the image's edge keeps its tag inside
        tx = min(max(round(x), 0), canvas.shape[1] - tw - 4)
        cv2.rectangle(canvas, (tx, ty - th - 3), (tx + tw + 4, ty + 3), colour, -1)
        _text(canvas, tag, (tx + 2, ty), (255, 255, 255), font)
        if face.iris is not None:
            for c in face.iris * s:
                cv2.circle(canvas, tuple(np.round(c).astype(int)), 2, (255, 230, 0), -1, cv2.LINE_AA)
    panel = _legend(canvas.shape[0], faces, title)
    if panel.shape[0] > canvas.shape[0]:
        canvas = np.vstack([canvas, np.full((panel.shape[0] - canvas.shape[0], canvas.shape[1], 3), 255, np.uint8)])
    return np.hstack([canvas, np.full((canvas.shape[0], 2, 3), 200, np.uint8), panel])


def face_chart(face: FaceMarks, source: str, index: int) -> np.ndarray:
    """The bar chart of one face's action-unit intensities, titled with the file and face, and
    a warning when the face is unreliable."""
    warning = "" if face.reliable else f"UNRELIABLE face ({face.reasons.replace(';', ', ')}): intensities may be wrong"
    return intensity_chart(actions.action_units(), face.intensity, face.present,
                           title=(f"action units of face #{index}", f"file: {source}"), warning=warning)


def write_image(path, rgb: np.ndarray) -> None:
    """PNG or JPEG by suffix, atomically."""
    png = str(path).lower().endswith(".png")
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png" if png else ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                [] if png else [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError(f"could not encode {path}")
        tmp.write_bytes(data.tobytes())


def write_annotations(folder, stem: str, rgb: np.ndarray, rows: pd.DataFrame, landmarks: np.ndarray | None = None,
                      source: str = "", charts: bool = False) -> list[Path]:
    """``<stem>_annotated.jpg`` (see ``still_picture``) and, with ``charts``, per face
    ``<stem>_face<i>_action_units.png`` (see ``face_chart``). ``rows``: this image's rows of the
    face table. Returns the paths written."""
    folder = Path(folder)
    faces = face_marks(rows, landmarks)
    written = [folder / f"{stem}_annotated.jpg"]
    write_image(written[0], still_picture(rgb, faces, Path(source).name or stem))
    if charts:
        for i, face in enumerate(faces):
            written.append(folder / f"{stem}_face{i}_action_units.png")
            write_image(written[-1], face_chart(face, source or stem, i))
    return written


def video_labels(faces: Faces) -> list[str]:
    """Per face: track id, action units present (those not marked experimental) and the perceived label."""
    columns = actions.columns()
    validated = np.flatnonzero(validated_units())
    labels = []
    for i in range(len(faces)):
        label = f"track {int(faces.track_ids[i])}" if faces.track_ids is not None else f"face {i}"
        if faces.actions is not None:
            present = [columns[k].split("_")[0].upper() for k in validated if faces.actions.present[i, k]]
            if present:
                label += " " + " ".join(dict.fromkeys(present))
        if faces.perceived is not None:
            label += f" | seen as {faces.perceived.top[i]}"
        labels.append(label)
    return labels


def pixel_boxes(faces: Faces) -> np.ndarray:
    """(N, 4) int x, y, w, h: the boxes as the table stores them (float32), to whole pixels."""
    b = faces.boxes.astype(np.float64)
    return np.column_stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]).astype(np.float32).astype(int)


def draw_video_faces(rgb: np.ndarray, faces: Faces) -> np.ndarray:
    """A copy of the frame with each face's box (green: reliable, orange: not) and its label (``video_labels``)."""
    picture = rgb.copy()
    boxes = pixel_boxes(faces)
    reliable = faces.quality.reliable if faces.quality is not None else np.zeros(len(faces), bool)
    for (x, y, w, h), ok, label in zip(boxes.tolist(), reliable.tolist(), video_labels(faces)):
        colour = RELIABLE if ok else UNRELIABLE
        cv2.rectangle(picture, (x, y), (x + w, y + h), colour, 2, cv2.LINE_AA)
        cv2.putText(picture, label, (x, max(14, y - 6)), FONT, 0.5, colour, 1, cv2.LINE_AA)
    return picture


# Encoders whose output browsers play, best first, with the container for each (PyAV's FFmpeg).
BROWSER_CODECS = (("libx264", ".mp4"), ("libopenh264", ".mp4"), ("libvpx-vp9", ".webm"))
FALLBACK_CODEC = ("mpeg4", ".mp4")  # MPEG-4 Part 2, built into every FFmpeg: players such as VLC read it, browsers do not
MAX_VIDEO_WIDTH = 1280  # wider videos are scaled down: the annotated copy is for looking, not measuring


def browser_codec(available: set[str] | None = None) -> tuple[str, str] | None:
    """(encoder, suffix) of the first of BROWSER_CODECS that PyAV can use, or None."""
    if available is None:
        import av

        available = set(av.codecs_available)
    return next(((codec, suffix) for codec, suffix in BROWSER_CODECS if codec in available), None)


def _encoder_options(codec: str) -> dict[str, str]:
    # No B-frames, so that decoding order is showing order and segments join end to end (see join_videos).
    if codec == "libx264":
        return {"crf": "28", "preset": "veryfast", "bf": "0"}
    if codec == "libvpx-vp9":
        return {"crf": "36", "b": "0", "deadline": "realtime", "cpu-used": "8"}
    return {"bf": "0"}


def video_path(stem: Path | str, codec: tuple[str, str] | None) -> Path:
    """Where a video of ``codec`` (None: MPEG-4 Part 2) named ``stem`` is written: the stem plus the container's suffix."""
    return Path(f"{stem}{(codec or FALLBACK_CODEC)[1]}")


def clock_pts(last_pts: int, time_s: float, origin: float) -> int:
    """The timestamp (ms) of a frame shown at ``time_s`` seconds of the source, written after one
    at ``last_pts``, in a file whose clock counts from ``origin``: the source's clock, and always rising."""
    return max(last_pts + 1, round((time_s - origin) * 1000))


class VideoSink:
    """Frames (RGB, with their timestamps) into a video file that browsers play where the
    installed encoders allow: H.264 in MP4, else VP9 in WebM, else (``playable`` False) MPEG-4
    Part 2, which players such as VLC read but browsers do not. Written atomically at ``stem`` plus
    the container's suffix (``path``)."""

    def __init__(self, stem: Path, width: int, height: int, fps: float, codec: tuple[str, str] | None | str = "auto",
                 origin: float | None = None, segment: bool = False, first_pts: int = 0):
        """``codec``: (encoder, suffix), None for MPEG-4 Part 2, or "auto" (``browser_codec()``).
        ``origin``: the source time (seconds) the file's clock counts from (None: its first frame).
        ``segment``: a piece to be joined with others by ``join_videos`` (not laid out for streaming).
        ``first_pts``: the least timestamp (ms) of its first frame, after the previous segment's last."""
        import av

        self.codec = browser_codec() if codec == "auto" else codec
        self.playable = self.codec is not None
        encoder, suffix = self.codec or FALLBACK_CODEC
        self.path = video_path(stem, self.codec)
        scale = min(1.0, MAX_VIDEO_WIDTH / max(width, 1))
        # 4:2:0 video needs even sides
        self.size = (2 * max(1, round(width * scale / 2)), 2 * max(1, round(height * scale / 2)))
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self.origin = origin
        self._last_pts = first_pts - 1
        faststart = suffix == ".mp4" and not segment
        self._container = av.open(str(tmp), "w", format=suffix[1:], options={"movflags": "+faststart"} if faststart else {})
        self._stream = self._container.add_stream(encoder, rate=max(1, round(fps)), options=_encoder_options(encoder))
        self._stream.width, self._stream.height = self.size
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = Fraction(1, 1000)

    @property
    def next_pts(self) -> int:
        """The least timestamp (ms) a frame written after this file's last may have."""
        return self._last_pts + 1

    @property
    def first_time(self) -> float | None:
        """The source time (seconds) of the file's clock zero, once a frame is written (or given)."""
        return self.origin

    def write(self, rgb: np.ndarray, time_s: float) -> None:
        """Add one RGB frame (H, W, 3) uint8, shown at ``time_s`` seconds of the source; it is resized to the
        sink's size where it differs."""
        import av

        if rgb.shape[1::-1] != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        if self.origin is None:
            self.origin = time_s
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        # the container's clock is the source's (from ``origin``), so a report can find a frame's
        # time from the player's
        self._last_pts = clock_pts(self._last_pts, time_s, self.origin)
        frame.pts, frame.time_base = self._last_pts, Fraction(1, 1000)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self, ok: bool = True) -> None:
        """Finish the file: with ``ok`` True it is moved into place at ``path``; with ``ok`` False
        (the run failed) the partial file is discarded and nothing appears at ``path``."""
        try:
            if ok:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        finally:
            self._atomic.__exit__(None if ok else RuntimeError, None, None)


def join_videos(parts: list[Path], out: Path) -> None:
    """Join video files written by ``VideoSink`` (one encoding, clocks from one origin, in order)
    into ``out``, atomically, copying their packets without encoding again."""
    import av

    mp4 = out.suffix == ".mp4"
    with atomic_path(out) as tmp, av.open(str(parts[0])) as first:
        with av.open(str(tmp), "w", format=out.suffix[1:], options={"movflags": "+faststart"} if mp4 else {}) as joined:
            stream = joined.add_stream_from_template(first.streams.video[0])
            last_dts = None
            for part in parts:
                with av.open(str(part)) as source:
                    for packet in source.demux(source.streams.video[0]):
                        if packet.dts is None:  # the demuxer's end-of-stream marker
                            continue
                        if last_dts is not None and packet.dts * packet.time_base <= last_dts:
                            raise ValueError(f"{part}: its frames do not come after the previous segment's")
                        last_dts = packet.dts * packet.time_base
                        packet.stream = stream
                        joined.mux(packet)


def face_thumbnail(rgb: np.ndarray, box, size: int = 96, margin: float = 0.15) -> bytes:
    """A square JPEG of the face in ``box`` (x, y, w, h), with a margin, padded where it leaves the image."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(1, int(round(side)))
    pad = max(0, -x0, -y0, x0 + n - rgb.shape[1], y0 + n - rgb.shape[0])
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(255, 255, 255)) if pad else rgb
    crop = padded[y0 + pad : y0 + pad + n, x0 + pad : x0 + pad + n]
    small = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if n > size else cv2.INTER_CUBIC)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise OSError("could not encode a face thumbnail")
    return data.tobytes()
