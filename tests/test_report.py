"""What a researcher sees: progress lines in logs, annotated stills, the image-set and video reports,
the annotated video browsers play, and the OpenFace-layout export."""
from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mien import actions
from mien.cli import main


# ------------------------------------------------------------------------------------------ progress
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_in_a_log_is_plain_lines_with_rate_and_eta():
    from mien.progress import Progress

    log, clock = io.StringIO(), FakeClock()
    with Progress(100, "image", "mien", stream=log, every_s=5.0, terminal=False, clock=clock) as progress:
        for _ in range(100):
            clock.now += 0.5
            progress.advance()
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 10 + 1 - 1  # one every 5 s of a 50 s run; the last one carries the final count
    assert lines[0] == "mien: 10/100 images (10%), 2.0 images/s, elapsed 0:05, ETA 0:45"
    assert lines[-1].startswith("mien: 100/100 images (100%)")


def test_progress_of_a_short_run_in_a_log_writes_nothing():
    from mien.progress import Progress

    log, clock = io.StringIO(), FakeClock()
    with Progress(3, "image", stream=log, every_s=5.0, terminal=False, clock=clock) as progress:
        progress.advance(3)
    assert log.getvalue() == ""


def test_progress_without_a_total_and_durations():
    from mien.progress import format_duration, progress_line

    assert progress_line(30, None, 10.0, "frame") == "30 frames, 3.0 frames/s, elapsed 0:10"
    assert progress_line(2, 4, 10.0, "video", found=(88, "face row")) == (
        "2/4 videos (50%), 88 face rows found, 0.2 videos/s, elapsed 0:10, ETA 0:10")
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "?"


def test_the_command_logs_progress_lines_when_stderr_is_not_a_terminal(tmp_path, astronaut, monkeypatch, capsys):
    from mien import progress

    for i in range(3):
        Image.fromarray(astronaut).save(tmp_path / f"p{i}.png")
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    assert main(["analyze", str(tmp_path), "-o", str(tmp_path / "t.csv")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "mien: 1/3 images (33%), 1 faces found" in err and "ETA" in err


def test_audit_messages_carry_the_elapsed_time():
    from mien.progress import StageLog

    log, clock = io.StringIO(), FakeClock()
    say = StageLog("mien audit", log, clock)
    clock.now = 65
    say("predicted 10 images")
    assert log.getvalue() == "mien audit [1:05]: predicted 10 images\n"


# ------------------------------------------------------------------------------------------ stills
def _face_row(reliable: bool, **columns) -> pd.DataFrame:
    row = dict(source="x.png", face=0, x=10.0, y=12.0, w=28.0, h=30.0, yaw=5.0, pitch=-3.0, roll=1.0,
               reliable=reliable, quality_reasons="" if reliable else "small_face;blurry",
               perceived_top="uncertain", perceived_top_p=0.99)
    row.update(columns)
    return pd.DataFrame([row])


def test_small_images_are_drawn_on_a_larger_canvas_with_the_legend_beside_them():
    from mien.annotate import PANEL_W, canvas_scale, face_marks, still_picture

    rgb = np.full((48, 48, 3), 120, np.uint8)
    picture = still_picture(rgb, face_marks(_face_row(True)), "x.png")
    assert canvas_scale(48, 48) == 10.0
    assert picture.shape[0] == 480 and picture.shape[1] == 480 + 2 + PANEL_W
    assert (picture[:, 482:] == 255).mean() > 0.9  # the panel is beside the picture, mostly white
    assert canvas_scale(4000, 3000) == 0.4 and canvas_scale(800, 600) == 1.0


def test_an_unreliable_face_is_marked_as_such_with_its_reasons():
    from mien.annotate import _face_lines, face_marks

    lines = [text for text, _, _ in _face_lines(face_marks(_face_row(False))[0], 0)]
    assert lines[0] == "face #0: UNRELIABLE" and "small_face, blurry" in lines[1]
    assert any("uncertain" in line for line in lines)


def test_the_face_chart_names_file_face_and_warns_when_unreliable():
    from mien.annotate import face_chart, face_marks

    reliable = face_chart(face_marks(_face_row(True))[0], "photos/x.png", 0)
    unreliable = face_chart(face_marks(_face_row(False))[0], "photos/x.png", 0)
    assert unreliable.shape[0] > reliable.shape[0]  # one more line: the warning
    red = (unreliable[..., 0] > 180) & (unreliable[..., 1] < 90) & (unreliable[..., 2] < 90)
    assert red[:60].any()  # the warning is in red, at the top


def test_outlines_are_closed_loops_of_landmarks():
    from mien.annotate import outlines

    face, right_eye, left_eye, lips = outlines()
    assert len(face) == 36 and len(set(face)) == 36
    assert len(set(right_eye) & set(left_eye)) == 0 and {61, 291, 0, 17} <= set(lips)


# ------------------------------------------------------------------------------------------ gallery
def _chromium() -> str | None:
    return next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


def _screenshot(page: Path, shot: Path, tmp_path: Path, size=(1100, 1400)) -> np.ndarray:
    import cv2

    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    return cv2.imread(str(shot))


def test_image_set_report_escapes_names_and_sorts(tmp_path, astronaut):
    folder = tmp_path / "photos"
    folder.mkdir()
    hostile = '<img src=x onerror=alert(1)> "a".png'
    Image.fromarray(astronaut).save(folder / hostile)
    Image.fromarray(astronaut).resize((96, 96)).save(folder / "small.png")
    Image.new("RGB", (120, 90), (90, 120, 200)).save(folder / "empty.png")
    report = tmp_path / "set.html"
    assert main(["analyze", str(folder), "-o", str(tmp_path / "t.csv"), "--report", str(report)]) == 0
    text = report.read_text()
    assert "onerror=alert(1)>" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert text.count("<script>") == 1 and "http" not in text.replace("http-equiv", "")  # no network
    assert text.count('class="face"') == 2  # a thumbnail per face found
    assert 'href="t.csv"' in text and "no_face" in text and "class=sort" in text
    if _chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the page was checked as text only")
    picture = _screenshot(report, tmp_path / "set.png", tmp_path)
    assert picture is not None and picture.std() > 10


def test_report_is_refused_for_photos_and_videos_together(tmp_path, astronaut, capsys):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    (tmp_path / "b.mp4").write_bytes(b"")
    assert main(["analyze", str(tmp_path / "a.png"), str(tmp_path / "b.mp4"), "-o", str(tmp_path / "out"),
                 "--report", str(tmp_path / "r.html")]) == 2
    assert "not both" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ video report
def test_tick_steps_are_round_and_few():
    from mien.video.report import clock, tick_step

    assert tick_step(3.0) == 0.5 and tick_step(12.0) == 2.0 and tick_step(180.0) == 30.0 and tick_step(3600.0) == 600.0
    assert tick_step(0.3) == pytest.approx(0.05)
    assert clock(90, 30, 180) == "1:30" and clock(2, 1, 3) == "2 s" and clock(3600, 600, 3600) == "1:00:00"


def test_downsampling_keeps_gaps_and_bounds_the_points():
    from mien.video.report import downsample

    t = np.r_[np.arange(0, 100, 0.01), np.arange(200, 300, 0.01)]  # a 100 s gap in the middle
    v = np.c_[np.sin(t), np.cos(t)]
    tb, vb = downsample(t, v, bins=250)
    assert len(tb) <= 250 and vb.shape == (len(tb), 2)
    assert not ((tb > 101) & (tb < 199)).any()  # nothing drawn where there is no row
    short_t, short_v = downsample(t[:50], v[:50], bins=400)
    assert np.array_equal(short_t, t[:50])


def test_shaded_spans_stay_inside_the_plot_and_follow_the_majority():
    from mien.video.report import shaded_spans

    t = np.arange(0, 600, 1 / 30)
    flicker = np.random.default_rng(0).random(len(t)) < 0.2
    assert shaded_spans(t, flicker, (0.0, 600.0), 0.5, bins=400) == []  # mostly reliable: no hatching
    assert len(shaded_spans(t, flicker, (0.0, 600.0), 0.0, bins=400)) <= 400
    block = (t > 100) & (t < 200)
    (a, b), = shaded_spans(t, block, (0.0, 600.0), 0.5, bins=400)
    assert 99 <= a <= 101 and 199 <= b <= 201
    short = shaded_spans(t[:20], np.ones(20, bool), (0.0, t[20]), 0.5)
    assert short[0][0] == 0.0 and short[-1][1] <= t[20] + 1e-9


def _synthetic(seconds: float, reliable: bool = True):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "report_size.py"
    spec = importlib.util.spec_from_file_location("report_size", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.synthetic_table(seconds, 30.0, 2, 40)
    if not reliable:
        table.loc[table["track"] == 0, "reliable"] = False
    return table


def test_an_hour_of_video_gives_a_small_page_with_warnings_where_due():
    from mien.video.analysis import action_unit_episodes, track_summary
    from mien.video.report import ReportInputs, render_report

    table = _synthetic(3600.0, reliable=False)
    episodes = action_unit_episodes(table)
    tracks = track_summary(table, episodes)
    info = SimpleNamespace(path="hour.mp4", width=640, height=480, fps=30.0, rotation=0)
    text = render_report(ReportInputs(table, tracks, episodes, {}, info))
    assert len(text.encode()) < 2_000_000  # 216,000 rows; size depends on the tracks, not the hours
    assert "No frame of this track passed the quality checks" in text  # track 0 is never reliable
    assert text.count('<section id="track-') == 2 and "The other 40 track(s), in one table" in text
    assert "1:00:00</text>" in text  # time axes with ticks


def test_stacked_perceived_areas_are_not_drawn_where_there_is_no_row():
    from mien.video.report import Plot

    t = np.r_[np.arange(0, 2, 0.1), np.arange(5, 7, 0.1)]
    shares = np.full((len(t), 2), 0.5)
    plot = Plot((0.0, 7.0))
    plot.stacked(t, shares, ["#000", "#fff"])
    xs = [float(x) for poly in plot.inner for x in re.findall(r"([\d.]+),", poly)]
    gap = (plot.x(2.05), plot.x(4.95))
    assert xs and not any(gap[0] < x < gap[1] for x in xs)


def test_video_report_plays_the_annotated_video_with_a_cursor(shared_data, tmp_path):
    import cv2

    clip = shared_data / "demo/openmpf/video_01.mp4"
    report = tmp_path / "clip.html"
    assert main(["analyze", str(clip), "-o", str(tmp_path / "clip.csv"), "--report", str(report),
                 "--annotate", str(tmp_path / "pics"), "--end", "1.5"]) == 0
    text = report.read_text()
    video = next((tmp_path / "pics").glob("video_01_annotated.*"))
    assert f'src="pics/{video.name}"' in text and 'id="player"' in text and 'class="cursor"' in text
    assert 'href="clip.tracks.csv"' in text and "<nav>" in text
    assert text.count('class="apex"') >= 1  # a face at an episode's apex
    cap = cv2.VideoCapture(str(video))
    codec = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert codec in ("avc1", "h264", "VP90", "vp09") and cap.get(cv2.CAP_PROP_FRAME_COUNT) >= 40
    if _chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the page was checked as text only")
    picture = _screenshot(report, tmp_path / "clip.png", tmp_path)
    assert picture is not None and picture.std() > 10
    # the browser decodes the video, and playing it moves the cursor over the plots
    playing = tmp_path / "playing.html"
    playing.write_text(text.replace('<video id="player" controls', '<video id="player" autoplay muted controls'))
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile2'}", "--autoplay-policy=no-user-gesture-required",
                          "--virtual-time-budget=1000", "--dump-dom", playing.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    cursors = [float(x) for x in re.findall(r'class="cursor" x1="([-0-9.]+)"', dom)]
    assert max(cursors) > 90  # moved into the plots, past their left edge (a plot whose span the time is not in hides it)


def test_thumbnails_spread_over_the_whole_track():
    from mien.faces import Faces
    from mien.video.sinks import keep_thumbnails, thumbnail_face

    rgb = np.full((240, 320, 3), 128, np.uint8)
    kept: dict = {}
    for time_s in np.arange(0, 1800, 0.5):
        face = Faces(time_s=float(time_s), boxes=np.array([[100, 60, 180, 150]], np.float32), scores=np.ones(1, np.float32),
                     track_ids=np.array([7]))
        keep_thumbnails(kept, face.track_ids.tolist(), face.time_s, lambda i: thumbnail_face(rgb, face, i))
    times = np.array([t for t, _ in kept[7]])
    assert 12 <= len(times) <= 24 and times[0] == 0 and times[-1] > 1500
    assert np.diff(times).max() < 1800 / 8  # spread over the track, no long stretch without a face


def test_video_falls_back_to_mpeg4_where_no_browser_codec_is_installed(tmp_path):
    import cv2

    from mien.annotate import VideoSink, browser_codec

    assert browser_codec({"libvpx-vp9", "mpeg4"}) == ("libvpx-vp9", ".webm")
    assert browser_codec({"mpeg4"}) is None
    sink = VideoSink(tmp_path / "v", 65, 49, 10.0, codec=None)
    for i in range(5):
        sink.write(np.full((49, 65, 3), 40 * i, np.uint8), i / 10)
    sink.close()
    assert sink.path.name == "v.mp4" and not sink.playable
    assert cv2.VideoCapture(str(sink.path)).get(cv2.CAP_PROP_FRAME_COUNT) == 5



@pytest.mark.parametrize("codec", [("libx264", ".mp4"), ("libvpx-vp9", ".webm"), None], ids=["h264", "vp9", "mpeg4"])
def test_annotated_video_segments_join_into_one_file_in_every_encoding(shared_data, tmp_path, codec):
    import av

    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.analysis import VideoOptions, run_video
    from mien.video.sinks import AnnotatedVideo

    if codec is not None and codec[0] not in av.codecs_available:
        pytest.skip(f"PyAV has no {codec[0]} encoder here")
    sink = AnnotatedVideo(tmp_path / "clip_annotated", codec=codec)
    result = run_video(shared_data / "demo/openmpf/video_01.mp4", tmp_path / "clip.parquet",
                       Analyzer(Options(mode=Mode.VIDEO, iris=False)), VideoOptions(end_s=0.5), checkpoint_every=4,
                       sinks=[sink])
    assert result.annotated_video == sink.path and sink.path.suffix == (codec or (None, ".mp4"))[1]
    with av.open(str(sink.path)) as video:
        times = [float(frame.pts * frame.time_base) for frame in video.decode(video=0)]
    table = pd.read_parquet(tmp_path / "clip.parquet").drop_duplicates("frame")
    assert len(times) == 15 == len(table)  # four segments of at most 4 frames, joined
    assert np.allclose(times, table["time_s"] - table["time_s"].iloc[0], atol=1e-3)
    assert not list(tmp_path.glob(".*mien-partial"))

# ------------------------------------------------------------------------------------------ OpenFace
def _mien_rows() -> pd.DataFrame:
    columns = {u.column: 0.0 for u in actions.action_units()}
    columns.update(au12_lip_corner_puller_l=0.5, au12_lip_corner_puller_r=2.5, au43_eyes_closed_l=7.0,
                   au43_eyes_closed_r=6.0)
    columns.update({f"{u.column}_present": columns[u.column] >= 1 for u in actions.action_units()})
    face = dict(source='dir/a, "b".png', frame=0, face=0, status="ok", presence=0.97, reliable=True, yaw=30.0,
                pitch=10.0, roll=-5.0, gaze_yaw=20.0, gaze_pitch=-10.0, **columns)
    empty = dict(source="c.png", frame=0, face=None, status="no_face")
    return pd.DataFrame([face, empty])


def test_openface_layout_reads_back_with_openface_columns_and_conventions(tmp_path):
    from mien.export import openface_columns, openface_pose, write_openface

    path = write_openface(_mien_rows(), tmp_path / "of.csv")
    assert path.read_text().startswith("frame, face_id, timestamp, confidence, success, gaze_angle_x")
    back = pd.read_csv(path, skipinitialspace=True)
    assert list(back.columns) == openface_columns()
    face, empty = back.iloc[0], back.iloc[1]
    assert face["frame"] == 1 and face["face_id"] == 0 and face["success"] == 1 and face["confidence"] == pytest.approx(0.97)
    expected = openface_pose(np.array([30.0]), np.array([10.0]), np.array([-5.0]))
    assert [face["pose_Rx"], face["pose_Ry"], face["pose_Rz"]] == pytest.approx([float(a[0]) for a in expected], abs=1e-5)
    assert face["gaze_angle_y"] == pytest.approx(np.radians(10))
    assert face["AU12_r"] == pytest.approx(2.5) and face["AU12_c"] == 1  # the stronger side
    assert face["AU45_r"] == 5.0 and face["AU45_c"] == 1  # eye closure, clipped to OpenFace's 0..5
    assert face["source"] == 'dir/a, "b".png'
    assert empty["success"] == 0 and empty["confidence"] == 0 and np.isnan(empty["AU12_r"])


def test_openface_pose_has_openface_signs_and_order():
    from mien.export import _rotations, openface_pose
    from mien.geometry import rotation_from_euler

    rx, ry, rz = openface_pose(np.array([20.0, 0, 0, 25]), np.array([0, 20.0, 0, -15]), np.array([0, 0, 20.0, 10]))
    single = -np.radians(20)  # turned to the image's right, chin up, counterclockwise: all negative in OpenFace
    assert (rx[1], ry[0], rz[2]) == pytest.approx((single, single, single)) and rx[0] == ry[1] == rz[0] == pytest.approx(0)
    flip = np.diag([1.0, -1.0, -1.0])
    recomposed = _rotations(0, rx[3:]) @ _rotations(1, ry[3:]) @ _rotations(2, rz[3:])  # OpenFace: R = Rx Ry Rz
    np.testing.assert_allclose(recomposed[0], flip @ rotation_from_euler(25, -15, 10) @ flip, atol=1e-12)


def test_analyze_writes_the_openface_layout_on_request(tmp_path, astronaut, capsys):
    from mien.export import openface_columns

    Image.fromarray(astronaut).save(tmp_path / "a.png")
    assert main(["analyze", str(tmp_path / "a.png"), "-o", str(tmp_path / "of.parquet"), "--format", "openface"]) == 2
    assert "ending in .csv" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "a.png"), "-o", str(tmp_path / "of.csv"), "--format", "openface"]) == 0
    back = pd.read_csv(tmp_path / "of.csv", skipinitialspace=True)
    assert list(back.columns) == openface_columns() and back["success"].item() == 1 and back["AU12_c"].item() == 1


# ------------------------------------------------------------------------------------------ words
def test_uncertain_says_why():
    from mien.perceived import PerceivedModel

    model = PerceivedModel()
    p = np.full((4, 8), 0.02)
    p[:, 1] = 0.86
    p[1] = 1 / 8
    p[3] = np.nan
    out = model.from_probabilities(p, reliable=[True, True, False, True])
    assert out.top[:3] == ("happiness", "uncertain", "uncertain")
    assert out.abstain_reason == ("", "low_share", "unreliable_face", "not_measured")
    assert out.top_p[2] > 0.8  # a high share, yet no label: the face is unreliable
    assert out.take(np.array([2, 0])).abstain_reason == ("unreliable_face", "")


def test_a_run_without_a_decoded_frame_claims_no_annotated_video(shared_data, tmp_path):
    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.analysis import VideoOptions, run_video
    from mien.video.sinks import AnnotatedVideo

    sink = AnnotatedVideo(tmp_path / "clip_annotated")
    sink.path.write_bytes(b"an older run's video")
    result = run_video(shared_data / "demo/openmpf/video_01.mp4", tmp_path / "clip.parquet",
                       Analyzer(Options(mode=Mode.VIDEO, iris=False)), VideoOptions(start_s=100), sinks=[sink])
    assert result.frames == 0 and result.annotated_video is None
