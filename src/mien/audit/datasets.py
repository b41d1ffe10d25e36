"""Datasets for ``mien audit``: face images with crowd votes or single labels.

Three layouts are read:

- ``ferplus``: a FERPlus split folder (e.g. ``FER2013Test/``) holding the PNGs and ``label.csv`` (no
  header; name, face box, then 10 vote counts: neutral, happiness, surprise, sadness, anger, disgust,
  fear, contempt, unknown, NF). ``FER2013Test/fer0033120.png`` is excluded (its pixels are not the
  face its votes describe). When ``<ferplus>/extras/ferplus_to_fer2013.csv`` exists beside the data,
  its ``pixel_identical_group_id`` gives duplicate groups, and an image with a pixel-identical copy
  in another split (e.g. in Train) is flagged as a duplicate.
- ``folders``: one folder per class, named by one of mien's 8 classes or a common synonym
  (``happy``, ``angry``, ``sad``, ``surprised``, ...); one label per image.
- ``csv``: a manifest with a path column (``path``, ``image``, ``file``, …; relative to the CSV's
  folder, or to an ``images/`` folder beside it) and either a label column (found by its content: the
  one column whose values are mostly class names or known synonyms, whatever its name) or vote-count columns named by
  the classes (``unknown`` and ``NF`` columns are allowed). A folder holding ``labels.csv`` is read
  as that manifest. Optional columns: ``duplicate_group`` (images with the same value are copies of
  each other) and ``duplicate`` (true/false: the image has a copy where a model may have been
  trained on it).

A dataset need not use every class: the audit reports its figures over the classes present.

Every error names the file and, where there is one, the row.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..images import IMAGE_SUFFIXES, ImageReadError, read_image
from .metrics import CLASSES, K, majority_labels
from ..errors import MienError

FERPLUS_VOTES = CLASSES + ("unknown", "NF")
FERPLUS_EXCLUDED = {"fer0033120.png": "its pixels are not the face its votes describe (FERPlus KNOWN_ISSUES 3)"}
EXTRA_VOTE_COLUMNS = ("unknown", "nf")
PATH_COLUMNS = ("path", "file", "filename", "image", "name", "source")
MANIFEST_NAME = "labels.csv"
GENERIC_MANIFEST_STEMS = {"labels", "label", "manifest", "annotations"}

SYNONYMS = {
    "neutral": "neutral", "neutrality": "neutral",
    "happiness": "happiness", "happy": "happiness",
    "surprise": "surprise", "surprised": "surprise",
    "sadness": "sadness", "sad": "sadness",
    "anger": "anger", "angry": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "contempt": "contempt", "contemptuous": "contempt",
}


class DatasetError(MienError, ValueError):
    """A dataset that cannot be read; the message names the file and, where there is one, the row."""


def unknown_label(value: str) -> str:
    """The error text for a label that is not one of mien's classes or a known synonym."""
    return f"label {value!r} is not one of mien's classes ({', '.join(CLASSES)}) or a known synonym"


def class_index(name: str) -> int | None:
    """Index in ``CLASSES`` of a class name or a known synonym (case-insensitive), else None."""
    key = str(name).strip().lower()
    for prefix in ("perceived_", "prob_", "p_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    canon = SYNONYMS.get(key)
    return CLASSES.index(canon) if canon else None


@dataclass
class AuditDataset:
    """Images and their crowd votes (or single labels), in a fixed order.

    votes: (N, V) int counts; columns ``vote_columns`` (the first 8 are ``CLASSES``). A dataset with
    one label per image has one vote per image (``has_votes`` False). labels: (N,) crowd majority
    label (FERPlus protocol), -1 where there is none. duplicate: (N,) bool, the image has a copy
    where a model may have been trained on it; groups: (N,) duplicate group ids ("" = none).
    """

    root: Path
    layout: str
    names: list[str]
    paths: list[Path]
    votes: np.ndarray
    vote_columns: tuple[str, ...]
    has_votes: bool
    groups: np.ndarray | None = None
    duplicate: np.ndarray | None = None
    framing: str = "crop"
    notes: list[str] = field(default_factory=list)
    duplicate_source: str = ""

    def __post_init__(self):
        if self.has_votes:
            self.labels = majority_labels(self.votes)
        else:  # one label per image: that label (the majority protocol would drop a single vote)
            self.labels = np.where(self.votes[:, :K].sum(1) > 0, self.votes[:, :K].argmax(1), -1)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def name(self) -> str:
        """The folder's name; for a manifest, its name without suffix unless that says nothing
        (``labels.csv``), then its folder's name."""
        if self.layout == "csv" and self.root.stem.lower() in GENERIC_MANIFEST_STEMS:
            return self.root.resolve().parent.name
        return self.root.stem if self.layout == "csv" else self.root.name

    @property
    def title(self) -> str:
        """The dataset's name with its layout, e.g. ``FER2013Test (ferplus layout)``."""
        return f"{self.name} ({self.layout} layout)"

    def subset(self, idx) -> "AuditDataset":
        """The images at ``idx`` (integer indices), in that order, with their votes, groups and notes."""
        idx = np.asarray(idx, int)
        return AuditDataset(self.root, self.layout, [self.names[i] for i in idx], [self.paths[i] for i in idx],
                            self.votes[idx], self.vote_columns, self.has_votes,
                            None if self.groups is None else self.groups[idx],
                            None if self.duplicate is None else self.duplicate[idx], self.framing, list(self.notes),
                            self.duplicate_source)


def load_images(ds: AuditDataset) -> list[np.ndarray]:
    """The images as (H, W, 3) uint8 RGB arrays, in dataset order (read by :func:`mien.images.read_image`,
    with its limits; greyscale becomes RGB)."""
    out = []
    for path in ds.paths:
        try:
            out.append(read_image(path))
        except ImageReadError as exc:
            raise DatasetError(f"{path}: {exc}") from None
    return out


def detect_layout(path: Path) -> str:
    """The layout of ``path``: ``"csv"`` (a .csv manifest, or a folder holding ``labels.csv``),
    ``"ferplus"`` (a split folder with ``label.csv``, or the FERPlus root) or ``"folders"`` (one
    sub-folder per class). Raises DatasetError when it is none of these or does not exist."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{p}: a dataset is a folder (FERPlus split or one folder per class) or a .csv manifest")
    if not p.is_dir():
        raise DatasetError(f"{p}: no such file or folder")
    if (p / "label.csv").is_file() or (p / "data" / "FER2013Test" / "label.csv").is_file():
        return "ferplus"
    if (p / MANIFEST_NAME).is_file():
        return "csv"
    if any(d.is_dir() for d in p.iterdir()):
        return "folders"
    raise DatasetError(f"{p}: cannot tell the layout: no label.csv (FERPlus), no class folders, not a .csv manifest")


def load_dataset(path, layout: str | None = None, label_column: str | None = None) -> AuditDataset:
    """Read a dataset; ``layout`` is ``ferplus``, ``folders``, ``csv`` or None (detected);
    ``label_column``: a manifest's label column when it is not one of ``LABEL_COLUMNS``."""
    p = Path(path)
    layout = layout or detect_layout(p)
    if layout == "ferplus":
        return load_ferplus(p)
    if layout == "folders":
        return load_folders(p)
    if layout == "csv":
        return load_csv(p / MANIFEST_NAME if p.is_dir() else p, label_column)
    raise DatasetError(f"unknown layout {layout!r}; use ferplus, folders or csv")


# ---- FERPlus ---------------------------------------------------------------------------------------

def load_ferplus(folder: Path) -> AuditDataset:
    """A FERPlus split: the images of ``folder`` with the crowd votes per image from its
    ``label.csv`` (given the FERPlus root, its Test split). Known bad images are excluded with a note;
    raises DatasetError naming the file and row of a malformed line."""
    folder = Path(folder)
    notes = []
    if not (folder / "label.csv").is_file() and (folder / "data" / "FER2013Test" / "label.csv").is_file():
        folder = folder / "data" / "FER2013Test"
        notes.append("FERPlus root given: the Test split was used")
    label = folder / "label.csv"
    if not label.is_file():
        raise DatasetError(f"{label}: missing (a FERPlus split folder holds the images and label.csv)")
    names, paths, votes = [], [], []
    excluded = []
    with open(label, newline="") as f:
        for row in csv.reader(f):
            line = f"{label}, row {len(names) + len(excluded) + 1}"  # label.csv has no header
            if not row or not any(c.strip() for c in row):
                excluded.append(None)
                continue
            if len(row) != 12:
                raise DatasetError(f"{line}: expected 12 fields (name, face box, 10 vote counts: "
                                   f"{', '.join(FERPLUS_VOTES)}), got {len(row)}")
            name = row[0].strip()
            try:
                v = [int(x) for x in row[2:]]
            except ValueError:
                raise DatasetError(f"{line}: vote counts must be whole numbers, got {row[2:]}") from None
            if min(v) < 0:
                raise DatasetError(f"{line}: negative vote count {row[2:]}")
            if name in FERPLUS_EXCLUDED:
                excluded.append(name)
                notes.append(f"{name} excluded: {FERPLUS_EXCLUDED[name]}")
                continue
            img = folder / name
            if not img.is_file():
                raise DatasetError(f"{line}: image {img} is missing")
            names.append(name)
            paths.append(img)
            votes.append(v)
    if not names:
        raise DatasetError(f"{label}: no images listed")
    ds = AuditDataset(folder, "ferplus", names, paths, np.array(votes, np.int64), FERPLUS_VOTES, True,
                      framing="fer2013", notes=notes)
    notes.append("votes from label.csv (the 2016 release used by published FERPlus results), not fer2013new.csv")
    _ferplus_duplicates(ds, folder)
    return ds


def _ferplus_duplicates(ds: AuditDataset, folder: Path) -> None:
    split = folder.name.replace("FER2013", "")
    for base in (folder.parent, folder.parent.parent):
        extras = base / "extras" / "ferplus_to_fer2013.csv"
        if extras.is_file():
            break
    else:
        ds.notes.append("no extras/ferplus_to_fer2013.csv beside the data: duplicates not checked")
        return
    with open(extras, newline="") as f:
        reader = csv.DictReader(f)
        need = {"ferplus_name", "ferplus_split", "pixel_identical_group_id"}
        if not need <= set(reader.fieldnames or ()):
            raise DatasetError(f"{extras}: expected columns {sorted(need)}")
        rows = list(reader)
    group_of = {r["ferplus_name"]: r["pixel_identical_group_id"] for r in rows if r["ferplus_split"] == split}
    # models are trained on Train, so a copy there can inflate a Valid or Test result
    elsewhere = {r["pixel_identical_group_id"] for r in rows if r["ferplus_split"] == "Train" and split != "Train"}
    groups = np.array([group_of.get(n, "") for n in ds.names], object)
    ds.groups = groups
    ds.duplicate = np.array([g != "" and g in elsewhere for g in groups], bool)
    ds.duplicate_source = (f"{extras.name}: {int(ds.duplicate.sum())} of the {len(ds)} listed images have a "
                           "pixel-identical copy in FERPlus Train")


# ---- one folder per class ---------------------------------------------------------------------------

def load_folders(root: Path) -> AuditDataset:
    """One sub-folder of ``root`` per class (names or known synonyms), one label per image; files
    that are not images are skipped with a note. Raises DatasetError for a folder that names no class."""
    root = Path(root)
    names, paths, labels = [], [], []
    skipped = 0
    for d in sorted(x for x in root.iterdir() if x.is_dir()):
        c = class_index(d.name)
        if c is None:
            raise DatasetError(f"{d}: folder name {d.name!r} is not one of mien's classes ({', '.join(CLASSES)}) "
                               "or a known synonym")
        for f in sorted(d.rglob("*")):
            if not f.is_file():
                continue
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            names.append(f.relative_to(root).as_posix())
            paths.append(f)
            labels.append(c)
    if not names:
        raise DatasetError(f"{root}: no images in class folders")
    votes = np.zeros((len(names), K), np.int64)
    votes[np.arange(len(names)), labels] = 1
    notes = [f"{skipped} file(s) without an image suffix skipped"] if skipped else []
    return AuditDataset(root, "folders", names, paths, votes, CLASSES, False, notes=notes)


# ---- CSV manifest -----------------------------------------------------------------------------------

def _truthy(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "y", "t"):
        return True
    if v in ("0", "false", "no", "n", "f", ""):
        return False
    raise DatasetError(f"{where}: duplicate must be true/false, got {value!r}")


def label_columns(header: list[str], rows: list[dict[str, str]]) -> list[str]:
    """The columns that hold one label per image: at least half of their non-empty values are mien's
    classes or known synonyms (``happy``, ``angry``, …), so that a stray unknown label is reported on
    its row rather than hiding the column. Datasets name this column as they like, so it is found by
    what it holds, not by its name."""
    def holds_labels(column: str) -> bool:
        values = [str(row.get(column) or "").strip() for row in rows]
        values = [v for v in values if v]
        return bool(values) and 2 * sum(class_index(v) is not None for v in values) >= len(values)

    return [h for h in header if h is not None and holds_labels(h)]


def _label_column(header: list[str], rows: list[dict[str, str]], given: str | None, manifest: Path) -> str | None:
    if given is not None:
        if given not in header:
            raise DatasetError(f"{manifest}, row 1 (header): no column {given!r} (--label-column)")
        return given
    found = label_columns(header, rows)
    if len(found) > 1:
        raise DatasetError(f"{manifest}, row 1 (header): several columns hold class names ({', '.join(found)}); "
                           "choose one with --label-column")
    return found[0] if found else None


def _image_path(manifest: Path, rel: str) -> Path:
    """A manifest's path: absolute, relative to the manifest's folder, or to ``images/`` beside it."""
    if Path(rel).is_absolute():
        return Path(rel)
    direct = manifest.parent / rel
    beside = manifest.parent / "images" / rel
    return beside if not direct.is_file() and beside.is_file() else direct


def load_csv(manifest: Path, label_column: str | None = None) -> AuditDataset:
    """A CSV manifest: a path column and either one label per image (``label_column``, or the one
    column that holds class names, see ``label_columns``) or one vote-count column per class. Paths are relative to the manifest's
    folder or its ``images/`` folder. Raises DatasetError naming the row of any problem."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: no such file")
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        lower = {h.strip().lower(): h for h in header if h is not None}
        path_col = next((lower[c] for c in PATH_COLUMNS if c in lower), None)
        if path_col is None:
            raise DatasetError(f"{manifest}, row 1 (header): no path column (one of {', '.join(PATH_COLUMNS)})")
        vote_cols = {h: class_index(h) for h in header if h != path_col and class_index(h) is not None}
        extra_cols = [lower[c] for c in EXTRA_VOTE_COLUMNS if c in lower]
        rows = list(reader)
        label_col = _label_column(header, [r for r in rows if None not in r], label_column, manifest)
        if vote_cols and label_col:
            raise DatasetError(f"{manifest}, row 1 (header): has both a label column and vote columns; keep one")
        if not vote_cols and not label_col:
            raise DatasetError(f"{manifest}, row 1 (header): needs a label column (a column of class names, or "
                               f"--label-column) or vote-count columns named by the classes ({', '.join(CLASSES)})")
        if vote_cols and len(set(vote_cols.values())) < len(vote_cols):
            raise DatasetError(f"{manifest}, row 1 (header): two columns name the same class: {sorted(vote_cols)}")
        group_col, dup_col = lower.get("duplicate_group"), lower.get("duplicate")
        names, paths, votes, groups, dups = [], [], [], [], []
        seen: dict[str, int] = {}
        width = K + len(extra_cols) if vote_cols else K
        for line, row in enumerate(rows, start=2):
            where = f"{manifest}, row {line}"
            if None in row or any(v is None for v in row.values()):
                raise DatasetError(f"{where}: expected {len(header)} fields like the header, got "
                                   f"{len([v for v in row.values() if v is not None]) + len(row.get(None) or [])}")
            rel = row[path_col].strip()
            if not rel:
                raise DatasetError(f"{where}: empty path")
            img = _image_path(manifest, rel)
            if not img.is_file():
                raise DatasetError(f"{where}: image {img} is missing")
            if rel in seen:
                raise DatasetError(f"{where}: {rel!r} is listed twice (first on row {seen[rel]})")
            seen[rel] = line
            v = np.zeros(width, np.int64)
            if vote_cols:
                for col, c in vote_cols.items():
                    v[c] = _count(row[col], where, col)
                for j, col in enumerate(extra_cols):
                    v[K + j] = _count(row[col], where, col)
            else:
                c = class_index(row[label_col])
                if c is None:
                    raise DatasetError(f"{where}: {unknown_label(row[label_col])}")
                v[c] = 1
            names.append(rel)
            paths.append(img)
            votes.append(v)
            groups.append(row[group_col].strip() if group_col else "")
            dups.append(_truthy(row[dup_col], where) if dup_col else False)
    if not names:
        raise DatasetError(f"{manifest}: no rows")
    columns = CLASSES + tuple(c.lower() if c.lower() != "nf" else "NF" for c in extra_cols) if vote_cols else CLASSES
    ds = AuditDataset(manifest, "csv", names, paths, np.array(votes), columns, bool(vote_cols))
    if group_col or dup_col:
        ds.groups = np.array(groups, object)
        ds.duplicate = np.array(dups, bool)
        ds.duplicate_source = f"{manifest.name}: columns {', '.join(c for c in (group_col, dup_col) if c)}"
    if vote_cols and len(vote_cols) < K:
        missing = [CLASSES[c] for c in range(K) if c not in vote_cols.values()]
        ds.notes.append(f"no vote column for {', '.join(missing)}: counted as 0 votes")
    return ds


def _count(value: str, where: str, col: str) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        raise DatasetError(f"{where}: column {col!r}: vote count must be a whole number, got {value!r}") from None
    if n < 0:
        raise DatasetError(f"{where}: column {col!r}: negative vote count {n}")
    return n
