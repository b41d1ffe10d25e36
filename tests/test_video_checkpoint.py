"""Checkpoints are data only: a session's state round-trips exactly, and a planted, foreign or
malformed checkpoint is refused without running anything. The work folder is locked."""
import json
import os
import pickle
import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

from mien.cli import main
from mien.video.checkpoint import (STATE_FILE, Checkpoint, CheckpointUnusable, RunLocked, WorkFolderLock, read_checkpoint,
                                   write_checkpoint)
from mien.video.sinks import ReportFaces

CLIP = "demo/openmpf/video_01.mp4"


def assert_same(a, b, where="state"):
    """Deep equality of plain data: dataclasses, dicts (with their order), sequences, arrays."""
    assert type(a) is type(b), where
    if hasattr(a, "__dataclass_fields__"):
        for f in fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def checkpoint(shared_data) -> Checkpoint:
    """A run 80 frames into a video: tracks, smoothers, baselines, track scores, and the report's
    faces (thumbnails, episode apexes)."""
    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.analysis import VideoOptions, read_video

    analyzer = Analyzer(Options(mode=Mode.VIDEO, baseline_min_frames=5))
    report_faces = ReportFaces(thumbnails_every_s=0.5)
    for frame in read_video(shared_data / CLIP, VideoOptions(end_s=80 / 30)):
        report_faces.add(frame, analyzer.analyze(frame, source="clip"))
    state = analyzer.video_state
    assert state.tracker.ids and state.au_baselines and state.track_scores
    assert state.smoother.tracks and state.perceived_smoother.tracks and sum(map(len, report_faces.thumbnails.values())) > 1
    assert report_faces.apexes.crops
    return Checkpoint(["part-00000.parquet"], frame.index, state, {ReportFaces.name: report_faces.state()})


def _restored(checkpoint) -> ReportFaces:
    sink = ReportFaces()
    sink.restore(*checkpoint.sinks[ReportFaces.name])
    return sink


def test_a_run_checkpoint_round_trips_exactly(checkpoint, tmp_path):
    write_checkpoint(tmp_path, "fp", checkpoint)
    (tmp_path / "part-00000.parquet").write_bytes(b"")
    saved = read_checkpoint(tmp_path, "fp")
    assert_same(checkpoint, saved, "checkpoint")
    before, after = _restored(checkpoint), _restored(saved)
    assert_same(before.thumbnails, after.thumbnails, "thumbnails")
    assert_same(before.apexes.crops, after.apexes.crops, "apex faces")
    assert_same(before.apexes.tracks, after.apexes.tracks, "episodes")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".npz") == [json.loads((tmp_path / STATE_FILE).read_text())["arrays"]]


def test_another_runs_checkpoint_is_refused_before_its_arrays_are_read(checkpoint, tmp_path):
    write_checkpoint(tmp_path, "theirs", Checkpoint(session=checkpoint.session))
    for npz in tmp_path.glob("*.npz"):
        npz.write_bytes(b"not read")
    with pytest.raises(CheckpointUnusable, match="another input or other options"):
        read_checkpoint(tmp_path, "ours")


def _tamper(work, change):
    meta = json.loads((work / STATE_FILE).read_text())
    change(meta)
    (work / STATE_FILE).write_text(json.dumps(meta))


def _replace_arrays(work, change):
    """Rewrite the arrays with ``change`` applied, keeping the checksum right (as an attacker would)."""
    import hashlib

    meta = json.loads((work / STATE_FILE).read_text())
    with np.load(work / meta["arrays"]) as npz:
        arrays = dict(npz)
    change(arrays)
    np.savez(work / meta["arrays"], **arrays)
    meta["arrays_sha256"] = hashlib.sha256((work / meta["arrays"]).read_bytes()).hexdigest()
    (work / STATE_FILE).write_text(json.dumps(meta))


def _first_key(arrays, prefix):
    return next(k for k in arrays if k.startswith(prefix))


MALFORMED = {
    "not json": lambda w: (w / STATE_FILE).write_text("{"),
    "a list": lambda w: (w / STATE_FILE).write_text("[]"),
    "other version": lambda w: _tamper(w, lambda m: m.update(version=99)),
    "part outside the folder": lambda w: _tamper(w, lambda m: m.update(parts=["../../etc/passwd"])),
    "arrays outside the folder": lambda w: _tamper(w, lambda m: m.update(arrays="../state-x.npz")),
    "missing key": lambda w: _tamper(w, lambda m: m.pop("tracker")),
    "float track id": lambda w: _tamper(w, lambda m: m["tracker"].update(ids=[0.5])),
    "string time": lambda w: _tamper(w, lambda m: m["sinks"][ReportFaces.name]["thumbnails"][0][1].__setitem__(0, "x")),
    "sink file outside the folder": lambda w: _tamper(w, lambda m: m["sinks"][ReportFaces.name].update(files=["../x"])),
    "sink file missing": lambda w: _tamper(w, lambda m: m["sinks"][ReportFaces.name].update(files=["annotated-00000.mp4"])),
    "float apex frame": lambda w: _tamper(w, lambda m: m["sinks"][ReportFaces.name]["crops"][0].__setitem__(1, 0.5)),
    "ended episodes not pairs": lambda w: _tamper(w, lambda m: m["sinks"][ReportFaces.name]["closed"].append(5)),
    "wrong episode array": lambda w: _replace_arrays(w, lambda a: a.update({_first_key(a, "sink:report-faces:apex."): np.zeros(2)})),
    "array of no sink": lambda w: _replace_arrays(w, lambda a: a.update({"sink:nobody:x": np.zeros(1)})),
    "checksum": lambda w: _tamper(w, lambda m: m.update(arrays_sha256="0" * 64)),
    "wrong mesh shape": lambda w: _replace_arrays(w, lambda a: a.update(tracker_meshes=np.zeros((1, 5, 3), np.float32))),
    "wrong smoother shape": lambda w: _replace_arrays(w, lambda a: a.update({_first_key(a, "perceived_smoother"): np.zeros(3)})),
    "missing array": lambda w: _replace_arrays(w, lambda a: a.pop(_first_key(a, "au_baselines_"))),
    "wrong baseline window": lambda w: _replace_arrays(w, lambda a: a.update({_first_key(a, "au_baselines_"): np.zeros((3, 4))})),
    "extra array": lambda w: _replace_arrays(w, lambda a: a.update(surprise=np.zeros(1))),
    "object array": lambda w: _replace_arrays(w, lambda a: a.update(tracker_meshes=np.array([{"x": 1}], object))),
    "not a zip": lambda w: _replace_arrays(w, lambda a: None) or _corrupt_zip(w),
}


def _corrupt_zip(work):
    import hashlib

    meta = json.loads((work / STATE_FILE).read_text())
    (work / meta["arrays"]).write_bytes(b"PK\x03\x04 broken")
    meta["arrays_sha256"] = hashlib.sha256(b"PK\x03\x04 broken").hexdigest()
    (work / STATE_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", list(MALFORMED), ids=list(MALFORMED))
def test_a_malformed_checkpoint_is_unusable(checkpoint, tmp_path, damage):
    write_checkpoint(tmp_path, "fp", Checkpoint([], checkpoint.last_index, checkpoint.session, checkpoint.sinks))
    MALFORMED[damage](tmp_path)
    with pytest.raises(CheckpointUnusable):
        _restored(read_checkpoint(tmp_path, "fp"))


class _Planted:
    """A pickle that, if loaded, creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_checkpoint_is_refused_and_never_run(shared_data, tmp_path, capsys):
    out = tmp_path / "clip.parquet"
    work = tmp_path / ".clip.parquet.mien-partial"
    work.mkdir()
    marker = tmp_path / "code-ran"
    (work / "checkpoint.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    pickle.loads((work / "checkpoint.pkl").read_bytes()).close()  # the payload works when unpickled...
    assert marker.exists()
    marker.unlink()
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out), "--end", "0.5"]) == 0
    assert not marker.exists()  # ...and mien did not unpickle it
    err = capsys.readouterr().err
    assert "mien: warning:" in err and "checkpoint.pkl is in a format mien no longer reads" in err and "starting afresh" in err
    assert out.exists() and not work.exists()


def test_no_pickle_in_the_package():
    import mien

    root = os.path.dirname(mien.__file__)
    users = subprocess.run(["grep", "-rlE", r"^\s*(import pickle|from pickle)|pickle\.load", root], capture_output=True, text=True).stdout
    assert users == ""


def test_a_held_work_folder_stops_a_second_run_without_touching_it(shared_data, tmp_path, capsys):
    out = tmp_path / "clip.parquet"
    work = tmp_path / ".clip.parquet.mien-partial"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from mien.video.checkpoint import WorkFolderLock\n"
                               f"WorkFolderLock({str(work)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        (work / "part-00000.parquet").write_bytes(b"the first run's work")
        assert main(["analyze", str(shared_data / CLIP), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"another mien run (pid {holder.pid} on" in err
        assert (work / "part-00000.parquet").read_bytes() == b"the first run's work" and not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # its process is gone: the lock (file still there, naming the dead pid) is taken over
    assert (work / "lock").read_text().startswith(f"pid {holder.pid}")
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out), "--end", "0.5"]) == 0
    assert out.exists() and not work.exists()


def test_a_planted_link_as_work_folder_or_part_is_refused(checkpoint, shared_data, tmp_path, capsys):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    out = tmp_path / "clip.parquet"
    (tmp_path / ".clip.parquet.mien-partial").symlink_to(precious)
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out)]) == 2
    assert "is not a folder mien made" in capsys.readouterr().err
    assert (precious / "thesis.tex").read_text() == "years of work"

    work = tmp_path / "work"
    work.mkdir()
    write_checkpoint(work, "fp", checkpoint)
    (work / "part-00000.parquet").symlink_to(precious / "thesis.tex")
    with pytest.raises(CheckpointUnusable, match="not a plain file"):
        read_checkpoint(work, "fp")


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with WorkFolderLock(tmp_path):
        with pytest.raises(RunLocked, match="another mien run"):
            WorkFolderLock(tmp_path).acquire()
    with WorkFolderLock(tmp_path):  # released
        pass


def test_a_sink_whose_saved_state_breaks_its_restore_starts_the_run_afresh(tmp_path):
    from mien.video.analysis import _resume
    from mien.video.checkpoint import CheckpointIgnored
    from mien.video.sinks import FrameSink

    class Fragile(FrameSink):
        name = "fragile"

        def restore(self, meta, arrays):
            raise TypeError("cannot unpack non-iterable int object")

    (tmp_path / "part-00000.parquet").write_bytes(b"")
    write_checkpoint(tmp_path, "fp", Checkpoint(["part-00000.parquet"], 10, sinks={"fragile": ({}, {})}))
    with pytest.warns(CheckpointIgnored, match="fragile.*malformed"):
        assert _resume(tmp_path, "fp", None, [Fragile()]) is None
    assert not (tmp_path / "part-00000.parquet").exists()


@pytest.mark.parametrize("meta", [
    {"files": ["annotated-00001.mp4"], "first_time": 0.0, "next_pts": 5},  # a gap: the next segment would overwrite it
    {"files": ["annotated-00000.mp4"], "first_time": float("nan"), "next_pts": 5},
    {"files": ["annotated-00000.mp4"], "first_time": 0.0, "next_pts": -3},
    {"files": ["../annotated-00000.mp4"], "first_time": 0.0, "next_pts": 5},
], ids=["gap", "nan start", "negative clock", "outside"])
def test_an_annotated_videos_malformed_state_is_refused(meta):
    from mien.video.sinks import AnnotatedVideo

    sink = AnnotatedVideo("/tmp/never-written", codec=("libx264", ".mp4"))
    with pytest.raises(CheckpointUnusable):
        sink.restore({"codec": ["libx264", ".mp4"], **meta}, {})


@pytest.mark.parametrize("every", [0, -5])
def test_checkpoints_less_often_than_every_frame_is_refused_before_anything_runs(tmp_path, capsys, every):
    from mien import Analyzer, Mode, Options, run_video
    from mien.errors import OptionsError

    video = tmp_path / "clip.mp4"  # never opened: the value is refused first
    with pytest.raises(OptionsError, match="checkpoint_every must be at least 1"):
        run_video(video, tmp_path / "out.csv", Analyzer(Options(mode=Mode.VIDEO)), checkpoint_every=every)
    assert main(["analyze", str(video), "-o", str(tmp_path / "out"), "--checkpoint-every", str(every)]) == 2
    assert "--checkpoint-every must be at least 1 frame" in capsys.readouterr().err
    assert not any(tmp_path.glob("out*"))
