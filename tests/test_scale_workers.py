"""Worker processes: the same rows, values and order as one process, whatever the number of workers."""
import shutil
import sys

import pandas as pd
import pytest
from PIL import Image

from mien.cli import main
from mien.scale.workers import MAX_BATCH, batch_size, run_tasks


@pytest.fixture()
def mixed_inputs(tmp_path, astronaut, shared_data):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, size in enumerate([(512, 512), (300, 300), (200, 260), (640, 480)]):
        Image.fromarray(astronaut).resize(size).save(folder / f"face_{i}.png")
    Image.new("RGB", (120, 90), (90, 120, 200)).save(folder / "no_face.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    shutil.copy(shared_data / "demo/pillow/hopper.jpg", folder / "hopper.jpg")
    shutil.copy(shared_data / "demo/openmpf/video_01.mp4", folder / "clip_a.mp4")
    shutil.copy(shared_data / "demo/openmpf/new_face_video-90.mp4", folder / "clip_b.mp4")
    return folder


def test_two_workers_write_exactly_what_one_writes(mixed_inputs, tmp_path, capsys):
    outs = {}
    for workers in (1, 2):
        outs[workers] = tmp_path / f"out{workers}"
        assert main(["analyze", str(mixed_inputs), "-o", str(outs[workers]), "--workers", str(workers), "--end", "4",
                     "--annotate", str(tmp_path / f"pics{workers}")]) == 1
        err = capsys.readouterr().err
        assert "broken.jpg" in err and "clip_a.mp4: 90 frames" in err and "clip_b.mp4: 120 frames" in err
    # the two videos ran side by side, each drawing its annotated video in its worker
    videos = sorted(p.name for p in (tmp_path / "pics2").glob("clip_*_annotated.*"))
    assert len(videos) == 2 and videos == sorted(p.name for p in (tmp_path / "pics1").glob("clip_*_annotated.*"))
    for name in videos:
        assert _decoded(tmp_path / "pics1" / name) == _decoded(tmp_path / "pics2" / name)
    names = sorted(p.name for p in outs[1].iterdir())
    assert names == sorted(p.name for p in outs[2].iterdir())
    assert {"images.parquet", "clip_a.parquet", "clip_b.tracks.parquet", "clip_b.episodes.parquet"} <= set(names)
    for name in names:
        pd.testing.assert_frame_equal(pd.read_parquet(outs[1] / name), pd.read_parquet(outs[2] / name), check_exact=True)
    images = pd.read_parquet(outs[2] / "images.parquet")
    assert images["source"].str.rsplit("/", n=1).str[-1].unique().tolist() == [
        "broken.jpg", "face_0.png", "face_1.png", "face_2.png", "face_3.png", "hopper.jpg", "no_face.png"]


def _decoded(path) -> list[tuple[int, bytes]]:
    import av

    with av.open(str(path)) as video:
        return [(frame.pts, frame.to_ndarray(format="rgb24").tobytes()) for frame in video.decode(video=0)]


def _square(_analyzer, x):
    return x * x


def test_results_come_back_with_their_positions():
    from mien.analyzer import Options

    options = Options(iris=False, perceived=False)
    for count in (20, 100):  # one task per message, and batches of them (see batch_size)
        pooled = list(run_tasks([(_square, options, x) for x in range(count)], workers=2, short=count > 20))
        assert dict(pooled) == {i: i * i for i in range(count)} and len(pooled) == count
    assert batch_size(20, 2) == 1 and batch_size(100, 2) == 6 and batch_size(10**6, 2) == MAX_BATCH
    with pytest.raises(ValueError, match="at least 1"):
        list(run_tasks([(_square, options, 1)], workers=0))


def test_without_ray_the_option_says_how_to_install_it(monkeypatch, tmp_path, capsys, astronaut):
    from PIL import Image

    Image.fromarray(astronaut).save(tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["analyze", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--ray", "auto"]) == 2
    assert 'pip install "mien[ray]"' in capsys.readouterr().err


def test_a_ctrl_c_while_a_task_is_submitted_comes_once_the_submission_is_done():
    """Submitting may start a worker process; one cut off half-way printed a traceback after mien
    had said it was interrupted."""
    import os
    import signal

    from mien.scale.workers import ctrl_c_held

    steps = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("signal sent")
            steps.append("submission done")
    assert steps == ["signal sent", "submission done"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
