"""Models that ``mien audit`` can score; each gives (N, 8) probabilities over mien's classes.

- ``mien``: mien's own perceived-expression model (:mod:`mien.perceived`).
- an ONNX image classifier described by a JSON config (see :class:`OnnxConfigModel`).
- a predictions CSV written by any other tool, or mien's own ``mien analyze`` table (see
  :class:`PredictionsModel`); it cannot be re-run, so robustness is measured only from its rows for
  changed images. An image it has no prediction for gets a row of NaN (see :mod:`mien.audit.metrics`).

A class the model cannot output (e.g. contempt for a 7-class model) gets probability 0 in every
row, is listed in ``classes_out`` as absent, and is named on the card. A model class mapped to
``null`` (e.g. a model's own "unknown") is dropped and the rest renormalised.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from .datasets import PATH_COLUMNS, class_index, unknown_label
from .metrics import CLASSES, K
from ..errors import MienError
from ..io import from_csv_text


class ModelError(MienError, ValueError):
    """A model, config or predictions file that cannot be used; the message names the file (and row)."""


class AuditModel:
    """What the audit scores: anything that gives (N, 8) probabilities over ``CLASSES`` for images.
    ``classes_out``: the classes it can output (others get probability 0); ``notes``: lines for the card."""

    name: str = "model"
    description: str = ""
    classes_out: tuple[int, ...] = tuple(range(K))
    can_run: bool = True  # False: predictions given, images cannot be re-scored (no robustness)
    hard_labels: bool = False  # True: one label per image, no probabilities (no calibration)
    notes: list[str]

    def predict(self, images: list[np.ndarray], names: list[str], paths=None) -> np.ndarray:
        """(N, 8) probabilities over ``CLASSES`` for the images (their relative names and files)."""
        raise NotImplementedError


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    shrink = img.shape[0] > h or img.shape[1] > w
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class MienModel(AuditModel):
    """mien's perceived-expression model: images are made grey and resized to 48x48 (a FER2013-framed
    image, as in FERPlus, goes in as it is)."""

    def __init__(self, num_threads: int = 1, batch: int = 256):
        from .. import perceived as P

        self._model = P.PerceivedModel(num_threads=num_threads)
        card = P.model_card()
        self.name = "mien perceived"
        self.description = (f"mien's perceived-expression model ({P.MODEL_NAME}, sha256 {card['sha256'][:12]}, "
                            f"temperature {self._model.temperature:.3g})")
        self.notes = []
        self.batch = batch

    def predict(self, images, names=None, paths=None) -> np.ndarray:
        """(N, 8) calibrated probabilities over ``CLASSES`` for RGB or grey images (any size; each is
        made grey and resized to 48x48). ``names`` and ``paths`` are not used."""
        faces = np.stack([_resize(_grey(im), (48, 48)) for im in images]) if images else np.zeros((0, 48, 48), np.uint8)
        out = [self._model(faces[i:i + self.batch]).probabilities for i in range(0, len(faces), self.batch)]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, K))


def _class_map(names: list[str], mapping: dict | None, where: str) -> tuple[np.ndarray, list[str]]:
    """(len(names),) target index per model class (-1 = dropped) and notes."""
    mapping = {str(k).strip().lower(): v for k, v in (mapping or {}).items()}
    target, dropped = [], []
    for n in names:
        key = str(n).strip().lower()
        if key in mapping:
            v = mapping[key]
            if v is None:
                target.append(-1)
                dropped.append(n)
                continue
            c = class_index(v)
            if c is None:
                raise ModelError(f"{where}: mapping {n!r} -> {v!r}: {v!r} is not one of mien's classes ({', '.join(CLASSES)})")
        else:
            c = class_index(n)
            if c is None:
                raise ModelError(f"{where}: model class {n!r} is not one of mien's classes or a known synonym; "
                                 "map it in \"mapping\" (to a class, or to null to drop it)")
        target.append(c)
    notes = [f"model class(es) {', '.join(map(str, dropped))} dropped and the rest renormalised"] if dropped else []
    return np.array(target), notes


def _to_mien(p: np.ndarray, target: np.ndarray, where: str) -> np.ndarray:
    out = np.zeros((len(p), K))
    for j, c in enumerate(target):
        if c >= 0:
            out[:, c] += p[:, j]
    s = out.sum(1, keepdims=True)
    if (s <= 0).any():
        i = int(np.nonzero(s[:, 0] <= 0)[0][0])
        raise ModelError(f"{where}: row {i}: no probability left on mien's classes")
    return out / s


class OnnxConfigModel(AuditModel):
    """An ONNX image classifier described by a JSON config::

        {"name": "my model", "onnx": "model.onnx",        # path relative to the config
         "input_size": [64, 64], "color": "grey",          # grey | rgb | bgr
         "layout": "NCHW",                                 # NCHW (default) | NHWC
         "scale": 0.00392156862745098, "mean": [0.5], "std": [0.5],   # x = (pixel*scale - mean) / std
         "output": "probabilities",                        # probabilities | logits (softmax applied)
         "classes": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
         "mapping": {"angry": "anger"}}                    # optional; names not listed use synonyms

    Images are resized to ``input_size`` (area interpolation when shrinking).
    """

    def __init__(self, config_path: Path, num_threads: int = 1, batch: int = 256):
        from ..runtime import onnx_session

        self.path = Path(config_path)
        try:
            cfg = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.path}: cannot read the model config ({exc})") from exc
        if not isinstance(cfg, dict):
            raise ModelError(f"{self.path}: the model config must be a JSON object")
        for key in ("onnx", "input_size", "classes"):
            if key not in cfg:
                raise ModelError(f"{self.path}: missing key {key!r}")
        try:
            h, w = (int(x) for x in cfg["input_size"])
        except (TypeError, ValueError):
            raise ModelError(f"{self.path}: input_size must be [height, width], got {cfg['input_size']!r}") from None
        self.size = (h, w)
        self.color = str(cfg.get("color", "grey")).lower()
        if self.color not in ("grey", "gray", "rgb", "bgr"):
            raise ModelError(f"{self.path}: color must be grey, rgb or bgr, got {self.color!r}")
        self.layout = str(cfg.get("layout", "NCHW")).upper()
        if self.layout not in ("NCHW", "NHWC"):
            raise ModelError(f"{self.path}: layout must be NCHW or NHWC, got {self.layout!r}")
        self.output = str(cfg.get("output", "probabilities")).lower()
        if self.output not in ("probabilities", "logits"):
            raise ModelError(f"{self.path}: output must be probabilities or logits, got {self.output!r}")
        self.scale = float(cfg.get("scale", 1 / 255))
        self.mean = np.asarray(cfg.get("mean", [0.0]), np.float32)
        self.std = np.asarray(cfg.get("std", [1.0]), np.float32)
        names = list(cfg["classes"])
        self.target, self.notes = _class_map(names, cfg.get("mapping"), str(self.path))
        self.classes_out = tuple(sorted({int(c) for c in self.target if c >= 0}))
        onnx_path = (self.path.parent / cfg["onnx"]).resolve()
        try:
            self._session = onnx_session(onnx_path, num_threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: cannot load {onnx_path}: {exc}") from exc
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        self.batch = 1 if (inp.shape and inp.shape[0] == 1) else batch
        out_dim = self._session.get_outputs()[0].shape[-1]
        if isinstance(out_dim, int) and out_dim != len(names):
            raise ModelError(f"{self.path}: the model has {out_dim} outputs but {len(names)} classes are named")
        self.n_out = len(names)
        self.name = str(cfg.get("name", self.path.stem))
        self.description = f"ONNX model {onnx_path.name} via {self.path.name} ({h}x{w} {self.color}, {self.layout})"

    def preprocess(self, images) -> np.ndarray:
        """The model's input batch for the images: resized to the config's size and colour, scaled as
        ``(pixel * scale - mean) / std``, float32 in the config's layout (NCHW or NHWC)."""
        arr = []
        for im in images:
            if self.color in ("grey", "gray"):
                x = _resize(_grey(im), self.size)[..., None]
            else:
                x = _resize(im if im.ndim == 3 else cv2.cvtColor(im, cv2.COLOR_GRAY2RGB), self.size)
                if self.color == "bgr":
                    x = x[..., ::-1]
            arr.append(x)
        x = (np.stack(arr).astype(np.float32) * self.scale - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x, np.float32)

    def predict(self, images, names=None, paths=None) -> np.ndarray:
        """(N, 8) probabilities over ``CLASSES`` for the images (softmax applied when the model returns
        logits; its classes mapped to mien's by the config). Raises ModelError when the model returns
        another number of outputs than its config names."""
        if not images:
            return np.zeros((0, K))
        out = []
        for i in range(0, len(images), self.batch):
            x = self.preprocess(images[i:i + self.batch])
            y = np.asarray(self._session.run(None, {self._input: x})[0], np.float64).reshape(len(x), -1)
            out.append(y)
        y = np.concatenate(out)
        if y.shape[1] != self.n_out:
            raise ModelError(f"{self.path}: the model returned {y.shape[1]} outputs, {self.n_out} classes are named")
        if self.output == "logits":
            y = np.exp(y - y.max(1, keepdims=True))
            y /= y.sum(1, keepdims=True)
        return _to_mien(y, self.target, str(self.path))


class PredictionsModel(AuditModel):
    """Predictions written by another tool, or mien's own ``mien analyze`` table: a CSV with a path
    column (``path``, ``file``, ``image``, ``name`` or ``source``) and either probability columns named
    by classes (mien's names, synonyms such as ``happy``, or ``perceived_*``; other columns are ignored)
    or a ``label`` column (hard labels: no calibration).

    A path matches a dataset image when it is the image's relative path, ends with it, is the same
    file, or has the same file name and no other row does. An image without a matching row, or whose
    rows say ``status`` other than ``ok`` (mien: ``no_face``, ``error``) or leave every probability
    empty, has no prediction: it counts as wrong and lowers the coverage. Several rows for one image
    (several faces) are allowed when the file has box columns ``w`` and ``h``: the largest box is kept.

    Optional: a ``perturbation`` column (empty for the unchanged image, else a key of
    :data:`mien.audit.robustness.PERTURBATIONS`) gives predictions on changed images made with
    :func:`mien.audit.robustness.perturb`, so robustness can be scored without running the model here;
    their seed is ``perturbation_seed`` in the optional sidecar ``<name>.json`` (default 0).
    """

    can_run = False

    def __init__(self, path: Path):
        self.path = Path(path)
        self.notes = []
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such predictions file")
        header, rows = _read_table(self.path)
        lower = {h.strip().lower(): h for h in header}
        path_col = next((lower[c] for c in PATH_COLUMNS if c in lower), None)
        if path_col is None:
            raise ModelError(f"{self.path}, row 1 (header): no path column (one of {', '.join(PATH_COLUMNS)})")
        label_col = lower.get("label")
        pert_col = lower.get("perturbation")
        status_col = lower.get("status")
        box_cols = (lower["w"], lower["h"]) if "w" in lower and "h" in lower else None
        prob_cols = [h for h in header if h not in (path_col, label_col) and class_index(h) is not None]
        if not prob_cols and not label_col:
            raise ModelError(f"{self.path}, row 1 (header): needs probability columns named by classes "
                             f"({', '.join(CLASSES)}) or a label column")
        used = (path_col, label_col, pert_col, status_col, *(box_cols or ()))
        ignored = [h for h in header if h not in prob_cols and h not in used]
        if ignored:
            self.notes.append(f"columns ignored: {', '.join(ignored[:10])}{' …' if len(ignored) > 10 else ''}")
        self.hard_labels = not prob_cols
        target = np.array([class_index(h) for h in prob_cols])
        from .robustness import PERTURBATIONS

        known = {p.key for p in PERTURBATIONS}
        tables: dict[str, dict[str, tuple[np.ndarray, float]]] = {"": {}}
        self._without_prediction: set[str] = set()
        for where, row in rows:
            key = row[path_col].strip()
            if self.path.suffix.lower() == ".csv":
                key = from_csv_text(key)
            pert = row[pert_col].strip() if pert_col else ""
            if pert and pert not in known:
                raise ModelError(f"{where}: perturbation {pert!r} is not one of {', '.join(sorted(known))} "
                                 "(empty for the unchanged image)")
            values = [row[h].strip() for h in prob_cols] if prob_cols else [row[label_col].strip()]
            if (status_col and row[status_col].strip().lower() not in ("", "ok")) or not any(values):
                if not pert:
                    self._without_prediction.add(key)
                continue
            table = tables.setdefault(pert, {})
            area = _box_area(row, box_cols, where)
            if key in table and box_cols is None:
                raise ModelError(f"{where}: {key!r} has a second prediction"
                                 + (f" for perturbation {pert!r}" if pert else "")
                                 + " (several faces per image need box columns w and h)")
            if key in table and table[key][1] >= area:
                continue
            table[key] = (_probability_row(values, target, where) if prob_cols
                         else _label_row(values[0], where), area)
        if not tables[""] and not self._without_prediction:
            raise ModelError(f"{self.path}: no rows for unchanged images")
        self._rows = {k: v for k, (v, _) in tables.pop("").items()}
        self._without_prediction -= set(self._rows)
        self._perturbed = {pert: {k: v for k, (v, _) in t.items()} for pert, t in tables.items()}
        self.classes_out = tuple(sorted({int(c) for c in target})) if prob_cols else tuple(range(K))
        self.name = self.path.stem
        kind = "hard labels" if self.hard_labels else f"probabilities over {len(prob_cols)} column(s)"
        self.description = f"predictions file {self.path.name} ({kind}, {len(self._rows)} images with a prediction"
        if self._without_prediction:
            self.description += f", {len(self._without_prediction)} without (no face, an error or empty)"
        self.description += ")"
        sidecar = self.path.with_suffix(".json")  # optional provenance: {"name": ..., "description": ...}
        seed = 0
        if sidecar.is_file():
            try:
                info = json.loads(sidecar.read_text())
            except ValueError as exc:
                raise ModelError(f"{sidecar}: not valid JSON ({exc})") from exc
            if isinstance(info, dict):
                seed = int(info.get("perturbation_seed", 0))
                self.name = str(info.get("name", self.name))
                if info.get("description"):
                    self.description += f"; {info['description']}"
        # perturbation key -> the seed its changed images were made with (see robustness.image_rng)
        self.perturbations = {k: seed for k in self._perturbed}
        if self._perturbed:
            self.description += f"; rows for {len(self._perturbed)} kinds of changed image"

    def predict(self, images, names, paths=None) -> np.ndarray:
        """(N, 8) probabilities; a row of NaN for an image the file has no prediction for. Refuses a
        file that matches none of the images (most likely the wrong file)."""
        out = self._lookup(self._rows, names, paths)
        if len(names) and not np.isfinite(out).all(1).any():
            raise ModelError(f"{self.path}: no prediction for any of the {len(names)} dataset images "
                             f"(e.g. {names[0]!r}); is it the predictions file for this dataset?")
        return out

    def predict_perturbed(self, key: str, names, paths=None) -> np.ndarray:
        """(N, 8) probabilities from the file's rows for the images changed by perturbation ``key``
        (see :mod:`robustness`), found by the images' ``names`` (or ``paths``); NaN rows where the file
        has none (no prediction)."""
        return self._lookup(self._perturbed[key], names, paths)

    def _lookup(self, table: dict, names, paths=None) -> np.ndarray:
        index = _PathIndex(table, self.path.parent)
        out = np.full((len(names), K), np.nan)
        for i, n in enumerate(names):
            key = index.find(n, None if paths is None else paths[i])
            if key is not None:
                out[i] = table[key]
        return out


class _PathIndex:
    """Finds a predictions file's row for a dataset image (see :class:`PredictionsModel`)."""

    def __init__(self, keys, base: Path):
        self.keys = set(keys)
        self.base = base
        self.by_name: dict[str, list[str]] = {}
        for k in keys:
            self.by_name.setdefault(Path(k.replace("\\", "/")).name, []).append(k)

    def find(self, name: str, path: Path | None) -> str | None:
        if name in self.keys:
            return name
        cands = self.by_name.get(Path(name).name, [])
        ending = [k for k in cands if k.replace("\\", "/").endswith("/" + name)]
        if len(ending) == 1:
            return ending[0]
        if path is not None and len(cands) > 1:
            same = [k for k in cands if _same_file(k, path, self.base)]
            if len(same) == 1:
                return same[0]
        return cands[0] if len(cands) == 1 else None


def _same_file(key: str, path: Path, base: Path) -> bool:
    target = Path(path).resolve()
    return any((b / key).resolve() == target for b in (Path.cwd(), base))


def _read_table(path: Path) -> tuple[list[str], list[tuple[str, dict[str, str]]]]:
    """The header and (where, row) pairs of a CSV or Parquet table, every cell as text ("" when empty)."""
    if path.suffix.lower() == ".parquet":
        import pandas as pd

        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, ImportError) as exc:
            raise ModelError(f"{path}: cannot read the Parquet table ({exc})") from exc
        header = [str(c) for c in frame.columns]
        cells = frame.astype(object).where(frame.notna(), "")
        return header, [(f"{path}, row {i + 1}", dict(zip(header, map(str, values))))
                        for i, values in enumerate(cells.itertuples(index=False, name=None))]
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h for h in (reader.fieldnames or []) if h is not None]
        rows = []
        for row in reader:
            where = f"{path}, row {reader.line_num}"
            if None in row or any(v is None for v in row.values()):
                raise ModelError(f"{where}: expected {len(header)} fields like the header")
            rows.append((where, row))
    return header, rows


def _box_area(row: dict, box_cols, where: str) -> float:
    if box_cols is None:
        return 0.0
    try:
        return float(row[box_cols[0]]) * float(row[box_cols[1]])
    except ValueError:
        raise ModelError(f"{where}: box width and height must be numbers, got "
                         f"{row[box_cols[0]]!r}, {row[box_cols[1]]!r}") from None


def _probability_row(values: list[str], target: np.ndarray, where: str) -> np.ndarray:
    try:
        vals = np.array([float(v) for v in values])
    except ValueError:
        raise ModelError(f"{where}: probabilities must be numbers, got {values}") from None
    if not np.isfinite(vals).all() or (vals < 0).any() or vals.sum() <= 0:
        raise ModelError(f"{where}: probabilities must be finite, >= 0 and not all 0")
    p = np.zeros(K)
    np.add.at(p, target, vals)
    return p / p.sum()


def _label_row(value: str, where: str) -> np.ndarray:
    c = class_index(value)
    if c is None:
        raise ModelError(f"{where}: {unknown_label(value)}")
    p = np.zeros(K)
    p[c] = 1.0
    return p


def load_model(spec: str, num_threads: int = 1) -> AuditModel:
    """``mien``, a ``.json`` ONNX config or a ``.csv`` / ``.parquet`` predictions table."""
    if spec in (None, "", "mien"):
        return MienModel(num_threads=num_threads)
    p = Path(spec)
    if p.suffix.lower() == ".json":
        return OnnxConfigModel(p, num_threads=num_threads)
    if p.suffix.lower() in (".csv", ".parquet"):
        return PredictionsModel(p)
    raise ModelError(f"{spec}: --model is 'mien', an ONNX config (.json) or a predictions table (.csv, .parquet)")
