"""Checkpoints of a video run, as data only, and the lock on the run's work folder.

A checkpoint is two files in the run's work folder: ``checkpoint.json`` (format, version, the
run's fingerprint, the finished parts and the session's numbers) and the ``state-<sha256>.npz``
it names (the session's arrays, read with ``allow_pickle=False``). Nothing in a checkpoint is
ever executed, so a checkpoint planted in a shared output folder cannot run code; and no class
name is stored, so moving a class does not break resume.

``read_checkpoint`` compares the fingerprint before it reads anything else, then checks every
key, type and array shape against what this version writes; a checkpoint that is foreign,
damaged, from another version or malformed in any way raises ``CheckpointUnusable`` and the
caller starts afresh.

``WorkFolderLock`` holds an exclusive ``flock`` on ``<work>/lock`` for the whole run: a second
run of the same command finds it held and stops before it touches the first run's files. The
kernel drops the lock when its process dies, so the lock of a killed run is taken over at once.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import actions, perceived
from ..io import atomic_path
from ..mesh import LANDMARK_COUNT
from .baseline import TrackNeutral
from .session import SessionState
from .smoothing import OneEuroSmoother, _TrackFilter
from .tracking import LostTrack, TrackState
from ..errors import MienError

FORMAT = "mien-video-checkpoint"
VERSION = 3
STATE_FILE = "checkpoint.json"
LOCK_FILE = "lock"
LEGACY_FILES = ("checkpoint.pkl",)  # pickled checkpoints of earlier versions: recognised, never read
MESH_SHAPE = (LANDMARK_COUNT, 3)


class CheckpointUnusable(MienError, ValueError):
    """The checkpoint cannot be used; the message says why. The run starts afresh."""


class CheckpointIgnored(UserWarning):
    """Warned when a run starts afresh because the checkpoint in its work folder is unusable."""


class WorkFolderError(MienError, RuntimeError):
    """The work folder cannot be used: another run holds it, or it is not a folder mien made."""


class RunLocked(WorkFolderError):
    """Another run holds the work folder."""


@dataclass
class Checkpoint:
    """What a run needs to go on: its finished parts, the last frame analysed, the video-mode
    analyzer's state, and each frame sink's state (name -> (JSON-able dict, arrays); see
    ``video.sinks``)."""

    parts: list[str] = field(default_factory=list)  # part-NNNNN.parquet files in the work folder
    last_index: int = -1
    session: SessionState = field(default_factory=SessionState)
    sinks: dict[str, tuple[dict, dict[str, np.ndarray]]] = field(default_factory=dict)

    @property
    def files(self) -> set[str]:
        """The files in the work folder this checkpoint needs: its parts and the sinks' files."""
        return {*self.parts, *(name for meta, _ in self.sinks.values() for name in meta.get("files", ()))}


# ---------------------------------------------------------------------------------------- writing
def write_checkpoint(work: Path, fingerprint: str, checkpoint: Checkpoint) -> None:
    """Save ``checkpoint``: the arrays first, under a name from their hash, then the JSON that
    names them, each atomically; older arrays go last, so a crash at any point leaves one complete
    checkpoint."""
    meta, arrays = _encode(checkpoint)
    with atomic_path(work / "state.npz") as tmp:
        np.savez(tmp, **arrays)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        arrays_name = f"state-{digest[:16]}.npz"
    os.replace(work / "state.npz", work / arrays_name)
    meta = {"format": FORMAT, "version": VERSION, "fingerprint": fingerprint, "parts": list(checkpoint.parts),
            "arrays": arrays_name, "arrays_sha256": digest, **meta}
    with atomic_path(work / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(meta), encoding="utf-8")
    for old in work.glob("state-*.npz"):
        if old.name != arrays_name:
            old.unlink()


def _encode(checkpoint: Checkpoint) -> tuple[dict, dict[str, np.ndarray]]:
    state = checkpoint.session
    tracker: TrackState = state.tracker
    arrays = {"tracker_meshes": tracker.meshes,
              "lost_boxes": np.stack([t.box for t in tracker.lost]) if tracker.lost else np.zeros((0, 4), np.float32)}
    meta = {
        "last_index": checkpoint.last_index,
        "frames_seen": state.frames_seen,
        "last_time_s": state.last_time_s,
        "tracker": {"next_id": tracker.next_id, "frames_seen": tracker.frames_seen, "ids": list(tracker.ids),
                    "lost": [[t.id, t.time_s] for t in tracker.lost], "lost_last_frame": tracker.lost_last_frame},
        "track_scores": [[t, score] for t, score in state.track_scores.items()],
        "au_baselines": [[t, [neutral.added, neutral.built_from]] for t, neutral in state.au_baselines.items()],
    }
    for name in ("smoother", "perceived_smoother"):
        smoother: OneEuroSmoother = getattr(state, name)
        meta[name] = [[t, f.time_s] for t, f in smoother.tracks.items()]
        for t, f in smoother.tracks.items():
            arrays[f"{name}_{t}_value"] = f.value
            arrays[f"{name}_{t}_derivative"] = f.derivative
    for t, neutral in state.au_baselines.items():
        arrays[f"au_baselines_{t}_frames"] = neutral.frames
        arrays[f"au_baselines_{t}_neutral"] = neutral.neutral
    meta["sinks"] = {name: sink_meta for name, (sink_meta, _) in checkpoint.sinks.items()}
    for name, (_, sink_arrays) in checkpoint.sinks.items():
        arrays.update({f"sink:{name}:{key}": a for key, a in sink_arrays.items()})
    return meta, arrays


# ---------------------------------------------------------------------------------------- reading
def has_checkpoint(work: Path) -> bool:
    """Whether the work folder ``work`` holds a checkpoint (of this version or an older layout)."""
    return any((work / name).exists() for name in (STATE_FILE, *LEGACY_FILES))


def read_checkpoint(work: Path, fingerprint: str, baseline_window: int | None = None) -> Checkpoint:
    """The checkpoint in ``work`` of the run with this ``fingerprint``; raise ``CheckpointUnusable``
    when there is none it can use. ``baseline_window``: the rows each track's baseline must have
    (``Options.baseline_window``; None: any)."""
    legacy = [name for name in LEGACY_FILES if (work / name).exists()]
    if legacy and not (work / STATE_FILE).exists():
        raise CheckpointUnusable(f"{legacy[0]} is in a format mien no longer reads (it could run code)")
    try:
        meta = json.loads((work / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointUnusable(f"{STATE_FILE} cannot be read ({exc})") from None
    _check(isinstance(meta, dict) and meta.get("format") == FORMAT, "it is not a mien checkpoint")
    _check(meta.get("version") == VERSION, f"it has format version {meta.get('version')!r}, not {VERSION}")
    _check(meta.get("fingerprint") == fingerprint, "it belongs to another input or other options")
    parts = meta.get("parts")
    _check(isinstance(parts, list) and all(isinstance(p, str) and _is_part_name(p) for p in parts), "its list of parts is malformed")
    _check(all(_plain_file(work / p) for p in parts), "a part it lists is missing or not a plain file")
    name = meta.get("arrays")
    _check(isinstance(name, str) and name.startswith("state-") and name.endswith(".npz") and "/" not in name,
           "its arrays file name is malformed")
    _check(_plain_file(work / name), "its arrays file is missing or not a plain file")
    try:
        data = (work / name).read_bytes()
    except OSError as exc:
        raise CheckpointUnusable(f"its arrays cannot be read ({exc})") from None
    _check(hashlib.sha256(data).hexdigest() == meta.get("arrays_sha256"), "its arrays do not match their checksum")
    try:
        with np.load(work / name, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        return _decode(meta, arrays, parts, baseline_window, work)
    except CheckpointUnusable:
        raise
    except Exception as exc:  # a malformed zip, array or value can raise almost anything; nothing runs
        raise CheckpointUnusable(f"it is malformed ({type(exc).__name__}: {exc})") from None


def _plain_file(path: Path) -> bool:
    """A regular file, not a link: a checkpoint never makes links, and one could point anywhere."""
    return path.is_file() and not path.is_symlink()


def _is_part_name(name: str) -> bool:
    return name.startswith("part-") and name.endswith(".parquet") and name[5:-8].isdigit()


def _check(ok: bool, reason: str) -> None:
    if not ok:
        raise CheckpointUnusable(reason)


def _int(value) -> int:
    _check(type(value) is int, f"{value!r} is not an integer")
    return value


def _float(value) -> float:
    _check(type(value) in (int, float), f"{value!r} is not a number")
    return float(value)


def _array(arrays: dict, key: str, shape: tuple, kind: str = "f") -> np.ndarray:
    _check(key in arrays, f"array {key} is missing")
    a = arrays.pop(key)
    _check(a.dtype.kind == kind and a.ndim == len(shape) and all(n is None or n == m for n, m in zip(shape, a.shape)),
           f"array {key} has dtype {a.dtype} and shape {a.shape}")
    return a


def _pairs(meta: dict, key: str) -> list:
    value = meta.get(key)
    _check(isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value), f"{key} is malformed")
    tracks = [_int(p[0]) for p in value]
    _check(len(set(tracks)) == len(tracks), f"{key} lists a track twice")
    return value


def _decode(meta: dict, arrays: dict, parts: list[str], baseline_window: int | None, work: Path) -> Checkpoint:
    units = len(actions.columns())
    state = SessionState()
    tracker = meta["tracker"]
    _check(isinstance(tracker, dict) and type(tracker["lost_last_frame"]) is bool, "tracker is malformed")
    ids = [_int(t) for t in tracker["ids"]]
    lost = tracker["lost"]
    boxes = _array(arrays, "lost_boxes", (len(lost), 4))
    state.tracker = TrackState(next_id=_int(tracker["next_id"]), frames_seen=_int(tracker["frames_seen"]), ids=ids,
                               meshes=_array(arrays, "tracker_meshes", (len(ids), *MESH_SHAPE)),
                               lost=[LostTrack(_int(t), box, _float(time_s)) for (t, time_s), box in zip(lost, boxes)],
                               lost_last_frame=tracker["lost_last_frame"])
    state.frames_seen = _int(meta["frames_seen"])
    state.last_time_s = None if meta["last_time_s"] is None else _float(meta["last_time_s"])
    for name, shape in (("smoother", MESH_SHAPE), ("perceived_smoother", (len(perceived.CLASSES) + 1,))):
        smoother: OneEuroSmoother = getattr(state, name)
        smoother.tracks = {t: _TrackFilter(_float(time_s), _array(arrays, f"{name}_{t}_value", shape),
                                           _array(arrays, f"{name}_{t}_derivative", shape))
                           for t, time_s in _pairs(meta, name)}
    state.track_scores = {t: _float(score) for t, score in _pairs(meta, "track_scores")}
    for t, (added, built_from) in _pairs(meta, "au_baselines"):
        _check(0 <= _int(built_from) <= _int(added), "a baseline's frame counts are inconsistent")
        state.au_baselines[t] = TrackNeutral(_array(arrays, f"au_baselines_{t}_frames", (baseline_window, units)), added,
                                             _array(arrays, f"au_baselines_{t}_neutral", (units,)), built_from)
    sinks = meta["sinks"]
    _check(isinstance(sinks, dict) and all(isinstance(m, dict) for m in sinks.values()), "its sinks' states are malformed")
    states = {name: (sink_meta, {}) for name, sink_meta in sinks.items()}
    for key in [k for k in arrays if k.startswith("sink:")]:
        _, name, array_name = key.split(":", 2)
        _check(name in states, f"array {key} belongs to no sink")
        states[name][1][array_name] = arrays.pop(key)
    for sink_meta, _ in states.values():
        files = sink_meta.get("files", [])
        _check(isinstance(files, list) and all(isinstance(f, str) and f and "/" not in f and not f.startswith(".")
                                               and f not in (STATE_FILE, LOCK_FILE) and _plain_file(work / f)
                                               for f in files), "a file a sink lists is malformed, missing or not a plain file")
    _check(not arrays, f"it holds arrays this version does not write: {', '.join(sorted(arrays)[:3])}")
    return Checkpoint(parts, _int(meta["last_index"]), state, states)


# ------------------------------------------------------------------------------------------ lock
class WorkFolderLock:
    """Exclusive lock on a run's work folder, held from ``acquire`` until ``release`` (or the
    process's end). The folder's other files may be deleted while it is held; the lock file stays."""

    def __init__(self, work: Path):
        self.path = Path(work) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "WorkFolderLock":
        """Create the work folder if needed and take its lock; returns self. Raises WorkFolderError when
        the folder is a link or a file, RunLocked (naming the holder) when another run holds it."""
        work = self.path.parent
        if work.is_symlink() or (work.exists() and not work.is_dir()):
            raise WorkFolderError(f"{work} is not a folder mien made (a link or a file), and mien empties its work "
                                  "folder: remove it, then run this command again")
        work.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                raise RunLocked(f"another mien run ({holder}) is working in {self.path.parent}; wait for it to "
                                "finish or stop it, then run this command again") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # else the holder removed the folder between our open and our lock: try again
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (nothing happens if it is not held)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WorkFolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
