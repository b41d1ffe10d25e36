"""Video decoding: frames as RGB arrays with their true timestamps, upright.

Containers and codecs are whatever OpenCV's FFmpeg build reads (mp4, mov, mkv, avi, webm, …);
a folder of images is read as an image sequence. Rotation metadata (phone videos) is applied,
so frames come out the way a player shows them. Timestamps come from the container (variable
frame rate is kept), not from frame index / nominal fps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import MienError
from ..images import IMAGE_SUFFIXES, ImageReadError, read_image

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}


class VideoReadError(MienError, ValueError):
    """A video that cannot be opened at all; the message says why."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in the stream, its container time, RGB pixels (None when it could
    not be decoded, with ``error`` saying why)."""

    index: int  # position in the stream, counting every decoded frame
    time_s: float
    rgb: np.ndarray | None  # None when the frame could not be decoded
    error: str = ""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (see ``probe``)."""

    path: str
    width: int  # after rotation
    height: int
    fps: float  # nominal, from the container
    frame_count: int  # container's estimate; may be off for variable frame rate
    rotation: int  # degrees the stored frames are turned to display upright


def _open(path: Path) -> cv2.VideoCapture:
    if not path.exists():
        raise VideoReadError("file not found")
    if path.stat().st_size == 0:
        raise VideoReadError("empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoReadError("cannot open as a video (not a video file, or a codec OpenCV cannot decode)")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def probe(path: str | Path, sequence_fps: float = 30.0) -> VideoInfo:
    """Size, rate, length and rotation of a video; a folder of images is a sequence at ``sequence_fps``."""
    path = Path(path)
    if path.is_dir():
        files = sequence_files(path)
        for file in files:
            try:
                first = read_image(file)
            except ImageReadError:
                continue  # reported as that frame's error when the sequence is read
            return VideoInfo(str(path), first.shape[1], first.shape[0], sequence_fps, len(files), 0)
        raise VideoReadError(f"none of the {len(files)} images in folder {path} can be read")
    cap = _open(path)
    try:
        return VideoInfo(str(path), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                         float(cap.get(cv2.CAP_PROP_FPS)), int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
                         int(cap.get(cv2.CAP_PROP_ORIENTATION_META)))
    finally:
        cap.release()


def _natural_key(path: Path) -> list:
    """frame_2.png before frame_10.png: digit runs compare as numbers."""
    parts = [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name)]
    return parts + [(2, 0, path.name)]  # 1.png and 01.png: a fixed order, not the directory's


def sequence_files(folder: Path) -> list[Path]:
    """The image files of a folder read as a video, in frame order."""
    files = sorted((f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if not files:
        raise VideoReadError(f"folder {folder} holds no image files to read as a sequence")
    return files


def frames(path: str | Path, stride: int = 1, target_fps: float | None = None, start_s: float = 0.0,
           end_s: float | None = None, sequence_fps: float = 30.0, after_index: int = -1) -> Iterator[Frame]:
    """Yield frames in order. ``stride`` keeps every n-th frame; ``target_fps`` instead keeps the
    first frame of each 1/target_fps interval (by timestamp); ``start_s``/``end_s`` bound the time.
    Frames up to ``after_index`` are skipped without being converted (for resuming).
    Image sequences get timestamps index / sequence_fps. A frame that failed (``rgb`` None, with
    ``error``) within the time range is always yielded, whatever the stride or rate, so that
    every failure is reported."""
    if stride < 1:
        raise ValueError("stride must be at least 1")
    if target_fps is not None and target_fps <= 0:
        raise ValueError("target_fps must be positive")
    path = Path(path)
    next_time = start_s
    source = _sequence_frames(path, sequence_fps, after_index) if path.is_dir() else _stream_frames(path, after_index, start_s)
    for frame in source:
        if frame.time_s < start_s - 1e-9:
            continue
        if end_s is not None and frame.time_s > end_s + 1e-9:
            return
        # Selection depends on index and timestamp only, failed or not, so a resumed run (which
        # sees the frames before the resume point as "skipped") selects the same frames.
        if target_fps is not None:
            selected = frame.time_s + 1e-9 >= next_time
            if selected:
                next_time += 1.0 / target_fps * max(1, int((frame.time_s - next_time) * target_fps) + 1)
        else:
            selected = frame.index % stride == 0
        if frame.index > after_index and (selected or frame.rgb is None):
            yield frame


def _stream_frames(path: Path, after_index: int = -1, start_s: float = 0.0) -> Iterator[Frame]:
    cap = _open(path)
    try:
        index = 0
        last_time = -1.0
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        listed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        while True:
            if not cap.grab():
                message = _truncation(path, index, last_time, listed, fps)
                if message:
                    yield Frame(index, max(last_time + 1.0 / fps, start_s), None, message)
                return
            time_s = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if time_s <= last_time:  # some containers report no timestamp for a frame
                time_s = last_time + 1.0 / fps
            last_time = time_s
            if index <= after_index:
                yield Frame(index, time_s, None, "skipped")
                index += 1
                continue
            ok, bgr = cap.retrieve()
            if ok and bgr is not None:
                yield Frame(index, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            else:
                yield Frame(index, time_s, None, "frame could not be decoded")
            index += 1
    finally:
        cap.release()


# Containers whose frame count is stored (a sample table or index), not estimated from duration x fps
COUNTED_CONTAINERS = {".mp4", ".mov", ".m4v", ".avi"}


def _truncation(path: Path, decoded: int, last_time: float, listed: int, fps: float) -> str:
    """Why a stream that ended after ``decoded`` frames looks cut short, or "" if it does not."""
    if listed <= 0:
        return ""
    if path.suffix.lower() in COUNTED_CONTAINERS:
        if listed - decoded <= max(2, 0.02 * listed):
            return ""
        told = f"{decoded} of the {listed} frames the container lists"
    else:  # the count is duration x a guessed rate: compare durations, with room for a longer audio track
        duration, reached = listed / fps, max(last_time, 0.0) + 1.0 / fps
        if duration - reached <= max(1.0, 0.05 * duration):
            return ""
        told = f"{reached:.1f} s of the {duration:.1f} s the container gives"
    return f"decoding stopped after {told}: the file is truncated or damaged (the frames before were analysed)"


def _sequence_frames(folder: Path, fps: float, after_index: int = -1) -> Iterator[Frame]:
    for index, file in enumerate(sequence_files(folder)):
        if index <= after_index:
            yield Frame(index, index / fps, None, "skipped")
            continue
        try:
            yield Frame(index, index / fps, read_image(file))
        except ImageReadError as exc:
            yield Frame(index, index / fps, None, f"{file.name}: {exc}")


