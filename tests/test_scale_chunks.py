"""A long video cut into pieces comes out as one video's: the same frames, the same tracks (no
extra switches at the seams), values within what smoothing itself changes, and pieces finished
before a stop are not redone."""
import errno

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


# ------------------------------------------------------------------ report and annotated video in pieces
def picture_args(folder):
    return ["--report", str(folder / "clip.html"), "--annotate", str(folder / "pics"), "--workers", "2", "--chunk", CHUNK]


@pytest.fixture(scope="module")
def pictures_in_pieces(long_clip, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    table = run(long_clip, folder / "clip.parquet", *picture_args(folder))
    return folder, table


def read_video(folder):
    import av

    with av.open(str(next((folder / "pics").glob("*_annotated.*")))) as video:
        return [(float(frame.pts * frame.time_base), frame.to_ndarray(format="rgb24")) for frame in video.decode(video=0)]


def test_pieces_with_report_and_video_keep_the_tables_of_pieces_without(whole_and_pieces, pictures_in_pieces):
    tables, _, pieces, _ = whole_and_pieces
    folder, table = pictures_in_pieces
    pd.testing.assert_frame_equal(table, pieces)
    for name in ("tracks", "episodes"):
        pd.testing.assert_frame_equal(pd.read_parquet(folder / f"clip.{name}.parquet"),
                                      pd.read_parquet(tables / f"pieces.{name}.parquet"))
    assert not list(folder.glob(".*mien-pieces"))  # the work folder is cleared


def test_annotated_video_in_pieces_has_each_analysed_frame_at_its_time(pictures_in_pieces):
    folder, table = pictures_in_pieces
    times = table.drop_duplicates("frame")["time_s"].to_numpy()
    shown = np.array([t for t, _ in read_video(folder)])
    assert len(shown) == len(times) == 360
    np.testing.assert_allclose(shown, times - times[0], atol=1e-3)


def test_report_in_pieces_shows_every_track_section_and_apex_face(pictures_in_pieces):
    import re

    from mien.video.report import section_tracks, strongest_episodes

    folder, _ = pictures_in_pieces
    html = (folder / "clip.html").read_text()
    tracks = pd.read_parquet(folder / "clip.tracks.parquet")
    episodes = pd.read_parquet(folder / "clip.episodes.parquet")
    assert sorted(int(t) for t in re.findall(r'<tr><td data-v="(\d+)">', html)) == tracks["track"].tolist()  # a row each
    sections = [int(t) for t in re.findall(r'<section id="track-(\d+)">', html)]
    assert sections == section_tracks(tracks) and len(sections) >= 2  # and a section each that is long enough
    for track, section in zip(sections, html.split('<section id="track-')[1:]):
        assert '<div class="thumbs"><figure>' in section
        assert section.count('<tr><td><img class="apex"') == len(strongest_episodes(episodes, track)) > 0
        assert '<tr><td><span class="muted">' not in section  # no episode without its apex face
    assert 'id="player"' in html


class Spies:
    """Records, in this process, each piece's own rows as analysed (its local track ids) and the
    track ids drawn on each frame of the annotated video; stops the run at the ``stop_at``-th picture pass."""

    def __init__(self, monkeypatch, stop_at=None):
        from mien.scale import chunks, pictures, workers

        self.local, self.drawn, self.analysed, self.cut = set(), {}, 0, 0
        in_process = workers.run_tasks
        monkeypatch.setattr(workers, "run_tasks", lambda tasks, _workers, short=False: in_process(tasks, 1, short))
        analyze, cut, draw = chunks.analyze_piece, pictures.cut_pictures, pictures.draw_video_faces

        def analyze_piece(analyzer, job):
            self.analysed += 1
            done = analyze(analyzer, job)
            part = pd.read_parquet(job.part)
            own = part[~part["piece_warmup"] & part["track"].notna()]
            self.local.update({(f, t) for f, t in zip(own["frame"], own["track"])})
            return done

        def cut_pictures(analyzer, job):
            if self.cut + 1 == stop_at:
                raise KeyboardInterrupt
            self.cut += 1
            return cut(analyzer, job)

        def draw_video_faces(rgb, faces):
            self.drawn[faces.frame] = faces.track_ids.tolist()
            return draw(rgb, faces)

        monkeypatch.setattr(chunks, "analyze_piece", analyze_piece)
        monkeypatch.setattr(pictures, "cut_pictures", cut_pictures)
        monkeypatch.setattr(pictures, "draw_video_faces", draw_video_faces)


@pytest.fixture(scope="module")
def stopped_and_resumed(long_clip, tmp_path_factory):
    """A run stopped (Ctrl-C) at its second picture pass, after every piece was analysed, and the same command again."""
    folder = tmp_path_factory.mktemp("stopped")
    args = ["analyze", str(long_clip), "-o", str(folder / "clip.parquet"), *picture_args(folder)]
    with pytest.MonkeyPatch.context() as patch:
        first = Spies(patch, stop_at=2)
        assert main(args) == 130
    left = sorted(p.name for p in (folder / ".clip.parquet.mien-pieces").iterdir())
    with pytest.MonkeyPatch.context() as patch:
        second = Spies(patch)
        assert main(args) == 0
    return folder, first, left, second


def test_a_run_stopped_while_drawing_resumes_with_the_pictures_already_made(stopped_and_resumed, pictures_in_pieces):
    folder, first, left, second = stopped_and_resumed
    assert first.analysed == 4 and first.cut == 1
    assert [n for n in left if n.startswith("piece-")] == [f"piece-{k:05d}.parquet" for k in range(4)]
    assert [n for n in left if n.startswith("pictures")] == ["pictures-report-video-00000.npz"]
    assert second.analysed == 0 and second.cut == 3  # nothing analysed again, the finished pass kept
    reference, table = pictures_in_pieces
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "clip.parquet"), table)
    assert [t for t, _ in read_video(folder)] == [t for t, _ in read_video(reference)]
    assert (folder / "clip.html").read_text().count('class="apex"') == (reference / "clip.html").read_text().count('class="apex"')
    assert not list(folder.glob(".*mien-pieces"))


def test_annotated_video_in_pieces_is_labelled_with_the_stitched_track_ids(stopped_and_resumed):
    folder, first, _, second = stopped_and_resumed
    table = pd.read_parquet(folder / "clip.parquet")
    stitched = {f: g["track"].dropna().astype(int).tolist() for f, g in table.groupby("frame")}
    drawn = {**first.drawn, **second.drawn}
    assert drawn == stitched  # every frame drawn (a pass cut short by the stop is drawn again) ...
    local = {f: sorted(t for g, t in first.local if g == f) for f in stitched}
    assert any(sorted(ids) != local[f] for f, ids in drawn.items())  # ... with ids a piece alone does not give


@pytest.fixture(scope="module")
def analysed_frames(shared_data):
    """video_01's frames, each with its faces as a video run measures them."""
    from mien.video.analysis import read_video as frames

    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    path = shared_data / "demo/openmpf/video_01.mp4"
    return [(frame, analyzer.analyze(frame, source=str(path))) for frame in frames(path)]


def test_faces_rebuilt_from_a_frames_rows_draw_and_cut_as_the_measured_faces(analysed_frames):
    from mien.annotate import draw_video_faces
    from mien.results import to_frame
    from mien.scale.pictures import PICTURE_COLUMNS, TableFaces, frame_spans
    from mien.video.sinks import apex_face, thumbnail_face

    measured = [faces for _, faces in analysed_frames]
    table = to_frame(measured)
    spans, rows = frame_spans(table["frame"].to_numpy(np.int64)), TableFaces(table[PICTURE_COLUMNS])
    rebuilt = [rows.frame(*spans[frame.index]) for frame, _ in analysed_frames]
    pd.testing.assert_frame_equal(to_frame(rebuilt)[PICTURE_COLUMNS], to_frame(measured)[PICTURE_COLUMNS])
    assert sum(len(f) for f in rebuilt) > len(rebuilt)  # frames with several faces
    for (frame, faces), again in list(zip(analysed_frames, rebuilt))[::10]:
        assert np.array_equal(draw_video_faces(frame.rgb, again), draw_video_faces(frame.rgb, faces))
        for i in range(len(faces)):
            assert apex_face(frame.rgb, again, i) == apex_face(frame.rgb, faces, i)
            assert thumbnail_face(frame.rgb, again, i) == thumbnail_face(frame.rgb, faces, i)


def test_thumbnails_chosen_on_a_table_are_those_a_run_keeps(analysed_frames):
    from mien.results import to_frame
    from mien.scale.pictures import thumbnail_frames
    from mien.video.sinks import ReportFaces

    sink = ReportFaces(thumbnails_every_s=0.2, max_thumbnails=3)  # enough faces that some are dropped again
    for frame, faces in analysed_frames:
        sink.add(frame, faces)
    chosen = thumbnail_frames(to_frame([faces for _, faces in analysed_frames]), 0.2, 3)
    assert {t: [s for s, _ in kept] for t, kept in chosen.items()} == {t: [s for s, _ in kept] for t, kept in sink.thumbnails.items()}
    assert 3 < max(len(kept) for kept in chosen.values()) <= 6  # a track had more than 6: every other one went
    frame_at = {frame.time_s: frame.index for frame, _ in analysed_frames}
    assert all(frame_at[s] == f for kept in chosen.values() for s, f in kept)


def test_an_output_that_cannot_be_written_keeps_the_pieces_for_the_rerun(long_clip, tmp_path, monkeypatch, capsys):
    from mien.video import analysis

    def full_disk(parts, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    out = tmp_path / "clip.parquet"
    monkeypatch.setattr(analysis, "write_tables", full_disk)
    assert main(["analyze", str(long_clip), "-o", str(out), "--workers", "2", "--chunk", CHUNK]) == 1
    err = capsys.readouterr().err
    kept = out.with_name(f".{out.name}.mien-pieces")
    assert "No space left on device" in err and f"kept in {kept}" in err and "Traceback" not in err
    parts = sorted(kept.glob("piece-*.parquet"))
    assert len(parts) == 4 and not out.exists()
    marked = pd.read_parquet(parts[1])
    marked["sharpness"] = np.float32(-1.0)  # only the kept piece carries this mark
    marked.to_parquet(parts[1], index=False)
    monkeypatch.undo()
    table = run(long_clip, out, "--workers", "2", "--chunk", CHUNK)
    assert (table["sharpness"] == -1.0).any() and not kept.exists()


def test_pieces_that_do_not_join_are_analysed_whole_and_leave_no_work_folder(long_clip, tmp_path, monkeypatch, capsys):
    from mien.scale import chunks

    def seams_differ(*args):
        raise chunks.SeamError("frames shared with the piece before have other timestamps")

    out = tmp_path / "clip.parquet"
    monkeypatch.setattr(chunks, "finish_video", seams_differ)
    table = run(long_clip, out, "--workers", "2", "--chunk", CHUNK)
    assert "analysing the video whole" in capsys.readouterr().err
    assert table["frame"].nunique() == 360 and not out.with_name(f".{out.name}.mien-pieces").exists()


def _one_frame_short(frames):
    return frames[:-1]


def _one_frame_more(frames):
    import dataclasses

    return frames + [dataclasses.replace(frames[-1], index=frames[-1].index + 1000)]


@pytest.mark.parametrize("decoded", [_one_frame_short, _one_frame_more])
def test_a_picture_pass_cut_short_leaves_neither_its_video_nor_its_faces(long_clip, tmp_path, monkeypatch, decoded):
    from mien.scale import pictures
    from mien.scale.chunks import SeamError, stitch_video

    options = Options(mode=Mode.VIDEO, iris=False)
    job = VideoJob(long_clip, tmp_path / "clip.parquet", VideoOptions(), report=tmp_path / "clip.html",
                   annotated=tmp_path / "long_annotated.mp4")
    jobs = piece_jobs(job, options, chunk_s=4.0, workers=2)
    analyzer = Analyzer(options)
    for piece in jobs:
        analyze_piece(analyzer, piece)
    second = pictures.plan_pictures(job, jobs, stitch_video(job, jobs, options)).passes[1]
    every_frame = pictures.piece_frames

    def made():
        return sorted(p.name for p in second.work.glob("*") if p.name.startswith(("annotated-", "pictures")))

    monkeypatch.setattr(pictures, "piece_frames", lambda *args: iter(decoded(list(every_frame(*args)))))
    with pytest.raises(SeamError):
        pictures.cut_pictures(None, second)
    assert made() == [] and not pictures.finished_pictures(second)
    monkeypatch.undo()
    pictures.cut_pictures(None, second)
    assert len(made()) == 2 and pictures.finished_pictures(second)  # its video and its faces file
