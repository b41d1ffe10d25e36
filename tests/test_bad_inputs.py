"""Every kind of bad input gets a specific message, and a batch goes on past it."""
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from mien.images import ImageReadError, read_image


@pytest.fixture(scope="module")
def photo(astronaut) -> Image.Image:
    return Image.fromarray(astronaut)


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def expect_error(path, fragment: str):
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    assert fragment in str(info.value)


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    expect_error(tmp_path / "empty.jpg", "empty file")


def test_truncated_jpeg(tmp_path, photo):
    data = jpeg_bytes(photo)
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    expect_error(tmp_path / "cut.jpg", "truncated")


def test_corrupt_png(tmp_path, photo):
    data = bytearray(png_bytes(photo))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    (tmp_path / "broken.png").write_bytes(bytes(data))
    expect_error(tmp_path / "broken.png", "corrupt")


def test_truncated_png(tmp_path, photo):
    data = png_bytes(photo)
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 3])
    expect_error(tmp_path / "cut.png", "truncated")


def test_not_an_image(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is a text file, not a photo\n")
    expect_error(tmp_path / "notes.jpg", "not an image file")


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nowhere.png", "file not found")


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    expect_error(tmp_path / "dot.png", "1x1 pixels")


def test_unreadable_file(tmp_path, photo, monkeypatch):
    path = tmp_path / "locked.jpg"
    path.write_bytes(jpeg_bytes(photo))

    def deny(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("mien.images.Image.open", deny)
    expect_error(path, "Permission denied")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")


def test_huge_png_is_refused_before_decoding(tmp_path):
    (tmp_path / "huge.png").write_bytes(_png_header_only(20000, 20000))
    expect_error(tmp_path / "huge.png", "20000x20000")


def test_huge_jpeg_is_downscaled_with_bounded_memory(tmp_path):
    path = tmp_path / "huge.jpg"
    Image.new("L", (20000, 20000), 128).save(path, quality=50)
    # VmHWM (peak RSS of this process image) rather than ru_maxrss, which Linux carries over from
    # the forking pytest process.
    code = (
        "import re; from mien.images import read_image;"
        f"a = read_image({str(path)!r}); "
        "kb = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
        "print(a.shape[0], a.shape[1], kb // 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    height, width, peak_mb = map(int, out)
    assert height * width <= 50_000_000 and height == width
    assert peak_mb < 600, f"peak memory {peak_mb} MB"


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "CMYK", "P"])
def test_other_colour_modes_find_the_face(tmp_path, photo, analyzer, mode):
    if mode == "I;16":
        grey = np.asarray(photo.convert("L"), np.uint16) * 257
        img = Image.fromarray(grey)
        assert img.mode == "I;16"
        path = tmp_path / "deep.png"
        img.save(path)
    elif mode == "CMYK":
        path = tmp_path / "cmyk.jpg"
        photo.convert("CMYK").save(path, quality=92)
    else:
        path = tmp_path / f"{mode}.png"
        photo.convert(mode).save(path)
    rgb = read_image(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    assert len(analyzer.analyze(rgb)) == 1


def test_exif_orientation_is_honoured(tmp_path, photo, analyzer):
    # Store the pixels turned on their side with an EXIF tag that says how to turn them back.
    sideways = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # display: rotate 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    sideways.save(path, quality=92, exif=exif.tobytes())
    rgb = read_image(path)
    assert rgb.shape == (512, 512, 3)
    faces = analyzer.analyze(rgb)
    assert abs(faces.pose.roll[0]) < 10
    np.testing.assert_allclose(faces.boxes[0, :2], analyzer.analyze(np.asarray(photo)).boxes[0, :2], atol=6)


def test_non_ascii_file_name(tmp_path, photo, analyzer):
    path = tmp_path / "visage_été_顔.png"
    photo.save(path)
    assert len(analyzer.analyze_file(path)) == 1


def test_analyze_file_reports_instead_of_raising(tmp_path, analyzer):
    (tmp_path / "empty.png").write_bytes(b"")
    result = analyzer.analyze_file(tmp_path / "empty.png")
    assert result.status == "error" and "empty" in result.error and len(result) == 0


def test_array_input_is_checked(analyzer):
    with pytest.raises(ValueError, match="RGB uint8"):
        analyzer.analyze(np.zeros((64, 64), np.uint8))
