import numpy as np
import pandas as pd

from mien.analyzer import Analyzer, AnalyzerOptions
from mien.cli import main
from mien.video_analysis import VideoOptions, analyze_frames


def lean_analyzer() -> Analyzer:
    return Analyzer(AnalyzerOptions(iris=False, keep_landmarks=False))


def test_tracks_are_stable_in_the_group_video(shared_data):
    results = list(analyze_frames(shared_data / "demo/openmpf/video_01.mp4", lean_analyzer(), VideoOptions(detect_every=10)))
    assert len(results) == 90
    per_frame = [sorted(f.extra["track"] for f in r.faces) for r in results]
    # the two clearly visible faces keep ids 0 and 1 in every frame
    assert all({0, 1} <= set(ids) for ids in per_frame)
    times = [r.faces[0].extra["time_s"] for r in results]
    assert np.all(np.diff(times) > 0)


def test_detector_runs_only_every_n_frames(shared_data, monkeypatch):
    analyzer = lean_analyzer()
    calls = []
    original = analyzer.detector.__call__
    monkeypatch.setattr(type(analyzer.detector), "__call__", lambda self, rgb, max_faces=None: calls.append(1) or original(rgb, max_faces))
    list(analyze_frames(shared_data / "demo/openmpf/video_01.mp4", analyzer, VideoOptions(detect_every=10, end_s=1.0)))
    assert 2 <= len(calls) <= 5  # ~31 frames: detection on frames 0, 10, 20, 30


def test_video_through_the_command(shared_data, tmp_path):
    out = tmp_path / "clip.parquet"
    code = main(["analyze", str(shared_data / "demo/openmpf/video_01.mp4"), "-o", str(out), "--end", "1.0"])
    assert code == 0
    table = pd.read_parquet(out)
    assert {"track", "time_s", "au_baseline"} <= set(table.columns)
    assert table["time_s"].max() <= 1.0 and table["frame"].nunique() >= 29
    assert table["track"].notna().all()
    tracks = pd.read_parquet(tmp_path / "clip.tracks.parquet")
    assert {0, 1} <= set(tracks["track"])
    assert (tmp_path / "clip.episodes.parquet").exists()


def test_broken_video_among_several_inputs(shared_data, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 500)
    out = tmp_path / "results"
    code = main(["analyze", str(bad), str(shared_data / "demo/pillow/hopper.jpg"), "-o", str(out), "--format", "csv"])
    assert code == 1
    assert "broken.mp4" in capsys.readouterr().err
    assert pd.read_csv(out / "broken.csv")["status"].item() == "error"
    assert (pd.read_csv(out / "images.csv")["status"] == "ok").all()


def test_a_video_with_other_inputs_needs_an_output_folder(shared_data, tmp_path, capsys):
    code = main(["analyze", str(shared_data / "demo/openmpf/video_01.mp4"), str(shared_data / "demo/pillow/hopper.jpg"),
                 "-o", str(tmp_path / "x.csv")])
    assert code == 2 and "give -o a folder" in capsys.readouterr().err


def test_annotated_video(shared_data, tmp_path):
    import cv2

    code = main(["analyze", str(shared_data / "demo/openmpf/video_01.mp4"), "-o", str(tmp_path / "clip.csv"),
                 "--annotate", str(tmp_path / "pics"), "--end", "0.5"])
    assert code == 0
    cap = cv2.VideoCapture(str(tmp_path / "pics" / "video_01_annotated.mp4"))
    count = 0
    while cap.grab():
        count += 1
    assert count == 15 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 640
