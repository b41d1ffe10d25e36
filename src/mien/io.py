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

from .results import schema_dict

FORMATS = (".csv", ".parquet", ".json")


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path`` (ending in the same suffix, for writers that go by
    it); it replaces ``path`` only if the block succeeds, so a crash never leaves a half-written
    output. The result gets the usual permissions (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
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
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"output {path} must end in one of {', '.join(FORMATS)}")
    return path


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write by suffix (.csv, .parquet, .json), atomically."""
    return write_tables([frame], path)


def write_tables(frames: Iterable[pd.DataFrame], path: str | Path) -> Path:
    """Write frames with one set of columns (e.g. the parts of a long run, each from ``to_frame``)
    as one table by suffix, atomically, holding one frame in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = check_output_path(path)
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp, contextlib.ExitStack() as stack:
        if suffix == ".json":
            out = stack.enter_context(open(tmp, "w", encoding="utf-8"))
            head = json.dumps({"columns": schema_dict(), "rows": []}, ensure_ascii=False, indent=1)
            out.write(head[: head.rindex("[") + 1])  # the rows' records follow, one a line
        writer, separator, i = None, "\n", -1
        for i, frame in enumerate(frames):
            if suffix == ".parquet":
                table = pa.Table.from_pandas(frame, preserve_index=False)
                writer = writer or stack.enter_context(pq.ParquetWriter(tmp, table.schema))
                writer.write_table(table)
            elif suffix == ".csv":
                frame.to_csv(tmp, mode="a" if i else "w", header=i == 0, index=False)
            else:
                for record in json.loads(frame.to_json(orient="records", force_ascii=False)):
                    out.write(separator + json.dumps(record, ensure_ascii=False))
                    separator = ",\n"
        if i < 0:
            raise ValueError("write_tables needs at least one frame")
        if suffix == ".json":
            out.write("\n]\n}\n")
    return path
