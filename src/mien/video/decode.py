"""Video decoding: frames as RGB arrays with their true timestamps, upright.

Containers and codecs are whatever OpenCV's FFmpeg build reads (mp4, mov, mkv, avi, webm, …);
a folder of images is read as an image sequence. Rotation metadata (phone videos) is applied,
so frames come out the way a player shows them. Timestamps come from the container (variable
frame rate is kept), not from frame index / nominal fps.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import MienError
from ..images import IMAGE_SUFFIXES, ImageReadError, file_problem, read_image
from ..paths import utf8_encodable
from ..runtime import native_stderr_to

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".ts", ".mts", ".m2ts",
                  ".3gp", ".3g2", ".flv", ".ogv", ".vob", ".mxf", ".f4v"}


class VideoReadError(MienError, ValueError):
    """A video that cannot be opened at all; the message says why."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its ``index`` in the stream, its container time ``time_s`` (seconds), RGB
    pixels ``rgb`` (H, W, 3) uint8 (None when it could not be decoded, with ``error`` saying why)."""

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


@contextlib.contextmanager
def _capture(path: Path) -> Iterator[cv2.VideoCapture]:
    """An open OpenCV capture of ``path``, released on exit."""
    problem = file_problem(path)
    if problem:
        raise VideoReadError(problem)
    with _utf8_name(path) as name:
        # as many decoding threads as OpenCV may use: one in mien's workers (see scale.workers.use_one_thread)
        cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, cv2.getNumThreads()])
        try:
            if not cap.isOpened():
                raise VideoReadError("cannot open as a video (not a video file, or a codec OpenCV cannot decode)")
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
            yield cap
        finally:
            cap.release()


@contextlib.contextmanager
def _utf8_name(path: Path) -> Iterator[str]:
    """A name of ``path`` that OpenCV can take: OpenCV crashes on a name that is not valid UTF-8,
    so such a file is reached through a symbolic link with a plain name, for as long as it is open."""
    if utf8_encodable(path):
        yield str(path)
        return
    suffix = path.suffix if utf8_encodable(path.suffix) else ""
    with tempfile.TemporaryDirectory(prefix="mien-") as folder:
        link = Path(folder) / f"video{suffix}"
        link.symlink_to(path.resolve())
        yield str(link)


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
    with _capture(path) as cap:
        return VideoInfo(str(path), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                         float(cap.get(cv2.CAP_PROP_FPS)), int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
                         int(cap.get(cv2.CAP_PROP_ORIENTATION_META)))


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


# Frames whose memory a stream keeps for reuse: more than a batch held at once (video.analysis.BATCH_FRAMES).
REUSED_FRAMES = 32


class PixelMemory:
    """Memory for decoded frames, reused once a frame's pixels are no longer held anywhere.

    Frames analysed in batches are let go of together, and malloc hands that much memory back to
    the system, so that every page of the next batch's frames would be faulted in again: 1 ms a
    frame at 1280x720. Each array handed out owns its slot until it, and every view of it, is
    gone; up to ``most`` slots are kept, frames beyond that get memory of their own. When the
    frames' size changes, free slots of another size make room for the new one."""

    def __init__(self, most: int = REUSED_FRAMES):
        self._most = most
        self._slots: list[tuple[bytearray, weakref.ref]] = []

    def rgb(self, bgr: np.ndarray) -> np.ndarray:
        """BGR pixels (H, W, 3) as a new RGB array, in the memory of a frame let go of where there is one."""
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=self._empty(bgr.shape))

    def _empty(self, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        memory = next((m for m, held in self._slots if len(m) == size and held() is None), None)
        if memory is None:
            if len(self._slots) >= self._most:
                free = [m for m, held in self._slots if held() is None]  # all of another size
                if not free:
                    return np.empty(shape, np.uint8)
                self._slots = [(m, held) for m, held in self._slots if m is not free[0]]
            memory = bytearray(size)
        # the array's base is the bytearray, so every view of it keeps the array (not just the memory) alive
        pixels = np.ndarray(shape, np.uint8, buffer=memory)
        self._slots = [(m, held) for m, held in self._slots if m is not memory] + [(memory, weakref.ref(pixels))]
        return pixels


def _stream_frames(path: Path, after_index: int = -1, start_s: float = 0.0) -> Iterator[Frame]:
    memory = PixelMemory()
    with _capture(path) as cap, _FFmpegLog() as log:
        index = 0
        last_time = -1.0
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        listed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        told_end = ""  # FFmpeg's words when it met the end of the file before the end of the stream
        while True:
            grabbed, said = log.grab(cap)
            told_end = told_end or _first_line(said, ENDED_EARLY)
            if not grabbed:
                message = _unfinished(path, _codec(cap), index, last_time, listed, fps, told_end, said)
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
            bgr, error = log.retrieve(cap)
            if bgr is not None:
                yield Frame(index, time_s, memory.rgb(bgr))
            else:
                yield Frame(index, time_s, None, error)
            index += 1


class _FFmpegLog:
    """Grabs and retrieves frames while keeping what FFmpeg writes to the process's stderr, which
    is the only place it says why something failed.

    When FFmpeg's converter refuses a frame (it cannot turn interlaced frames into progressive
    ones, for one), OpenCV still says "ok" and hands back whatever its buffer held: blank, or
    pixels of an earlier frame; so a frame with a conversion error in the log is a failed frame.
    Warnings (a deprecated pixel format, say) leave the frame as it is. When grabbing stops, the
    log tells a codec this build cannot decode and a file that ends early from a finished stream."""

    def __enter__(self) -> "_FFmpegLog":
        self._log = tempfile.TemporaryFile()
        return self

    def __exit__(self, *exc) -> None:
        self._log.close()

    def grab(self, cap: cv2.VideoCapture) -> tuple[bool, str]:
        """Whether a frame was grabbed, and what FFmpeg said meanwhile."""
        with native_stderr_to(self._log.fileno()):
            grabbed = cap.grab()
        return grabbed, self._read()

    def retrieve(self, cap: cv2.VideoCapture) -> tuple[np.ndarray | None, str]:
        """(BGR pixels, "") or (None, why the frame could not be had)."""
        with native_stderr_to(self._log.fileno()):
            ok, bgr = cap.retrieve()
        said = self._read()
        if not ok or bgr is None:
            return None, "frame could not be decoded"
        if "interlaced" in said:
            return None, ("interlaced video, which this build of OpenCV cannot convert to pictures; deinterlace it "
                          "first, e.g. ffmpeg -i IN -vf bwdif OUT.mp4")
        refused = _first_line(said, CONVERSION_ERROR)
        if refused:
            return None, f"frame could not be converted to a picture (FFmpeg: {refused[:200]})"
        return bgr, ""

    def _read(self) -> str:
        if os.fstat(self._log.fileno()).st_size == 0:
            return ""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0)
        self._log.truncate()
        return text


CONVERSION_ERROR = re.compile(r"^\[swscaler.*(invalid argument|error|cannot)", re.IGNORECASE)  # not the decoder's own
ENDED_EARLY = re.compile(r"ended prematurely|partial file|truncat|unexpected end", re.IGNORECASE)
NO_DECODER = re.compile(r"hardware accelerated|failed to get pixel format|decoder not found|unsupported codec|"
                        r"not implemented", re.IGNORECASE)
# Containers whose frame count is stored (a sample table or index), not estimated from duration x fps
COUNTED_CONTAINERS = {".mp4", ".mov", ".m4v", ".avi"}


def _first_line(said: str, pattern: re.Pattern) -> str:
    """The first line of FFmpeg's log that matches, without its "[component @ 0x...]" prefix."""
    for line in said.splitlines():
        if pattern.search(line):
            return re.sub(r"^\[[^]]*\]\s*", "", line).strip()
    return ""


def _codec(cap: cv2.VideoCapture) -> str:
    tag = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1")
    return tag.strip() if tag.isprintable() and tag.strip() else "unknown"


def _unfinished(path: Path, codec: str, decoded: int, last_time: float, listed: int, fps: float, told_end: str,
                said: str) -> str:
    """Why a stream that stopped after ``decoded`` frames did not end as it should, or "" if it did."""
    no_decoder = _first_line(said, NO_DECODER)
    if decoded == 0 and no_decoder:
        return (f"this build of OpenCV cannot decode the video's codec ({codec}; FFmpeg: {no_decoder}); "
                "convert it first, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4")
    counted = path.suffix.lower() in COUNTED_CONTAINERS and listed > 0
    told = f"{decoded} of the {listed} frames the container lists" if counted else f"{decoded} frames"
    if told_end:
        return (f"decoding stopped after {told}: the file ends early, it is truncated or damaged "
                f"(FFmpeg: {told_end}); the frames before were analysed")
    if counted and listed - decoded > max(2, 0.02 * listed):
        return f"decoding stopped after {told}: the file is truncated or damaged (the frames before were analysed)"
    if decoded == 0:
        said_first = " ".join(said.split())[:200]
        return ("no video frame could be decoded: the file is damaged, or holds no video"
                + (f" (FFmpeg: {said_first})" if said_first else ""))
    # Other containers give only a duration, which may be another stream's (a longer audio track,
    # a second video): without FFmpeg saying the file ended early, the stream is whole.
    return ""


def _sequence_frames(folder: Path, fps: float, after_index: int = -1) -> Iterator[Frame]:
    for index, file in enumerate(sequence_files(folder)):
        if index <= after_index:
            yield Frame(index, index / fps, None, "skipped")
            continue
        try:
            yield Frame(index, index / fps, read_image(file))
        except ImageReadError as exc:
            yield Frame(index, index / fps, None, f"{file.name}: {exc}")


