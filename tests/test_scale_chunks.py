"""A long video cut into pieces comes out as one video's: the same frames, the same tracks (no
extra switches at the seams), values within what smoothing itself changes, and pieces finished
before a stop are not redone."""
import cv2
import numpy as np
import pandas as pd
import pytest

from mien import actions
from mien.analyzer import Analyzer, Mode, Options
from mien.cli import main
from mien.scale.chunks import analyze_piece, piece_jobs, plan_pieces
from mien.scale.tasks import VideoJob
from mien.video.analysis import VideoOptions

CHUNK = "4"  # seconds: a 12 s clip in 4 pieces of 3 s for 2 workers


@pytest.fixture(scope="module")
def long_clip(shared_data, tmp_path_factory):
    """video_01 (3 s, one face throughout) four times over: 12 s with a face across every seam."""
    source = cv2.VideoCapture(str(shared_data / "demo/openmpf/video_01.mp4"))
    frames = []
    while (frame := source.read()[1]) is not None:
        frames.append(frame)
    path = tmp_path_factory.mktemp("clip") / "long.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, frames[0].shape[1::-1])
    for _ in range(4):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return path


def run(clip, out, *extra):
    assert main(["analyze", str(clip), "-o", str(out), *extra]) == 0
    return pd.read_parquet(out)


@pytest.fixture(scope="module")
def whole_and_pieces(long_clip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    whole = run(long_clip, folder / "whole.parquet", "--workers", "1")
    pieces = run(long_clip, folder / "pieces.parquet", "--workers", "2", "--chunk", CHUNK)
    unsmoothed = run(long_clip, folder / "raw.parquet", "--workers", "1", "--no-smoothing")
    return folder, whole, pieces, unsmoothed


def test_pieces_keep_every_frame_and_the_same_tracks(whole_and_pieces):
    folder, whole, pieces, _ = whole_and_pieces
    assert not list(folder.glob(".*mien-pieces"))  # the work folder is cleared
    pd.testing.assert_series_equal(whole["frame"], pieces["frame"])
    pd.testing.assert_series_equal(whole["time_s"], pieces["time_s"])
    with_face = whole["track"].notna()
    assert (pieces["track"].notna() == with_face).all()
    pairs = set(zip(whole.loc[with_face, "track"], pieces.loc[with_face, "track"]))
    # a one-to-one correspondence: no track split or joined at a seam
    assert len(pairs) == whole["track"].nunique() == pieces["track"].nunique()
    ids = pieces["track"].dropna().drop_duplicates().tolist()
    assert ids == list(range(len(ids)))  # numbered in order of appearance
    assert (whole["reliable"] == pieces["reliable"]).all()
    tracks = pd.read_parquet(folder / "pieces.tracks.parquet")
    assert len(tracks) == len(pd.read_parquet(folder / "whole.tracks.parquet"))


def test_piece_values_differ_from_a_whole_run_less_than_smoothing_changes_them(whole_and_pieces):
    _, whole, pieces, unsmoothed = whole_and_pieces
    face = whole["track"].notna() & unsmoothed["track"].notna()
    perceived = [c for c in whole.columns if c.startswith("perceived_") and whole[c].dtype == "float32"]
    for columns in (["yaw", "pitch", "roll"], actions.columns(), perceived):
        seams = np.abs(pieces.loc[face, columns].to_numpy(float) - whole.loc[face, columns].to_numpy(float))
        smoothing = np.abs(unsmoothed.loc[face, columns].to_numpy(float) - whole.loc[face, columns].to_numpy(float))
        assert np.nanpercentile(seams, 95) <= np.nanpercentile(smoothing, 95), columns
        assert np.nanmean(seams) <= np.nanmean(smoothing), columns
    # per-track baselines carry across the seams: the pieces use a track's own neutral where the whole run does
    assert (whole["au_baseline"] == pieces["au_baseline"]).mean() > 0.98


def test_plan_covers_the_run_in_equal_pieces_for_every_worker():
    pieces = plan_pieces(0.0, 130.0, 60.0, 3.0, workers=2)  # 3 pieces of at most 60 s, rounded up to 4
    assert [(p.start_s, p.end_s, p.warmup_s) for p in pieces] == [(0.0, 32.5, 0.0), (32.5, 65.0, 29.5),
                                                                  (65.0, 97.5, 62.0), (97.5, None, 94.5)]
    assert len(plan_pieces(0.0, 120.0, 60.0, 3.0, workers=1)) == 2
    with pytest.raises(ValueError, match="positive"):
        plan_pieces(0.0, 10.0, 0.0)


def test_a_rerun_keeps_the_pieces_already_finished(long_clip, tmp_path):
    out = tmp_path / "clip.parquet"
    options = Options(mode=Mode.VIDEO, iris=False)  # as mien analyze's defaults for a video
    job = VideoJob(long_clip, out, VideoOptions())
    jobs = piece_jobs(job, options, chunk_s=4.0, workers=2)
    assert len(jobs) == 4  # 3 s each
    analyze_piece(Analyzer(options), jobs[1])
    finished = pd.read_parquet(jobs[1].part)
    finished["sharpness"] = np.float32(-1.0)  # a mark that only the kept piece carries
    finished.to_parquet(jobs[1].part, index=False)
    table = run(long_clip, out, "--workers", "2", "--chunk", CHUNK)
    marked = table["sharpness"] == -1.0
    assert marked.any() and (table.loc[marked, "time_s"].between(3.0, 6.0)).all()
    assert not (table.loc[table["face"].notna() & ~table["time_s"].between(3.0, 6.0), "sharpness"] == -1.0).any()
