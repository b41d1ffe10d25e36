import numpy as np
import pandas as pd

from mien.analyzer import Analyzer, AnalyzerOptions
from mien.cli import main
from mien.video import analyze_video


def test_tracks_are_stable_in_the_group_video(shared_data):
    analyzer = Analyzer(AnalyzerOptions(iris=False, keep_landmarks=False))
    results = list(analyze_video(shared_data / "demo/openmpf/video_01.mp4", analyzer, detect_every=10))
    assert len(results) == 90
    per_frame = [sorted(f.extra["track"] for f in r.faces) for r in results]
    # the two clearly visible faces keep ids 0 and 1 in every frame
    assert all({0, 1} <= set(ids) for ids in per_frame)
    times = [r.faces[0].extra["time_s"] for r in results]
    assert np.all(np.diff(times) > 0)


def test_detector_runs_only_every_n_frames(shared_data, monkeypatch):
    analyzer = Analyzer(AnalyzerOptions(iris=False, keep_landmarks=False))
    calls = []
    original = analyzer.detector.__call__
    monkeypatch.setattr(type(analyzer.detector), "__call__", lambda self, rgb, max_faces=None: calls.append(1) or original(rgb, max_faces))
    list(analyze_video(shared_data / "demo/openmpf/video_01.mp4", analyzer, detect_every=10, end_s=1.0))
    assert 2 <= len(calls) <= 5  # ~31 frames: detection on frames 0, 10, 20, 30


def test_video_through_the_command(shared_data, tmp_path):
    out = tmp_path / "clip.parquet"
    code = main(["analyze", str(shared_data / "demo/openmpf/video_01.mp4"), "-o", str(out), "--no-iris", "--end", "1.0"])
    assert code == 0
    table = pd.read_parquet(out)
    assert {"track", "time_s"} <= set(table.columns)
    assert table["time_s"].max() <= 1.0 and table["frame"].nunique() >= 29
    assert table["track"].notna().all()


def test_broken_video_is_reported_and_the_batch_goes_on(shared_data, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    out = tmp_path / "faces.csv"
    code = main(["analyze", str(bad), str(shared_data / "demo/pillow/hopper.jpg"), "-o", str(out), "--no-iris"])
    assert code == 1
    table = pd.read_csv(out)
    assert (table["status"] == "error").sum() == 1 and (table["status"] == "ok").sum() == 1
    assert "broken.mp4" in capsys.readouterr().err
