"""Shipped model files: integrity checks and inference sessions.

Every model mien uses lives in ``mien/models`` next to ``manifest.json``, which records
where it came from, its licence and its sha256. A file is checked against the manifest
the first time it is loaded, so a truncated or replaced file fails loudly instead of
producing silent garbage.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import MienError

REPAIR_HINT = "Reinstall mien to repair it: pip install --force-reinstall --no-deps mien"


class ModelFileError(MienError, RuntimeError):
    """A shipped model file is missing or does not match its manifest entry."""


def models_dir() -> Path:
    """The folder of the shipped models inside the installed package."""
    return Path(str(resources.files("mien") / "models"))


@functools.cache
def manifest() -> dict:
    """The sha256 manifest of the shipped files."""
    path = models_dir() / "manifest.json"
    try:
        return json.loads(path.read_text())["models"]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"model manifest {path} is missing or unreadable ({exc}). {REPAIR_HINT}") from exc


@functools.cache
def verified_model_path(name: str) -> Path:
    """Path of a shipped model after checking that its bytes match the manifest."""
    entry = manifest().get(name)
    if entry is None:
        raise ModelFileError(f"model {name!r} is not listed in {models_dir() / 'manifest.json'}. {REPAIR_HINT}")
    path = models_dir() / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"model file {path} is missing or unreadable ({exc.strerror}). {REPAIR_HINT}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise ModelFileError(
            f"model file {path} is corrupted: sha256 {digest[:12]}… does not match the manifest's "
            f"{entry['sha256'][:12]}…. {REPAIR_HINT}"
        )
    return path


@contextlib.contextmanager
def _native_stderr_silenced():
    """LiteRT's C++ logger prints an INFO line for every interpreter it creates; keep those
    out of the user's terminal. Python exceptions still carry their messages."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def onnx_session(path: str | Path, num_threads: int = 1):
    """An ONNX Runtime CPU session on ``num_threads`` threads, with its own log kept quiet."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class TFLiteModel:
    """One LiteRT interpreter with a single float32 input, run on one thread by default."""

    def __init__(self, name: str, num_threads: int = 1):
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
