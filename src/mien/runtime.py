"""Shipped model and data files: integrity checks and inference sessions.

Every file mien ships in ``mien/models`` and ``mien/data`` is listed in ``models/manifest.json``
with its sha256: the models under ``models`` (with where each came from and its licence), every
other file under ``files`` by its path in the package (``models/perceived.json``,
``data/neutral_face.npz``, …). A file is checked against the manifest when it is first loaded,
so a truncated, damaged or edited file (a changed temperature or threshold) fails loudly
instead of producing silent garbage. After a deliberate change, ``python tools/refresh_manifest.py``
rewrites the checksums.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import signal
import sys
import threading
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import MienError

REPAIR_HINT = "Reinstall mien to repair it: pip install --force-reinstall --no-deps mien"
MANIFEST_NAME = "manifest.json"


class ModelFileError(MienError, RuntimeError):
    """A shipped model or data file is missing or does not match its manifest entry."""


def models_dir() -> Path:
    """The folder of the shipped models inside the installed package."""
    return Path(str(resources.files("mien") / "models"))


def data_dir() -> Path:
    """The folder of mien's shipped data files (``mien/data`` in the installed package)."""
    return Path(str(resources.files("mien") / "data"))


@functools.cache
def _manifest_document() -> dict:
    path = models_dir() / MANIFEST_NAME
    try:
        document = json.loads(path.read_text())
        document["models"], document["files"]  # noqa: B018 - both sections must be there
        return document
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"model manifest {path} is missing or unreadable ({exc}). {REPAIR_HINT}") from exc


def manifest() -> dict:
    """The models' entries: file name in ``models`` -> source, licence, sha256, bytes."""
    return _manifest_document()["models"]


def shipped_checksums() -> dict[str, str]:
    """sha256 of every shipped file, by its path in the package (``models/…``, ``data/…``)."""
    document = _manifest_document()
    sums = {f"models/{name}": entry["sha256"] for name, entry in document["models"].items()}
    sums.update({name: entry["sha256"] for name, entry in document["files"].items()})
    return sums


def _shipped_path(name: str) -> Path:
    folder, _, rest = name.partition("/")
    return (models_dir() if folder == "models" else data_dir()) / rest


def verified_bytes(name: str) -> bytes:
    """The bytes of shipped file ``name`` (``models/…`` or ``data/…``) after checking them against the manifest."""
    expected = shipped_checksums().get(name)
    path = _shipped_path(name)
    if expected is None:
        raise ModelFileError(f"{path} is not listed in {models_dir() / MANIFEST_NAME}. {REPAIR_HINT}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"shipped file {path} is missing or unreadable ({exc.strerror}). {REPAIR_HINT}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ModelFileError(
            f"shipped file {path} is corrupted or was changed: sha256 {digest[:12]}… does not match the manifest's "
            f"{expected[:12]}…. {REPAIR_HINT}"
        )
    return data


@functools.cache
def verified_model_path(name: str) -> Path:
    """Path of a shipped model in ``models`` after checking that its bytes match the manifest."""
    if name not in manifest():
        raise ModelFileError(f"model {name!r} is not listed in {models_dir() / MANIFEST_NAME}. {REPAIR_HINT}")
    verified_bytes(f"models/{name}")
    return models_dir() / name


def verified_json(name: str) -> dict:
    """A shipped JSON file, checked against the manifest."""
    try:
        return json.loads(verified_bytes(name))
    except ValueError as exc:
        raise ModelFileError(f"{_shipped_path(name)} is not valid JSON ({exc}). {REPAIR_HINT}") from exc


def verified_npz(name: str) -> dict[str, np.ndarray]:
    """The arrays of a shipped ``.npz`` file, checked against the manifest (no pickled objects)."""
    try:
        with np.load(io.BytesIO(verified_bytes(name)), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ModelFileError(f"{_shipped_path(name)} is not a readable .npz archive ({exc}). {REPAIR_HINT}") from exc


@contextlib.contextmanager
def native_stderr_to(fd: int):
    """Send what native code (C++ loggers, FFmpeg) writes to file descriptor 2 into ``fd`` instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def ctrl_c_as_flag():
    """Within the block a Ctrl-C (SIGINT) appends True to the yielded list instead of raising
    KeyboardInterrupt, so the caller stops where it is safe to. Outside the main thread, where
    Python delivers no signals, nothing changes."""
    caught: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def ctrl_c_held_back():
    """Within the block a Ctrl-C waits, and reaches its handler when the block ends. Native libraries
    turn a KeyboardInterrupt raised while they are imported into an ImportError (ONNX Runtime:
    "initialization failed"), which would hide the user's Ctrl-C behind a traceback."""
    with ctrl_c_as_flag() as caught:
        yield
    if caught:
        signal.raise_signal(signal.SIGINT)


@contextlib.contextmanager
def _native_stderr_silenced():
    """LiteRT's C++ logger prints an INFO line for every interpreter it creates; keep those
    out of the user's terminal. Python exceptions still carry their messages."""
    with open(os.devnull, "wb") as devnull, native_stderr_to(devnull.fileno()):
        yield


def onnx_session(path: str | Path, num_threads: int = 1):
    """An ONNX Runtime CPU session on ``num_threads`` threads, with its own log kept quiet."""
    with ctrl_c_held_back():
        import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class TFLiteModel:
    """One LiteRT interpreter with a single float32 input, run on one thread by default."""

    def __init__(self, name: str, num_threads: int = 1):
        with ctrl_c_held_back():
            from ai_edge_litert.interpreter import Interpreter

        self.name = name
        path = verified_model_path(name)
        with _native_stderr_silenced():
            self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        (inp,) = self._interpreter.get_input_details()
        self.input_shape = tuple(int(s) for s in inp["shape"])
        self._input_index = inp["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: -int(np.prod(d["shape"])))
        self._output_indices = [d["index"] for d in outputs]

    def __call__(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run on one NHWC float32 tensor; outputs are returned largest first."""
        self._interpreter.set_tensor(self._input_index, tensor)
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._output_indices]
