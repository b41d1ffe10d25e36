"""Inputs a hostile or unlucky user gives mien (issue 14): odd file names, special files in folders,
files that are not what their suffix says. Each gets a row, with a specific message."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mien.cli import expand_inputs, main
from mien.paths import source_path, source_text

FIXTURES = Path(__file__).parent / "fixtures"
NON_UTF8 = os.fsdecode(b"caf\xe9")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command in a child process, so that a crash or a hang fails the test instead of the suite."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "mien", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("name", [b"caf\xe9.mp4", b"plain.jpg", "été.png".encode(), b"a\\x41", b"a\\\xe9", b"\\\\srv\\x",
                                  b"\xff\xfe\\", b"tab\there"])
def test_source_text_is_utf8_and_gives_the_exact_name_back(name):
    text = source_text(os.fsdecode(name))
    text.encode("utf-8")  # storable in every table format
    assert os.fsencode(source_path(text)) == name


def test_valid_names_are_written_unchanged():
    assert source_text("photos/été 2024/IMG_0001.jpg") == "photos/été 2024/IMG_0001.jpg"


@pytest.mark.skipif(sys.platform == "win32", reason="file names are always Unicode on Windows")
def test_an_image_whose_name_is_not_utf8_gets_its_row(tmp_path, astronaut):
    image = tmp_path / f"{NON_UTF8}.jpg"
    Image.fromarray(astronaut).save(image)
    out = tmp_path / "o.parquet"
    assert main(["analyze", str(image), "-o", str(out)]) == 0
    table = pd.read_parquet(out)
    assert table["status"].tolist() == ["ok"]
    assert source_path(table["source"].iloc[0]) == image


@pytest.mark.skipif(sys.platform == "win32", reason="file names are always Unicode on Windows")
def test_a_video_whose_name_is_not_utf8_is_decoded_without_crashing(tmp_path):
    video = tmp_path / f"{NON_UTF8}.mp4"
    shutil.copy(FIXTURES / "vfr.mp4", video)
    out = tmp_path / "o.csv"
    done = run_cli("analyze", str(tmp_path), "-o", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out)
    assert len(table) == 12 and set(table["status"]) == {"no_face"}
    assert {source_path(s) for s in table["source"]} == {video}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_every_folder_entry_becomes_a_row_and_a_pipe_is_never_opened(tmp_path, astronaut):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "face.png")
    (folder / "broken.jpg").symlink_to("nowhere.jpg")
    (folder / "loop.jpg").symlink_to("loop.jpg")
    (folder / "device.jpg").symlink_to("/dev/null")
    os.mkfifo(folder / "pipe.png")
    os.mkfifo(folder / "pipe_without_suffix")
    out = tmp_path / "o.csv"
    done = run_cli("analyze", str(folder), "-o", str(out), "--format", "csv", timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    rows = pd.read_csv(out, keep_default_na=False).set_index("source")["error"]
    errors = {Path(name).name: message for name, message in rows.items()}
    assert errors["face.png"] == ""
    assert errors["broken.jpg"].startswith("broken symbolic link")
    assert errors["loop.jpg"].startswith("symbolic link loop")
    assert errors["device.jpg"] == "is a character device, not a regular file"
    assert errors["pipe.png"] == errors["pipe_without_suffix"] == "is a named pipe (FIFO), not a regular file"
    assert "empty" not in " ".join(errors.values())


def test_a_link_to_a_video_device_is_an_error_row(tmp_path):
    (tmp_path / "clip.mp4").symlink_to("/dev/zero")
    out = tmp_path / "o.csv"
    done = run_cli("analyze", str(tmp_path / "clip.mp4"), "-o", str(out))
    assert done.returncode == 1
    assert pd.read_csv(out)["error"].tolist() == ["is a character device, not a regular file"]


def test_links_to_folders_are_not_followed_and_say_so(tmp_path, astronaut):
    Image.fromarray(astronaut).save(tmp_path / "face.png")
    (tmp_path / "up").symlink_to("..")
    files, notes = expand_inputs([str(tmp_path)])
    assert files == [tmp_path / "face.png"]
    assert notes == [f"{tmp_path}: did not follow 1 link(s) to folders (a link may lead back into the folder)"]


def _importing_mien(pid: int) -> bool:
    """Whether the process catches SIGINT and has loaded numpy's extension, so that Python's own start-up (where a
    Ctrl-C kills any program, or stops it with "Fatal Python error: init_import_site") is over and mien's imports run."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signal.SIGINT - 1))) and "_multiarray_umath" in maps


def test_a_ctrl_c_while_a_native_library_is_imported_arrives_after_the_import():
    from mien.runtime import ctrl_c_held_back

    reached = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_held_back():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # where a KeyboardInterrupt would land if it were not held back
            reached.append(True)
    assert reached == [True]


def test_ctrl_c_while_starting_is_one_line_and_exit_130(tmp_path, astronaut):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    folder = tmp_path / "faces"  # enough photos that the run is still going when the signal comes, even on a busy machine
    folder.mkdir()
    for i in range(60):
        Image.fromarray(astronaut).save(folder / f"face{i}.png")
    child = subprocess.Popen([sys.executable, "-m", "mien", "analyze", str(folder), "-o", str(tmp_path / "o.csv")],
                             stderr=subprocess.PIPE, text=True, env=env)
    # wait until Python's own start-up is over (seen in /proc), then interrupt mien while it imports its libraries
    deadline = time.monotonic() + 30
    while not _importing_mien(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("mien: interrupted"), err


def test_interlaced_frames_that_opencv_cannot_convert_are_failed_frames():
    from mien.video import frames

    decoded = list(frames(FIXTURES / "interlaced.mpg"))
    assert len(decoded) == 6
    assert all(f.rgb is None and f.error.startswith("interlaced video, which this build of OpenCV cannot convert")
               for f in decoded)


def test_a_black_video_is_black_frames_not_failures(tmp_path):
    import cv2

    from mien.video import frames

    path = tmp_path / "black.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(5):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    decoded = list(frames(path))
    assert len(decoded) == 5 and all(f.error == "" and f.rgb.max() <= 2 for f in decoded)


def test_a_jpeg_decoded_at_reduced_size_reports_the_files_own_pixels(tmp_path, astronaut, analyzer, monkeypatch):
    from mien import images

    path = tmp_path / "large.jpg"
    Image.fromarray(astronaut).resize((2048, 2048), Image.Resampling.BICUBIC).save(path, quality=95)
    full = analyzer.analyze_file(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 2_000_000)  # 2048x2048 is above it: decoded at 1/2 size
    reduced = analyzer.analyze_file(path)
    assert (reduced.width, reduced.height) == (full.width, full.height) == (2048, 2048)
    assert reduced.note.startswith("decoded at 1/2 size (2048x2048 is above the 2 MP limit)")
    assert len(reduced) == len(full) == 1
    np.testing.assert_allclose(reduced.boxes, full.boxes, atol=8)
    np.testing.assert_allclose(reduced.quality.iod_px, full.quality.iod_px, rtol=0.03)
    np.testing.assert_allclose(reduced.landmarks[0, :, :2], full.landmarks[0, :, :2], atol=8)
    np.testing.assert_allclose(reduced.iris, full.iris, atol=8)
    assert main(["analyze", str(path), "-o", str(tmp_path / "o.csv")]) == 0
    table = pd.read_csv(tmp_path / "o.csv")
    assert table["image_width"].tolist() == [2048] and table["note"].str.startswith("decoded at 1/2 size").all()


def test_a_sideways_exif_photo_reports_its_upright_size(tmp_path, photo_rect):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    photo_rect.save(path, exif=exif.tobytes())
    from mien.images import decode_image

    image = decode_image(path)
    assert (image.width, image.height) == (image.rgb.shape[1], image.rgb.shape[0]) == (photo_rect.height, photo_rect.width)


@pytest.fixture()
def photo_rect(astronaut):
    return Image.fromarray(astronaut[:, :400])


@pytest.mark.parametrize("suffix", [".gif", ".tif", ".png"])
def test_a_multi_frame_file_says_only_its_first_frame_was_analysed(tmp_path, astronaut, suffix):
    from mien.images import decode_image

    frames = [Image.fromarray(astronaut).rotate(10 * i) for i in range(3)]
    path = tmp_path / f"many{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert decode_image(path).note == "first of 3 frames analysed (a multi-frame file)"
    Image.fromarray(astronaut).save(tmp_path / f"one{suffix}")
    assert decode_image(tmp_path / f"one{suffix}").note == ""


def test_a_32_bit_tiff_above_16_bits_is_scaled_not_saturated(tmp_path, astronaut):
    from mien.images import read_image

    grey = astronaut.mean(2)
    path = tmp_path / "deep.tif"
    Image.fromarray((grey * 4000).astype(np.int32)).save(path)
    rgb = read_image(path)
    assert (rgb == 255).mean() < 0.01
    assert np.corrcoef(rgb[..., 0].ravel(), grey.ravel())[0, 1] > 0.99


def test_a_png_with_large_text_metadata_is_not_called_corrupt(tmp_path, astronaut):
    from PIL import PngImagePlugin

    from mien.images import ImageReadError, read_image

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * 3_000_000, zip=True)
    path = tmp_path / "meta.png"
    Image.fromarray(astronaut).save(path, pnginfo=info)
    with pytest.raises(ImageReadError, match="text metadata is larger than the 1 MB") as error:
        read_image(path)
    assert "corrupt" not in str(error.value)


@pytest.mark.parametrize("suffix", [".ts", ".mts"])
def test_transport_streams_are_read_as_videos(tmp_path, suffix):
    clip = tmp_path / f"clip{suffix}"
    shutil.copy(FIXTURES / "vfr.mp4", clip)  # FFmpeg goes by the content; mien by the suffix
    out = tmp_path / "o.csv"
    assert main(["analyze", str(clip), "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == 12


def test_a_codec_opencv_cannot_decode_is_named_not_called_truncation():
    from mien.video import frames

    decoded = list(frames(FIXTURES / "av1.mp4"))
    if all(f.rgb is not None for f in decoded):
        pytest.skip("this OpenCV build decodes AV1")
    assert len(decoded) == 1 and "truncated" not in decoded[0].error
    assert decoded[0].error.startswith("this build of OpenCV cannot decode the video's codec (AV01;")


def test_a_second_longer_video_stream_is_not_called_truncation():
    from mien.video import frames

    decoded = list(frames(FIXTURES / "two_videos.mkv"))
    assert len(decoded) == 6 and all(f.error == "" for f in decoded)


def test_a_matroska_file_cut_short_gets_an_error_row(tmp_path, astronaut):
    import cv2

    whole = tmp_path / "whole.mkv"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"mp4v"), 25, (128, 128))
    face = cv2.cvtColor(cv2.resize(astronaut, (128, 128)), cv2.COLOR_RGB2BGR)
    for i in range(50):
        writer.write(np.roll(face, i, axis=1))
    writer.release()
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 9 // 10])
    out = tmp_path / "cut.csv"
    assert main(["analyze", str(cut), "-o", str(out)]) == 1
    table = pd.read_csv(out)
    errors = table.loc[table["status"] == "error", "error"].tolist()
    assert len(errors) == 1 and errors[0].startswith("decoding stopped after") and "the file ends early" in errors[0]
    assert 30 < table["frame"].nunique() < 51


def test_a_file_whose_further_frames_are_damaged_keeps_its_first(tmp_path, astronaut):
    from mien import images

    class DamagedPages:  # what Pillow does with a TIFF whose second page header was overwritten
        position = 1

        @property
        def n_frames(self):
            raise TypeError("Missing dimensions")

        def seek(self, frame):
            self.position = frame

    pages = DamagedPages()
    assert images._frame_count(pages) == 0 and pages.position == 0
    assert images._note(1, 0, 96, 96) == "first frame analysed; the file's further frames are damaged"


def test_not_a_number_pixels_do_not_blank_a_float_tiff(tmp_path, astronaut):
    from mien.images import read_image

    grey = astronaut.mean(2).astype(np.float32)
    path = tmp_path / "holes.tif"
    Image.fromarray(np.where(grey > 200, np.nan, grey)).save(path)
    rgb = read_image(path)
    assert rgb.max() == 255 and np.corrcoef(rgb[..., 0][grey <= 200], grey[grey <= 200])[0, 1] > 0.99


def test_a_video_without_a_single_frame_gets_an_error_row(tmp_path):
    import cv2

    path = tmp_path / "empty.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64)).release()  # a container, no frames
    out = tmp_path / "empty.csv"
    assert main(["analyze", str(path), "-o", str(out)]) == 1
    table = pd.read_csv(out)
    assert table["status"].tolist() == ["error"]
    assert table["error"].item().startswith("no video frame could be decoded")


def test_an_import_that_a_ctrl_c_broke_ends_as_an_interruption_and_other_import_errors_stay_errors(monkeypatch, capsys):
    import mien.cli as cli

    def broken_by_ctrl_c(_args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt

    def missing(_args):
        raise ImportError("No module named 'nothing'")

    for func, expected in ((broken_by_ctrl_c, 130), (missing, None)):
        monkeypatch.setattr(cli, "run_schema", func)
        if expected is None:
            with pytest.raises(ImportError, match="nothing"):
                cli.main(["schema"])
        else:
            assert cli.main(["schema"]) == expected
            assert capsys.readouterr().err.strip() == "mien: interrupted; outputs already written are complete"
