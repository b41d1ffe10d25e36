import numpy as np
import pytest
from PIL import Image

from mien.analyzer import Analyzer, Options
from mien.video import VideoReadError, frames, probe


def test_rotated_phone_video_comes_out_upright(shared_data):
    path = shared_data / "demo/openmpf/new_face_video-90.mp4"
    info = probe(path)
    assert info.rotation in (90, -90, 270)
    first = next(frames(path, start_s=1.0))
    assert first.rgb.shape == (480, 640, 3)  # stored 480 wide, 640 tall; shown landscape
    roll = Analyzer(Options(iris=False)).analyze(first.rgb).pose.roll[0]
    assert abs(roll) < 25, f"roll {roll:.0f}: the frame is not upright"
    sideways = np.ascontiguousarray(np.rot90(first.rgb))
    turned = Analyzer(Options(iris=False)).analyze(sideways)
    assert not len(turned) or abs(turned.pose.roll[0]) > 60


def test_timestamps_stride_rate_and_range(shared_data):
    path = shared_data / "demo/openmpf/video_01.mp4"
    every = list(frames(path))
    times = np.array([f.time_s for f in every])
    assert (np.diff(times) > 0).all() and times[0] == 0.0
    assert [f.index for f in frames(path, stride=10)] == list(range(0, len(every), 10))
    sampled = [f.time_s for f in frames(path, target_fps=5)]
    assert len(sampled) == pytest.approx(times[-1] * 5 + 1, abs=1)
    window = [f.time_s for f in frames(path, start_s=1.0, end_s=2.0)]
    assert min(window) >= 1.0 and max(window) <= 2.0 and len(window) >= 25


def test_image_sequence_folder(tmp_path, astronaut):
    for i in range(3):
        Image.fromarray(astronaut).save(tmp_path / f"f{i:03d}.png")
    (tmp_path / "f003.png").write_bytes(b"broken")
    got = list(frames(tmp_path, sequence_fps=10))
    assert [f.time_s for f in got] == [0.0, 0.1, 0.2, 0.3]
    assert got[3].rgb is None and "f003.png" in got[3].error


@pytest.mark.parametrize("content,message", [(b"", "empty file"), (b"not a video at all" * 100, "cannot open")])
def test_bad_video_files(tmp_path, content, message):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoReadError, match=message):
        list(frames(path))


def test_image_sequence_is_read_in_natural_order(tmp_path, astronaut):
    import cv2

    for i in (10, 2, 1):
        shade = np.full_like(astronaut, i * 20)
        cv2.imwrite(str(tmp_path / f"frame_{i}.png"), shade)
    got = list(frames(tmp_path, sequence_fps=4))
    assert [int(f.rgb[0, 0, 0]) for f in got] == [20, 40, 200]
    assert [f.time_s for f in got] == [0.0, 0.25, 0.5]


def test_folder_as_a_video_through_the_command(tmp_path, astronaut):
    import pandas as pd

    from mien.cli import main

    folder = tmp_path / "session.v1"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(astronaut, 3 * i, axis=1)).save(folder / f"{i}.png")
    (folder / "6.png").write_bytes(b"broken")
    out = tmp_path / "out"
    code = main(["analyze", str(folder), "-o", str(out), "--format", "csv", "--sequence", "12.5", "--report", str(tmp_path / "reports")])
    assert code == 1  # the broken image is reported; the rest is analysed
    table = pd.read_csv(out / "session.v1.csv")
    faces = table[table["track"].notna()]
    assert sorted(faces["frame"]) == [0, 1, 2, 3, 4, 5] and faces["track"].nunique() == 1
    assert faces["time_s"].tolist() == pytest.approx([i / 12.5 for i in range(6)])
    assert (table["status"] == "error").sum() == 1
    assert (out / "session.v1.tracks.csv").exists() and (tmp_path / "reports/session.v1.html").exists()


def test_without_sequence_a_folder_is_a_set_of_images(tmp_path, astronaut):
    import pandas as pd

    from mien.cli import main

    for i in range(2):
        Image.fromarray(astronaut).save(tmp_path / f"{i}.png")
    assert main(["analyze", str(tmp_path), "-o", str(tmp_path / "t.csv")]) == 0
    assert "track" not in pd.read_csv(tmp_path / "t.csv") or pd.read_csv(tmp_path / "t.csv")["track"].isna().all()


def test_variable_frame_rate_keeps_the_container_timestamps():
    from pathlib import Path

    times = [f.time_s for f in frames(Path(__file__).parent / "fixtures/vfr.mp4")]
    # tools/make_vfr_fixture.py wrote these presentation times; index / fps would be evenly spaced
    assert times == pytest.approx([0.0, 0.04, 0.08, 0.2, 0.24, 0.5, 0.54, 0.58, 1.0, 1.04, 1.08, 1.5], abs=1e-3)
    assert [f.index for f in frames(Path(__file__).parent / "fixtures/vfr.mp4", start_s=0.45, end_s=1.02)] == [5, 6, 7, 8]


@pytest.mark.parametrize("suffix,fourcc", [(".mp4", "mp4v"), (".mov", "mp4v"), (".mkv", "mp4v"), (".avi", "MJPG"), (".webm", "VP80")])
def test_containers_decode_with_their_faces(tmp_path, astronaut, suffix, fourcc):
    import cv2

    path = tmp_path / f"clip{suffix}"
    face = cv2.resize(astronaut, (256, 256))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (256, 256))
    for i in range(8):
        writer.write(cv2.cvtColor(np.roll(face, 2 * i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    got = list(frames(path))
    assert [f.time_s for f in got] == pytest.approx([i / 25 for i in range(8)], abs=1e-3)
    assert len(Analyzer(Options(iris=False)).analyze(got[4].rgb))


def test_truncated_video_is_reported_after_its_frames_are_analysed(shared_data, tmp_path, capsys):
    import pandas as pd

    from mien.cli import main

    whole = (shared_data / "demo/openmpf/video_01.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    assert main(["analyze", str(cut), "-o", str(tmp_path / "cut.csv"), "--stride", "4"]) == 1
    table = pd.read_csv(tmp_path / "cut.csv")
    error = table[table["status"] == "error"]
    assert len(error) == 1 and "truncated" in error["error"].item() and "of the 90 frames" in error["error"].item()
    analysed = table.loc[table["status"] == "ok", "frame"]
    assert analysed.nunique() >= 8 and (analysed % 4 == 0).all() and analysed.max() < error["frame"].item()
    assert "truncated" in capsys.readouterr().err


@pytest.mark.parametrize("options", [dict(target_fps=7.0), dict(stride=4), dict(start_s=0.5, target_fps=11.0)])
def test_resuming_picks_the_same_frames_as_an_uninterrupted_read(shared_data, options):
    path = shared_data / "demo/openmpf/video_01.mp4"
    whole = [f.index for f in frames(path, **options)]
    for after in (whole[2], whole[3] + 1):
        assert [f.index for f in frames(path, after_index=after, **options)] == [i for i in whole if i > after]


def test_resuming_past_a_failed_frame_selects_the_same_frames(tmp_path, astronaut):
    small = np.ascontiguousarray(astronaut[::8, ::8])
    for i in range(12):
        Image.fromarray(small).save(tmp_path / f"f{i:02d}.png")
    (tmp_path / "f03.png").write_bytes(b"broken")
    whole = [(f.index, f.rgb is None) for f in frames(tmp_path, target_fps=10.0, sequence_fps=30.0)]
    assert (3, True) in whole
    for after, _ in whole:
        resumed = [(f.index, f.rgb is None) for f in frames(tmp_path, target_fps=10.0, sequence_fps=30.0, after_index=after)]
        assert resumed == [w for w in whole if w[0] > after]


def test_a_video_cut_before_its_first_frame_is_reported_as_truncated(shared_data, tmp_path):
    whole = (shared_data / "demo/openmpf/video_01.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 50])
    got = list(frames(cut))
    assert [f.rgb for f in got] == [None] and "truncated" in got[-1].error


def test_a_sequence_whose_first_image_is_broken_still_runs(tmp_path, astronaut, monkeypatch, capsys):
    import pandas as pd

    from mien.cli import main

    folder = tmp_path / "takes"
    folder.mkdir()
    (folder / "0.png").write_bytes(b"broken")
    for i in (1, 2):
        Image.fromarray(astronaut).save(folder / f"{i}.png")
    monkeypatch.chdir(folder)
    assert main(["analyze", ".", "-o", str(tmp_path / "out"), "--format", "csv", "--sequence", "25"]) == 1
    table = pd.read_csv(tmp_path / "out" / "takes.csv")  # "." is named after the folder it is
    assert table["status"].tolist()[0] == "error" and (table["status"] == "ok").sum() == 2


def test_decoded_frames_reuse_the_memory_of_frames_let_go_and_never_of_frames_still_held(shared_data):
    stream = frames(shared_data / "demo/openmpf/video_01.mp4")
    first = next(stream)
    corner = first.rgb[:40, :40]  # a view held without its frame
    expected = corner.copy()
    del first
    memories = [frame.rgb.base for frame, _ in zip(stream, range(60))]  # each frame let go of at once
    assert all(isinstance(m, bytearray) for m in memories)
    assert len({id(m) for m in memories}) <= 2  # one slot, and one more while a frame is being replaced
    assert np.array_equal(corner, expected)
    assert all(m is not corner.base.base for m in memories)


def test_frame_memory_is_reused_again_after_the_frames_change_size():
    from mien.video.decode import PixelMemory

    memory = PixelMemory(most=2)
    for _ in range(2):  # two slots of the first size, both let go of
        memory.rgb(np.zeros((4, 4, 3), np.uint8))
    held = memory.rgb(np.zeros((8, 8, 3), np.uint8))  # the new size takes a free slot's place
    assert isinstance(held.base, bytearray)
    again = [memory.rgb(np.zeros((8, 8, 3), np.uint8)).base for _ in range(3)]  # and is reused from then on
    assert all(isinstance(m, bytearray) for m in again) and len({id(m) for m in again}) == 1
