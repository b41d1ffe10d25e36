"""Long-run behaviour: resume after Ctrl-C or a kill gives the same output, the HTML report
renders in a real browser, episodes and per-track baselines."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mien.cli import main
from mien.video.summaries import action_unit_episodes

CLIP = "demo/openmpf/new_face_video-90.mp4"


def run_args(video: Path, out: Path) -> list[str]:
    """A run with every output a resume must restore: tables, report, annotated video."""
    return ["analyze", str(video), "-o", str(out), "--checkpoint-every", "40", "--report", str(out.with_suffix(".html")),
            "--annotate", str(out.parent / "pics")]


def start_run(video: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mien", *run_args(video, out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_for_checkpoint_past(out: Path, frame: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    state = out.with_name(f".{out.name}.mien-partial") / "checkpoint.json"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "the run finished before it could be stopped"
        if state.exists() and json.loads(state.read_text())["last_index"] >= frame:
            return
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


@pytest.fixture(scope="module")
def uninterrupted(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "clip.parquet"
    assert main(run_args(shared_data / CLIP, out)) == 0
    return out


def video_frames(folder: Path) -> list[tuple[int, np.ndarray]]:
    import av

    with av.open(str(next(folder.glob("*_annotated.*")))) as video:
        return [(frame.pts, frame.to_ndarray(format="rgb24")) for frame in video.decode(video=0)]


def assert_same_outputs(a: Path, b: Path) -> None:
    for name in ("", ".tracks", ".episodes"):
        left = pd.read_parquet(a.with_name(a.stem + name + a.suffix))
        right = pd.read_parquet(b.with_name(b.stem + name + b.suffix))
        pd.testing.assert_frame_equal(left, right)


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_stopped_run_resumes_to_identical_output(shared_data, tmp_path, uninterrupted, stop):
    out = tmp_path / "clip.parquet"
    proc = start_run(shared_data / CLIP, out)
    wait_for_checkpoint_past(out, 240, proc)  # about half of the 511 frames
    proc.send_signal(stop)
    code = proc.wait(timeout=60)
    assert not out.exists()
    if stop == signal.SIGINT:
        assert code == 130 and b"run the same command again to resume" in proc.stderr.read()
    assert main(run_args(shared_data / CLIP, out)) == 0
    assert_same_outputs(uninterrupted, out)
    assert not out.with_name(f".{out.name}.mien-partial").exists()
    # the report's faces and the annotated video, made in the one decoding pass, come back whole
    assert out.with_suffix(".html").read_text() == uninterrupted.with_suffix(".html").read_text()
    frames, expected = video_frames(out.parent / "pics"), video_frames(uninterrupted.parent / "pics")
    assert [t for t, _ in frames] == [t for t, _ in expected] and len(frames) == 511
    noise = [np.abs(a.astype(int) - b.astype(int)).mean() for (_, a), (_, b) in zip(frames, expected)]
    if stop == signal.SIGKILL:  # resumed at a regular checkpoint: segments start where they did, the same bytes decode
        assert max(noise) == 0
    else:  # a Ctrl-C checkpoints where it lands, so a segment (a key frame) starts there: compression noise (3.2 seen)
        assert max(noise) < 5


def test_a_damaged_checkpoint_starts_the_run_afresh(shared_data, tmp_path, uninterrupted):
    out = tmp_path / "clip.parquet"
    work = out.with_name(f".{out.name}.mien-partial")
    work.mkdir()
    (work / "checkpoint.pkl").write_bytes(b"\x80\x04not a pickle at all")
    (work / "part-00000.parquet").write_bytes(b"stale")
    assert main(["analyze", str(shared_data / CLIP), "-o", str(out)]) == 0
    assert_same_outputs(uninterrupted, out)


def test_report_renders_in_a_browser_and_escapes_names(shared_data, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    hostile = tmp_path / '<script>alert("x")<\\script> clip.mp4'
    shutil.copy(shared_data / "demo/openmpf/video_01.mp4", hostile)
    report = tmp_path / "report.html"
    assert main(["analyze", str(hostile), "-o", str(tmp_path / "clip.parquet"), "--report", str(report)]) == 0
    text = report.read_text()
    assert text.count("<script>") == 1 and 'alert("x")' not in text and "&lt;script&gt;" in text  # only mien's own
    assert text.count('<section id="track-') >= 2 and "data:image/jpeg;base64," in text
    assert "<polygon" in text and "mien abstains" in text  # perceived shares stacked, abstentions marked
    assert text.count(">extreme_pose</text>") == text.count('<section id="track-')  # a quality strip per track
    assert "not_detected" not in text  # a check of the small-image search, which video frames never go through
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium): the report was checked as text only")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1000,1400",
                    report.as_uri()], check=True, capture_output=True, timeout=120)
    import cv2

    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[:2] == (1400, 1000)
    assert picture.std() > 10  # something was drawn, not a blank page


def test_episodes_join_short_gaps_and_find_the_apex():
    t = np.arange(30) / 30.0
    on = np.zeros(30, bool)
    on[5:12] = True
    on[13:15] = True  # one missed frame (33 ms) inside the episode
    on[25:27] = True
    values = np.where(on, 1.5, 0.2)
    values[9] = 2.5
    table = pd.DataFrame({"source": "clip.mp4", "track": 3, "time_s": t, "au12_lip_corner_puller_l": values, "au12_lip_corner_puller_l_present": on})
    ep = action_unit_episodes(table)
    assert len(ep) == 2
    first = ep.iloc[0]
    assert first["onset_s"] == pytest.approx(5 / 30) and first["offset_s"] == pytest.approx(14 / 30)
    assert first["apex_s"] == pytest.approx(9 / 30) and first["peak_intensity"] == pytest.approx(2.5)


def test_short_eye_closure_is_a_blink():
    t = np.arange(60) / 30.0
    on = np.zeros(60, bool)
    on[10:14] = True  # 0.1 s
    on[30:55] = True  # 0.8 s
    table = pd.DataFrame({"source": "clip.mp4", "track": 0, "time_s": t, "au43_eyes_closed_l": np.where(on, 2.0, 0.0), "au43_eyes_closed_l_present": on})
    assert list(action_unit_episodes(table)["unit"]) == ["au45_blink_l", "au43_eyes_closed_l"]


def test_a_held_grin_is_not_taken_for_the_track_neutral(shared_data):
    from mien import actions
    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.analysis import analyze_frames

    video = Analyzer(Options(mode=Mode.VIDEO, iris=False, baseline_min_frames=15))
    frames = [r[r.track_ids == track] for r in analyze_frames(shared_data / "demo/openmpf/video_01.mp4", video)
              for track in (0, 1)]
    cols = actions.columns()
    # track 0 grins through the whole clip: none of her frames looks neutral, so the population
    # neutral stays, and her lip corners keep reading as pulled up (a track median would cancel them)
    woman = [f for f in frames if len(f) and f.track_ids[0] == 0 and f.reliable[0]]
    assert {f.au_baseline[0] for f in woman} == {"population"} and {int(f.au_baseline_frames[0]) for f in woman} == {0}
    au12 = [cols.index("au12_lip_corner_puller_l"), cols.index("au12_lip_corner_puller_r")]
    assert np.mean([f.actions.present[0, au12].any() for f in woman]) > 0.5
    mouth = [cols.index(c) for c in cols if c.startswith(("au15_", "au23_", "au24_"))]
    assert not any(f.actions.present[0, mouth].any() for f in woman)
    # track 1 looks neutral: after 15 such frames his own neutral takes over, and each row says so
    man = [(f.au_baseline[0], int(f.au_baseline_frames[0])) for f in frames if len(f) and f.track_ids[0] == 1]
    assert man[:15] == [("population", 0)] * 15
    assert {k for k, _ in man[20:]} == {"track"} and all(n >= 15 for _, n in man[20:])


def test_cli_chooses_the_action_unit_baseline_and_experimental_units(shared_data, tmp_path):
    from mien import actions

    runs = {}
    for name, flags in (("track", []), ("population", ["--au-baseline", "population", "--experimental-units"])):
        out = tmp_path / name / "clip.parquet"
        assert main(["analyze", str(shared_data / "demo/openmpf/video_01.mp4"), "-o", str(out), "--end", "1.2"]
                    + flags) == 0
        runs[name] = (pd.read_parquet(out), pd.read_parquet(out.with_name("clip.tracks.parquet")))
    faces = runs["population"][0].dropna(subset=["track"])
    assert set(faces["au_baseline"]) == {"population"} and set(faces["au_baseline_frames"]) == {0}
    assert "track" in set(runs["track"][0]["au_baseline"].dropna())
    experimental = [f"{c}_present_share" for c in actions.columns() if c not in actions.validated_columns()]
    assert experimental and not set(experimental) & set(runs["track"][1].columns)
    assert set(experimental) <= set(runs["population"][1].columns)


def test_a_changed_image_in_a_sequence_changes_the_run_fingerprint(tmp_path, astronaut):
    import os

    from PIL import Image

    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.analysis import VideoOptions, _fingerprint

    for i in range(3):
        Image.fromarray(astronaut).save(tmp_path / f"{i}.png")
    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    before = _fingerprint(tmp_path, analyzer, VideoOptions(), [])
    Image.fromarray(astronaut[:, ::-1]).save(tmp_path / "1.png")  # same name and size, new pixels
    os.utime(tmp_path / "1.png", ns=(1, 10**18))
    assert _fingerprint(tmp_path, analyzer, VideoOptions(), []) != before


def test_report_of_a_sparse_run_without_perceived_expression_or_action_units(shared_data, tmp_path):
    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.analysis import VideoOptions, run_video

    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False, perceived=False, action_units=False))
    report = tmp_path / "sparse.html"
    run_video(shared_data / CLIP, tmp_path / "sparse.parquet", analyzer, VideoOptions(target_fps=1.0), report=report)
    text = report.read_text()
    assert "<h3>Perceived expression" not in text and "<h3>Most active action units" not in text
    page = text[: text.index("<script>")]  # the script's isNaN is not a missing value
    assert "Head pose" in page and "nan" not in page.lower().replace("nanosecond", "")
    # frames 1 s apart still draw lines, not invisible one-point pieces
    lines = re.findall(r'<polyline[^>]*points="([^"]*)"', text)
    assert lines and all(len(points.split()) >= 2 for points in lines)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_tables_joined_from_many_parts_equal_one_written_at_once(shared_data, tmp_path, suffix):
    from mien.analyzer import Analyzer, Mode, Options
    from mien.io import write_table
    from mien.results import to_frame
    from mien.video.analysis import VideoOptions, analyze_frames, run_video

    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    options = VideoOptions(end_s=1.0)
    out = tmp_path / f"parts{suffix}"
    run_video(shared_data / "demo/openmpf/video_01.mp4", out, analyzer, options, checkpoint_every=7, landmarks=True)
    once = write_table(to_frame(analyze_frames(shared_data / "demo/openmpf/video_01.mp4", analyzer, options), landmarks=True),
                       tmp_path / f"once{suffix}")
    if suffix == ".parquet":  # row groups differ, content not
        pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(once))
    elif suffix == ".json":  # layout differs, content not
        assert json.loads(out.read_text()) == json.loads(once.read_text())
    else:
        assert out.read_bytes() == once.read_bytes()


def test_apex_faces_kept_while_the_video_plays_are_those_of_the_finished_table():
    """The report's faces are cut during the one decoding pass, before the episodes are known: the
    apexes found row by row are those of the finished table, and every apex the report shows was
    kept (random tracks, gaps, missing values, ties, units over threshold but overruled)."""
    from mien import actions
    from mien.video.report import apex_frames
    from mien.video.sinks import EpisodeApexes

    rng = np.random.default_rng(7)
    every, pruned = EpisodeApexes(top=10**6), EpisodeApexes()
    columns = [actions.columns()[k] for k in every.units]
    rows = []
    time_s = 0.0
    for frame in range(1500):
        time_s += rng.choice([1 / 30] * 8 + [0.08, 0.15])
        for track in np.flatnonzero(rng.random(4) < 0.9).tolist():
            values = np.round(rng.gamma(1.0, 0.8, len(columns)), 1)  # rounded: ties happen
            values[rng.random(len(columns)) < 0.05] = np.nan
            present = (values >= 1) & (rng.random(len(columns)) > 0.4)  # some overruled
            for apexes in (every, pruned):
                if apexes.step(track, frame, time_s, values, present):
                    apexes.crops[track, frame] = b"face"
            rows.append({"source": "v", "frame": frame, "track": track, "time_s": time_s, **dict(zip(columns, values)),
                         **{f"{c}_present": p for c, p in zip(columns, present)}})
        if frame % 50 == 49:
            pruned.prune()
    pruned.prune()
    table = pd.DataFrame(rows)
    episodes = action_unit_episodes(table)
    every_apex = episodes.merge(table, left_on=["track", "apex_s"], right_on=["track", "time_s"])
    found = {(t, f) for t, ended in every.closed.items() for _, f in ended}
    found |= {(t, int(f)) for t, s in every.tracks.items() for f in s["best_frame"][s["open"]]}
    assert len(episodes) > 1000
    assert sorted(found) == sorted(set(zip(every_apex["track"], every_apex["frame"])))
    shown = apex_frames(table, episodes)
    assert shown <= set(pruned.crops), "an apex the report shows was not kept"
    assert len(pruned.crops) < len(every_apex) / 4  # and not the face of every episode


def test_apex_is_the_first_of_tied_rows_in_a_gap_of_the_episode():
    """Inside an episode, two equal rows where the unit is not present, both above every present
    row: the apex is the first of them, as ``action_unit_episodes`` finds it in the table."""
    from mien import actions
    from mien.video.sinks import EpisodeApexes

    apexes = EpisodeApexes(top=10**6)
    columns = [actions.columns()[k] for k in apexes.units]
    series = [(1.0, True), (2.0, False), (2.0, False), (1.2, True), (0.0, False)]
    rows = []
    for frame, (value, is_present) in enumerate(series):
        time_s = frame / 30 if frame < 4 else 10.0  # the last row comes after the episode has ended
        values = np.full(len(columns), np.nan)
        present = np.zeros(len(columns), bool)
        values[0], present[0] = value, is_present
        apexes.step(1, frame, time_s, values, present)
        rows.append({"source": "v", "frame": frame, "track": 1, "time_s": time_s, **dict(zip(columns, values)),
                     **{f"{c}_present": p for c, p in zip(columns, present)}})
    episodes = action_unit_episodes(pd.DataFrame(rows))
    assert episodes["apex_s"].tolist() == [1 / 30]
    assert apexes.closed[1] == [(2.0, 1)]
