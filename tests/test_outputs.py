"""Outputs: distinct names, destinations checked before the analysis, nothing computed is lost
to a failed write, CSV that no spreadsheet runs, JSON that pandas and DuckDB read, exit codes."""
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mien.cli import main
from mien.io import csv_text, from_csv_text, write_table
from mien.outputs import output_names

CLIP = "demo/openmpf/video_01.mp4"
SHORT = ["--end", "0.2"]  # a few frames are enough to test where the outputs go


@pytest.fixture()
def face_png(tmp_path, astronaut) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(astronaut).resize((256, 256)).save(path)
    return path


def copy(src: Path, *targets: Path) -> list[Path]:
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
    return list(targets)


# ----------------------------------------------------------------------------- distinct names
def test_output_names_mirror_the_inputs_and_keep_a_suffix_only_to_tell_inputs_apart(tmp_path):
    a, b, c, d = (tmp_path / "a/img.jpg", tmp_path / "b/img.jpg", tmp_path / "b/img.png", tmp_path / "b/other.jpg")
    assert output_names([a, b, c, d]) == {a: "a/img", b: "b/img.jpg", c: "b/img.png", d: "b/other"}
    assert output_names([tmp_path / "x.mp4"]) == {tmp_path / "x.mp4": "x"}
    assert output_names([a, a]) == {a: "img"}  # one input given twice is no clash
    images = tmp_path / "IMAGES.mp4"
    assert output_names([images], reserved=("images",)) == {images: "IMAGES.mp4"}


def test_same_named_videos_in_two_folders_get_two_tables(shared_data, tmp_path):
    videos = copy(shared_data / CLIP, tmp_path / "cam1/clip.mp4", tmp_path / "cam2/clip.mp4")
    out = tmp_path / "out"
    assert main(["analyze", *map(str, videos), "-o", str(out), "--report", str(tmp_path / "rep"), *SHORT]) == 0
    for cam, video in zip(("cam1", "cam2"), videos):
        table = pd.read_parquet(out / cam / "clip.parquet")
        assert set(table["source"]) == {str(video)}
        assert (out / cam / "clip.tracks.parquet").exists() and (out / cam / "clip.episodes.parquet").exists()
        assert str(video) in (tmp_path / "rep" / cam / "clip.html").read_text()


def test_a_video_named_images_does_not_replace_the_images_table(shared_data, tmp_path, face_png):
    video, = copy(shared_data / CLIP, tmp_path / "images.mp4")
    out = tmp_path / "out"
    assert main(["analyze", str(face_png), str(video), "-o", str(out), "--format", "csv", *SHORT]) == 0
    assert set(pd.read_csv(out / "images.csv")["source"]) == {str(face_png)}
    assert set(pd.read_csv(out / "images.mp4.csv")["source"]) == {str(video)}


def test_annotated_images_of_same_named_inputs_are_all_kept(tmp_path, face_png):
    inputs = copy(face_png, tmp_path / "a/img.jpg", tmp_path / "b/img.jpg", tmp_path / "b/img.png")
    ann = tmp_path / "ann"
    assert main(["analyze", *map(str, inputs), "-o", str(tmp_path / "t.csv"), "--annotate", str(ann)]) == 0
    pictures = sorted(str(p.relative_to(ann)) for p in ann.rglob("*_annotated.jpg"))
    assert pictures == ["a/img_annotated.jpg", "b/img.jpg_annotated.jpg", "b/img.png_annotated.jpg"]


def test_outputs_that_would_still_clash_are_refused_before_the_analysis(shared_data, tmp_path, capsys):
    videos = copy(shared_data / CLIP, tmp_path / "x.mp4", tmp_path / "x.tracks.mp4")
    assert main(["analyze", *map(str, videos), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "would both be written to" in err and "x.tracks.parquet" in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------- destinations and failures
@pytest.mark.parametrize("case", ["table onto a folder", "annotate onto a file", "report onto a file",
                                  "report onto a folder", "name too long", "below a file", "-o folder is a file"])
def test_an_unwritable_destination_stops_the_run_before_the_analysis(shared_data, tmp_path, face_png, capsys, case):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "file").write_text("")
    video = str(shared_data / CLIP)
    argv = {
        "table onto a folder": [str(face_png), "-o", str(tmp_path / "folder.csv")],
        "annotate onto a file": [str(face_png), "-o", str(tmp_path / "t.csv"), "--annotate", str(tmp_path / "file")],
        "report onto a file": [video, video, "-o", str(tmp_path / "out"), "--report", str(tmp_path / "file")],
        "report onto a folder": [video, "-o", str(tmp_path / "t.csv"), "--report", str(tmp_path / "folder.csv")],
        "name too long": [str(face_png), "-o", str(tmp_path / ("n" * 300 + ".csv"))],
        "below a file": [str(face_png), "-o", str(tmp_path / "file" / "t.csv")],
        "-o folder is a file": [video, video, "-o", str(tmp_path / "file")],
    }[case]
    assert main(["analyze", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mien: error: ") and "Traceback" not in err and "image(s)" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the other destination checks still run")
def test_a_read_only_folder_stops_the_run_before_the_analysis(tmp_path, face_png, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    assert main(["analyze", str(face_png), "-o", str(locked / "t.csv")]) == 2
    assert "cannot write into" in capsys.readouterr().err


def test_a_file_name_near_the_limit_is_written(tmp_path, face_png):
    out = tmp_path / ("n" * 251 + ".csv")  # 255 bytes: the old temporary name was longer than allowed
    assert main(["analyze", str(face_png), "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == 1


def test_a_table_that_cannot_be_written_is_rescued(tmp_path, face_png, monkeypatch, capsys):
    import errno

    import mien.cli

    out = tmp_path / "t.csv"

    def disk_full_at_out(frame, path):
        if Path(path) == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_table(frame, path)

    monkeypatch.setattr(mien.cli, "write_table", disk_full_at_out)
    assert main(["analyze", str(face_png), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "could not write" in err and "No space left on device" in err
    rescued = Path(err.split("the table was written to ")[1].split(" instead")[0])
    try:
        assert pd.read_csv(rescued)["status"].tolist() == ["ok"]
    finally:
        rescued.unlink()


def test_pictures_that_cannot_be_written_do_not_stop_the_analysis(tmp_path, face_png, monkeypatch, capsys):
    import errno

    import mien.annotate

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mien.annotate, "write_annotations", disk_full)
    out = tmp_path / "t.csv"
    # one worker: the patch reaches this process only
    assert main(["analyze", str(face_png), str(face_png), "-o", str(out), "--annotate", str(tmp_path / "ann"),
                 "--workers", "1"]) == 1
    assert "could not write the pictures of" in capsys.readouterr().err
    assert pd.read_csv(out)["status"].tolist() == ["ok", "ok"]


def test_a_file_size_limit_ends_in_a_message_not_a_traceback(tmp_path, face_png):
    out = tmp_path / "t.csv"
    out.write_text("previous\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    run = subprocess.run([sys.executable, "-m", "mien", "analyze", str(face_png), "-o", str(out)], preexec_fn=limit,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "files are limited to 2000 bytes (ulimit -f)" in run.stderr and "could not write" in run.stderr
    assert "Traceback" not in run.stderr and out.read_text() == "previous\n"


def test_a_video_whose_tables_cannot_be_written_keeps_its_work_and_finishes_later(shared_data, tmp_path, monkeypatch, capsys):
    import errno

    import mien.video.analysis as analysis

    out = tmp_path / "clip.parquet"
    real = analysis.write_tables

    def disk_full(frames, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(analysis, "write_tables", disk_full)
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out), *SHORT]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the analysed frames are kept in" in err
    monkeypatch.setattr(analysis, "write_tables", real)
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out), *SHORT]) == 0
    assert "resumed after frame" in capsys.readouterr().err and len(pd.read_parquet(out)) > 0


# ------------------------------------------------------------------------------ hostile names
HOSTILE = ["=HYPERLINK(\"http://x\")", "+1+2", "-2", "@SUM(A1)", "\tlead tab", "\rlead cr", "mid\rcr", "mid\nlf",
           "quote\"and,comma", "plain"]


def test_hostile_names_round_trip_through_csv_parquet_and_json(tmp_path):
    frame = pd.DataFrame({"source": pd.array(HOSTILE, dtype="string"), "face": pd.array(range(len(HOSTILE)), dtype="Int64"),
                          "yaw": np.linspace(-5, 5, len(HOSTILE), dtype=np.float32)})
    for suffix in (".csv", ".parquet", ".json", ".jsonl"):
        write_table(frame, tmp_path / f"t{suffix}")
    csv = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert len(csv) == len(HOSTILE)  # no name split a row
    assert csv["source"].tolist() == [csv_text(n) for n in HOSTILE]
    assert [from_csv_text(n) for n in csv["source"]] == HOSTILE  # the documented rule undone
    assert not any(n.startswith(("=", "+", "-", "@", "\t", "\r")) for n in csv["source"])
    assert csv["yaw"].min() < 0  # numbers are not text: a negative number stays a number
    assert pd.read_parquet(tmp_path / "t.parquet")["source"].tolist() == HOSTILE
    assert [r["source"] for r in json.loads((tmp_path / "t.json").read_text())] == HOSTILE
    assert pd.read_json(tmp_path / "t.jsonl", lines=True)["source"].tolist() == HOSTILE


def test_analyze_neutralises_a_hostile_file_name(tmp_path, face_png, monkeypatch):
    hostile = "=cmd|' calc'!A0.png"
    shutil.copy(face_png, tmp_path / hostile)
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", hostile, "-o", "t.csv"]) == 0
    assert pd.read_csv(tmp_path / "t.csv")["source"].tolist() == ["'" + hostile]


def test_audit_predictions_csv_is_neutralised(tmp_path):
    from test_audit import brightness_model, face_png, run_cli

    names = ["=1+1.png", "@SUM(A1).png", "-2.png", "plain.png"]
    for i, name in enumerate(names):
        face_png(tmp_path / "data" / name, 220 if i % 2 else 30, i)
    (tmp_path / "data" / "labels.csv").write_text("path,label\n" + "".join(f"{n},{'happy' if i % 2 else 'sad'}\n"
                                                                          for i, n in enumerate(names)))
    out = tmp_path / "out"
    assert run_cli(["audit", str(tmp_path / "data"), "--model", str(brightness_model(tmp_path)), "-o", str(out),
                    "--no-strata", "--bootstrap", "20"]) == 0
    image = pd.read_csv(out / "predictions.csv", keep_default_na=False)["image"]
    assert sorted(image) == sorted(csv_text(n) for n in names) == ["'-2.png", "'=1+1.png", "'@SUM(A1).png", "plain.png"]


# ---------------------------------------------------------------------------- JSON for tools
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_tables_read_as_rows_in_pandas_duckdb_and_jq(tmp_path, face_png, suffix):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the test extra (pip install -e .[test])")
    no_face = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), (90, 120, 200)).save(no_face)
    out = tmp_path / f"faces{suffix}"
    assert main(["analyze", str(face_png), str(no_face), "-o", str(out)]) == 0
    table = pd.read_json(out, lines=suffix == ".jsonl")
    assert table["source"].tolist() == [str(face_png), str(no_face)] and table["status"].tolist() == ["ok", "no_face"]
    assert table["yaw"].notna().tolist() == [True, False]
    rows = duckdb.sql(f"select source, status, yaw from read_json_auto('{out}')").fetchall()
    assert [r[:2] for r in rows] == [(str(face_png), "ok"), (str(no_face), "no_face")] and rows[1][2] is None
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed: pandas and DuckDB were checked")
    filter_ = ".status" if suffix == ".jsonl" else ".[].status"
    assert subprocess.run([jq, "-r", filter_, str(out)], capture_output=True, text=True, check=True).stdout.split() == ["ok", "no_face"]


def test_schema_is_available_as_json(capsys):
    from mien.results import COLUMNS

    assert main(["schema", "--json"]) == 0
    meanings = json.loads(capsys.readouterr().out)
    assert list(meanings) == [c.name for c in COLUMNS] and "track_score" in meanings


# -------------------------------------------------------------------------------- exit codes
def test_exit_codes_are_distinct_and_documented(tmp_path, face_png, monkeypatch, capsys):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    assert main(["analyze", str(face_png), "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["analyze", str(face_png), str(broken), "-o", str(tmp_path / "b.csv")]) == 1
    assert pd.read_csv(tmp_path / "b.csv")["status"].tolist() == ["ok", "error"]
    assert main(["analyze", str(tmp_path / "*.none"), "-o", str(tmp_path / "c.csv")]) == 2
    assert main(["analyze", str(face_png), "-o", str(tmp_path / "d.xlsx")]) == 2

    import mien.scale.tasks

    def interrupt(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(mien.scale.tasks, "decode_image", interrupt)  # photos are decoded by their task
    assert main(["analyze", str(face_png), "-o", str(tmp_path / "e.csv")]) == 130
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    assert all(f"\n  {code}  " in text for code in ("0  ", "1  ", "2  ", "130"))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "130" in readme and "exit code" in readme.lower()


# ------------------------------------------------------------------------ video summary tables
def test_video_tables_carry_source_and_the_track_score(shared_data, tmp_path):
    out = tmp_path / "clip.parquet"
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out), "--end", "1"]) == 0
    frames = pd.read_parquet(out)
    faces = frames[frames["track"].notna()]
    assert faces["score"].isna().mean() > 0.5  # the detector ran on few frames
    assert faces["track_score"].notna().all() and faces["track_score"].between(0, 1).all()
    detected = faces[faces["score"].notna()]
    assert (detected["track_score"] == detected["score"]).all()
    for name in ("tracks", "episodes"):
        table = pd.read_parquet(out.with_name(f"clip.{name}.parquet"))
        assert list(table.columns[:2]) == ["source", "track"] and set(table["source"]) == {str(shared_data / CLIP)}


def test_summaries_of_concatenated_videos_keep_their_tracks_apart():
    from mien.video.summaries import action_unit_episodes, track_summary

    t = np.arange(10) / 30.0
    one = pd.DataFrame({"source": "a.mp4", "track": 0, "time_s": t, "reliable": True, "yaw": 1.0, "pitch": 0.0, "roll": 0.0,
                        "iod_px": 50.0, "au12_lip_corner_puller_l": 2.0, "au12_lip_corner_puller_l_present": True})
    both = pd.concat([one, one.assign(source="b.mp4", yaw=-1.0)], ignore_index=True)
    episodes = action_unit_episodes(both)
    tracks = track_summary(both, episodes)
    assert episodes[["source", "track"]].values.tolist() == [["a.mp4", 0], ["b.mp4", 0]]
    assert tracks[["source", "track", "median_yaw", "episodes"]].values.tolist() == [["a.mp4", 0, 1.0, 1], ["b.mp4", 0, -1.0, 1]]
