import shutil

import numpy as np
import pandas as pd
import pytest

from mien import Analyzer, Mode, Options, VideoOptions, analyze_frames, to_frame
from mien.cli import main
from mien.detect import DetectorRange, FaceDetector
from mien.perceived import CLASSES, PerceivedModel


def lean_analyzer(**options) -> Analyzer:
    return Analyzer(Options(mode=Mode.VIDEO, iris=False, **options))


def test_tracks_are_stable_in_the_group_video(shared_data):
    results = list(analyze_frames(shared_data / "demo/openmpf/video_01.mp4", lean_analyzer(detect_every=10)))
    assert len(results) == 90
    per_frame = [sorted(r.track_ids.tolist()) for r in results]
    # the two clearly visible faces keep ids 0 and 1 in every frame
    assert all({0, 1} <= set(ids) for ids in per_frame)
    times = [r.time_s for r in results]
    assert np.all(np.diff(times) > 0)


def test_detector_runs_every_n_frames_with_both_models_only_while_nothing_is_tracked(shared_data, monkeypatch):
    calls = []
    original = FaceDetector.__call__

    def spy(self, rgb, max_faces=None, only=None):
        calls.append(only)
        return original(self, rgb, max_faces, only)

    monkeypatch.setattr(FaceDetector, "__call__", spy)
    results = list(analyze_frames(shared_data / "demo/openmpf/video_01.mp4", lean_analyzer(detect_every=10), VideoOptions(end_s=1.0)))
    assert len(results) >= 30 and all(len(r) for r in results)
    # frame 0: nothing tracked yet, both models; frames 10 and 20: faces tracked, the models take turns
    assert calls[:3] == [None, DetectorRange.FULL, DetectorRange.SHORT]
    assert len(calls) == (len(results) + 9) // 10


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
    photo = tmp_path / "hopper.jpg"  # beside the video, so that its outputs are not in a subfolder (see mien.outputs)
    shutil.copy(shared_data / "demo/pillow/hopper.jpg", photo)
    code = main(["analyze", str(bad), str(photo), "-o", str(out), "--format", "csv"])
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


def perceived_rows(shared_data, monkeypatch, **options):
    """Face rows of video_01's first second, and how many faces the perceived model saw per frame."""
    analyzer = lean_analyzer(**options)
    seen = []
    original = PerceivedModel.logits
    monkeypatch.setattr(PerceivedModel, "logits", lambda self, faces: seen.append(len(faces)) or original(self, faces))
    table = to_frame(list(analyze_frames(shared_data / "demo/openmpf/video_01.mp4", analyzer, VideoOptions(end_s=1.0))))
    return table[table["track"].notna()].sort_values(["track", "frame"]), seen


def test_perceived_expression_is_sampled_about_10_times_a_second_and_held_between(shared_data, monkeypatch):
    rows, seen = perceived_rows(shared_data, monkeypatch)
    shares = [f"perceived_{c}" for c in CLASSES]
    assert np.isfinite(rows[shares].to_numpy()).all()
    assert np.allclose(rows[shares].sum(axis=1), 1.0, atol=1e-5)
    for _, track in rows.groupby("track"):
        values = track[shares].to_numpy()
        changed = np.flatnonzero(np.abs(np.diff(values, axis=0)).max(axis=1) > 0) + 1
        # at ~30 frames/s a track's value is new on every 3rd of its frames and held on the two between
        assert len(track) >= 27 and set(np.diff(changed)) == {3}
    assert sum(seen) == pytest.approx(len(rows) / 3, abs=len(rows.groupby("track")))


def test_without_smoothing_perceived_expression_is_measured_on_every_frame(shared_data, monkeypatch):
    rows, seen = perceived_rows(shared_data, monkeypatch, smooth=False)
    assert sum(seen) == len(rows)


@pytest.mark.parametrize("flag", [["--detect-every", "0"], ["--perceived-hz", "-1"]])
def test_bad_video_options_are_refused(shared_data, tmp_path, capsys, flag):
    code = main(["analyze", str(shared_data / "demo/openmpf/video_01.mp4"), "-o", str(tmp_path / "x.csv"), *flag])
    assert code == 2
    assert flag[0] in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("smooth", [True, False], ids=["smoothed", "unsmoothed"])
def test_video_abstains_on_faces_unlike_the_training_faces_as_stills_do(shared_data, smooth):
    """The energy-score rule (a face far from the training faces gets 'uncertain') holds in video,
    also on the frames between perceived samples, where the shares are held."""
    from mien.video.analysis import read_video

    def labels(min_energy):
        analyzer = lean_analyzer(smooth=smooth)
        analyzer._perceiver.min_energy = min_energy
        rows = to_frame([analyzer.analyze(f) for f in read_video(shared_data / "demo/openmpf/video_01.mp4", VideoOptions(end_s=0.5))])
        return rows.loc[rows["track"].notna(), "perceived_top"]

    familiar, strange = labels(-np.inf), labels(np.inf)
    assert (familiar != "uncertain").any()
    assert (strange == "uncertain").all() and len(strange) == len(familiar)
