"""A corpus on a Ray cluster: one Ray task per input (and per piece of a long video), written as a
Parquet dataset with a manifest, so that a rerun does only what is not finished.

Layout under the output folder (a path every node sees; see docs/scale.md for object storage):

- ``faces/<key>.parquet``: the rows of one input (one per face, or per frame of a video), each with
  ``source``; the folder reads whole with ``pyarrow.dataset``, DuckDB (``read_parquet('faces/*.parquet')``)
  or Spark;
- ``tracks/<key>.parquet`` and ``episodes/<key>.parquet``: a video's tracks and action-unit
  episodes, with ``source`` as their first column (none for a video without them);
- ``manifest.json``: per input, its stamp (size and modification time) and the parts it wrote.

Each task runs on one CPU (declared, so that Ray packs one task per core) in a Ray worker
process that loads the models once (per kind of analysis) and keeps them for its later tasks. A task writes its parts
atomically under names fixed by its input, so a task that Ray retries after its worker died
overwrites, never duplicates, and the manifest lists an input only after its task returned. An
input whose stamp changed since it was recorded is redone.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..analyzer import Analyzer, Options
from ..io import atomic_path, write_table
from ..results import to_frame
from ..video.analysis import companion_path
from .chunks import PieceJob, SeamError, analyze_piece, finish_video, split_videos
from .tasks import ImageJob, VideoJob, VideoOutcome, analyze_image, analyze_video
from .workers import run_task
from ..errors import MienError

INSTALL_HINT = 'Ray is not installed: pip install "mien[ray]"'
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
IN_FLIGHT = 1000  # tasks submitted ahead of the results: bounds the driver's memory for large corpora
TASK_RETRIES = 3  # attempts Ray makes after a worker died mid-task


class RayMissing(MienError, RuntimeError):
    """--ray was asked for, and Ray is not installed."""


def import_ray():
    """The ``ray`` module; raises RayMissing saying how to install it when it is not installed."""
    try:
        import ray
    except ImportError:
        raise RayMissing(INSTALL_HINT) from None
    return ray


def input_key(path: Path) -> str:
    """A part name for an input: readable, and distinct for inputs with the same name in different folders."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', path.stem)[:60]}-{digest}"


def input_stamp(path: Path) -> list:
    """Changes when an input's content is replaced or edited: size and modification time (of each image of a sequence)."""
    files = sorted(f for f in path.iterdir() if f.is_file()) if path.is_dir() else [path]
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]


# -------------------------------------------------------------------------------- in the workers
@dataclass(frozen=True)
class Done:
    """What a Ray task reports for one input: the face rows it wrote, why the input could not be read
    (empty when it could) and notes for the user (one per frame that could not be decoded)."""

    faces: int
    error: str = ""  # the input could not be read (its rows say so too)
    notes: tuple[str, ...] = ()


def image_part(analyzer: Analyzer, job: tuple[ImageJob, Path, bool]) -> Done:
    """Ray task: analyse one image (``job``: the image's job, the Parquet part to write, whether to
    include landmarks) and write its rows to the part atomically; returns what it did."""
    image, part, landmarks = job
    faces = analyze_image(analyzer, image).faces
    with atomic_path(part) as tmp:
        to_frame(faces, landmarks=landmarks).to_parquet(tmp, index=False)
    return Done(len(faces), faces.error)


def publish_video(outcome: VideoOutcome, root: Path, key: str) -> Done:
    """Move a finished video's tables from its work folder into the dataset, tracks and episodes with ``source``."""
    job = outcome.job
    notes = tuple(f"{job.path}: {m}" for m in outcome.frame_errors)
    if outcome.stopped:
        raise RuntimeError(f"{job.path}: {outcome.stopped}")
    for table in ("tracks", "episodes"):
        source = companion_path(job.out, table)
        if source.exists():
            frame = pd.read_parquet(source)
            if len(frame):  # an empty table has no column types: it would muddle the dataset's schema
                if "source" not in frame:
                    frame.insert(0, "source", pd.array([str(job.path)] * len(frame), dtype="string"))
                write_table(frame, root / table / f"{key}.parquet")
            source.unlink()
    (root / "faces").mkdir(parents=True, exist_ok=True)
    os.replace(job.out, root / "faces" / f"{key}.parquet")
    return Done(outcome.run.faces if outcome.run else 0, outcome.error, notes)


def video_part(analyzer: Analyzer, job: tuple[VideoJob, Path, str]) -> Done:
    """Ray task: analyse one whole video (``job``: the video's job, the dataset folder and the
    input's key) and move its tables into the dataset; returns what it did."""
    video, root, key = job
    return publish_video(analyze_video(analyzer, video), root, key)


def stitch_part(analyzer: Analyzer, job: tuple[VideoJob, list[PieceJob], Path, str]) -> Done:
    """Join a video's finished pieces (see ``chunks``) into its parts of the dataset; pieces that do
    not join (see ``SeamError``) are replaced by a whole run of the video."""
    video, pieces, root, key = job
    try:
        outcome = finish_video(video, pieces, analyzer.options)
    except SeamError:
        outcome = analyze_video(analyzer, video)
    return publish_video(outcome, root, key)


# -------------------------------------------------------------------------------------- manifest
def read_manifest(root: Path) -> dict:
    """The inputs recorded in the dataset's ``manifest.json`` (input key -> stamp and parts); empty
    when there is none, it cannot be read, or another version wrote it."""
    try:
        saved = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return saved.get("inputs", {}) if saved.get("version") == MANIFEST_VERSION else {}


def write_manifest(root: Path, inputs: dict) -> None:
    """Write the dataset's ``manifest.json`` with ``inputs`` (input key -> stamp and parts), atomically."""
    with atomic_path(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps({"version": MANIFEST_VERSION, "inputs": inputs}, indent=1, sort_keys=True))


def is_done(entry: dict | None, stamp: list, root: Path) -> bool:
    """Whether an input recorded as ``entry`` needs no rerun: its recorded stamp equals ``stamp``
    (the input is unchanged) and every part it wrote is still under ``root``."""
    return bool(entry) and entry["stamp"] == stamp and all((root / p).exists() for p in entry["parts"])


def remove_strays(root: Path) -> None:
    """Temporary files of writes cut short by a killed worker (its retry wrote the part again)."""
    for folder in ("faces", "tracks", "episodes"):
        for stray in (root / folder).glob(".*.tmp.parquet"):
            stray.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------- driver
def run_corpus(address: str, image_jobs: list[ImageJob], video_jobs: list[VideoJob], image_options: Options,
               video_mode: Options, root: Path, landmarks: bool, chunk_s: float, say=print) -> int:
    """Analyse a corpus on the Ray cluster at ``address`` ("auto": the one this machine is part of)
    into the dataset under ``root``. Returns 0, or 1 when some input failed."""
    ray = import_ray()
    root.mkdir(parents=True, exist_ok=True)
    work = root / ".work"
    manifest = read_manifest(root)
    todo: list[tuple[Path, str, list]] = []
    for path in [j.path for j in image_jobs] + [j.path for j in video_jobs]:
        key, stamp = input_key(path), input_stamp(path) if path.exists() else []
        if not is_done(manifest.get(key), stamp, root):
            todo.append((path, key, stamp))
    keys = {path: (key, stamp) for path, key, stamp in todo}
    say(f"mien: {len(image_jobs) + len(video_jobs)} input(s), {len(todo)} to analyse ({len(image_jobs) + len(video_jobs) - len(todo)} finished before)")
    images = [j for j in image_jobs if j.path in keys]
    # a cluster writes a Parquet dataset: no report or annotated video (the command refuses them with --ray), so a
    # video in pieces is only stitched (chunks.finish_video), never drawn piece by piece (scale.pictures)
    videos = [replace(j, out=work / f"{keys[j.path][0]}.parquet", report=None, annotated=None)
              for j in video_jobs if j.path in keys]
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    pieces = split_videos(videos, video_mode, chunk_s, int(ray.cluster_resources().get("CPU", 1)))
    tasks = [(image_part, image_options, (j, root / "faces" / f"{keys[j.path][0]}.parquet", landmarks)) for j in images]
    tasks += [(video_part, video_mode, (j, root, keys[j.path][0])) for j in videos if j not in pieces]
    tasks += [(analyze_piece, video_mode, p) for parts in pieces.values() for p in parts]
    remote = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(run_task)
    failed = finished = 0
    pending: dict = {}
    queue = iter(tasks)
    follow_ups: list = []  # a video's stitching, once its last piece is in
    waiting = {video: {p.piece.number for p in parts} for video, parts in pieces.items()}

    def record(path: Path, parts: list[str], done: Done) -> None:
        key, stamp = keys[path]
        manifest[key] = {"source": str(path), "stamp": stamp, "parts": parts, "faces": done.faces, "error": done.error}

    try:
        while True:
            while len(pending) < IN_FLIGHT and (task := follow_ups.pop() if follow_ups else next(queue, None)) is not None:
                pending[remote.remote(task)] = task
            if not pending:
                break
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            fn, _, job = pending.pop(ready)
            finished += 1
            if finished % 50 == 0:
                write_manifest(root, manifest)
            try:
                done = ray.get(ready)
            except Exception as exc:  # a task that failed after its retries: the rest go on
                failed += 1
                video = job.video if fn is analyze_piece else job[0]
                waiting.pop(video, None)
                say(f"mien: error: {video.path}: the task failed (run the command again to redo it): {exc}")
                continue
            if fn is image_part:
                if done.error:
                    failed += 1
                    say(f"mien: error: {job[0].path}: {done.error}")
                record(job[0].path, [f"faces/{keys[job[0].path][0]}.parquet"], done)
            elif fn is analyze_piece:
                left = waiting.get(job.video)
                if left is not None:
                    left.discard(job.piece.number)
                    if not left:
                        follow_ups.append((stitch_part, video_mode, (job.video, pieces[job.video], root, keys[job.video.path][0])))
            else:
                failed += _record_video(job[0], root, keys[job[0].path][0], done, record, say)
    finally:
        write_manifest(root, manifest)
        ray.shutdown()
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    remove_strays(root)
    say(f"mien: dataset in {root} (faces/, tracks/, episodes/, {MANIFEST})")
    return 1 if failed else 0


def _record_video(video: VideoJob, root: Path, key: str, done: Done, record, say) -> int:
    for note in done.notes:
        say(f"mien: error: {note}")
    if done.error:
        say(f"mien: error: {video.path}: {done.error}")
    parts = [f"faces/{key}.parquet"] + [f"{t}/{key}.parquet" for t in ("tracks", "episodes") if (root / t / f"{key}.parquet").exists()]
    record(video.path, parts, done)
    return int(bool(done.error or done.notes))
