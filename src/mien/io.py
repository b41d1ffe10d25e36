"""Writing outputs: tables by suffix, and every file atomically, so that a crash never leaves a
half-written output and an output is replaced only by a complete one."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable

import pandas as pd
from .errors import MienError

FORMATS = (".csv", ".parquet", ".json", ".jsonl")
# CSV cells that a spreadsheet would read as a formula (OWASP's list, with CR): written with a
# leading apostrophe, which spreadsheets show as text. Parquet and JSON keep the exact text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEMP_NAME_CHARS = 40  # of the destination's name kept in its temporary file's name
MAX_TEMP_SUFFIX = 16


class OutputError(MienError, OSError):
    """An output destination that cannot be written; the message says which and why."""


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (ending in the same suffix, for writers that go by
    it); it replaces ``path`` only if the block succeeds, so a crash never leaves a half-written
    output. The temporary name is short (a file name near the 255-byte limit still works). The
    result gets the usual permissions (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if len(os.fsencode(path.suffix)) <= MAX_TEMP_SUFFIX else ""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:TEMP_NAME_CHARS]}.", suffix=f".tmp{suffix}", dir=path.parent)
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
    """``path`` as a Path when its suffix names a table format mien writes (``FORMATS``); raises
    ValueError otherwise, before any work is done."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"output {path} must end in one of {', '.join(FORMATS)}")
    return path


def check_destination(path: str | Path, folder: bool = False, probed: set[Path] | None = None) -> Path:
    """Raise ``OutputError`` unless ``path`` can be written: a file (or, with ``folder``, a folder)
    whose name fits the file system, in a folder that exists or can be made and that takes new
    files. Checked before any work, so that a run does not end in an error after it. ``probed``:
    folders already found to take new files (updated), for checking many outputs."""
    path = Path(path)
    what = "folder" if folder else "file"
    start = path if folder else path.parent
    existing = next((p for p in (start, *start.parents) if _exists(p)), Path("."))
    limit = os.pathconf(existing, "PC_NAME_MAX") if hasattr(os, "pathconf") and existing.is_dir() else 255
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > limit:
            raise OutputError(f"cannot write the {what} {path}: the name {part[:30]}… is longer than {limit} bytes")
    if folder and _exists(path) and not path.is_dir():
        raise OutputError(f"{path} is a file, not a folder")
    if not folder and path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name")
    if not existing.is_dir():
        raise OutputError(f"cannot write the {what} {path}: {existing} is a file, not a folder")
    if probed is not None and existing in probed:
        return path
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".mien-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write into {existing}: {exc.strerror or exc}") from None
    if probed is not None:
        probed.add(existing)
    return path


def _exists(path: Path) -> bool:
    try:
        path.lstat()
        return True
    except OSError:
        return False


def file_size_limit() -> int | None:
    """The process's file-size limit in bytes (``ulimit -f``), or None when there is none."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def csv_text(value):
    """A text cell as written to CSV: with a leading apostrophe when it starts like a formula."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def from_csv_text(value: str) -> str:
    """A text cell read back from a CSV that ``csv_text`` wrote: the apostrophe before a formula-like
    start is removed (so a name that really begins with ``'=`` reads back without its apostrophe)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def to_csv_safe(frame: pd.DataFrame, path, **kwargs) -> None:
    """``frame.to_csv`` with text cells neutralised (``csv_text``) and every cell that holds a
    line break (CR or LF) quoted, so that no name splits a row or runs in a spreadsheet."""
    text = [c for c in frame.columns if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)]
    if text:
        frame = frame.assign(**{c: frame[c].map(csv_text, na_action="ignore") for c in text})
    frame.to_csv(path, index=False, lineterminator="\r\n", **kwargs)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` in the format its suffix names (.csv, .parquet, .json, .jsonl),
    atomically; returns the path."""
    return write_tables([frame], path)


def write_tables(frames: Iterable[pd.DataFrame], path: str | Path) -> Path:
    """Write frames with one set of columns (e.g. the parts of a long run, each from ``to_frame``)
    as one table by suffix, atomically, holding one frame in memory at a time. JSON is an array
    of row objects (``.json``) or one row object a line (``.jsonl``), as pandas, DuckDB and jq
    read them; ``mien schema`` says what each column means."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = check_output_path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        out = stack.enter_context(open(tmp, "w", encoding="utf-8")) if suffix in (".json", ".jsonl") else None
        writer, separator, i = None, "[\n" if suffix == ".json" else "", -1
        for i, frame in enumerate(frames):
            if suffix == ".parquet":
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or stack.enter_context(pq.ParquetWriter(tmp, table.schema))
                writer.write_table(table)
            elif suffix == ".csv":
                to_csv_safe(frame, tmp, mode="a" if i else "w", header=i == 0)
            else:
                for record in json.loads(frame.to_json(orient="records", force_ascii=False)):
                    out.write(separator + json.dumps(record, ensure_ascii=False))
                    separator = ",\n" if suffix == ".json" else "\n"
        if i < 0:
            raise ValueError("write_tables needs at least one frame")
        if suffix == ".json":
            out.write("[]\n" if separator == "[\n" else "\n]\n")
        elif suffix == ".jsonl" and separator:
            out.write("\n")
    return path
