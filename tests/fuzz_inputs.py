"""Seeded hostile inputs for the fuzz test (tests/test_fuzz.py) and benchmarks/fuzz.py, and the
checks that mien's command handles them: no crash, no hang, one row per input, and a specific
message for every failure.

Inputs are made from small valid files (images in every format mien reads, in odd sizes and
sample types; short videos in several containers) by truncating them, flipping bits and
overwriting header bytes with boundary values, so they reach the decoders' corners.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
SRC = Path(__file__).resolve().parents[1] / "src"
# Words that say nothing about what went wrong; every error row must say more than these.
VAGUE = ("error", "unknown error", "failed", "exception", "traceback")
BOUNDARY_WORDS = (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x01", b"\x80\x00\x00\x00",
                  b"\x00\x00\xff\xff", b"\xff\xfe")


def _face(size: int) -> np.ndarray:
    from importlib import resources

    with resources.files("mien").joinpath("data/astronaut.png").open("rb") as fh:
        return np.asarray(Image.open(fh).convert("RGB").resize((size, size)))


def _encode(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def image_seeds() -> dict[str, bytes]:
    """Valid images: every format, odd sizes and sample types (file name -> bytes)."""
    rgb = Image.fromarray(_face(96))
    grey = np.asarray(rgb.convert("L"))
    frames = [rgb.rotate(15 * i) for i in range(3)]
    seeds = {
        "face.jpg": _encode(rgb, "JPEG", quality=90),
        "progressive.jpg": _encode(rgb, "JPEG", progressive=True),
        "face.png": _encode(rgb, "PNG"),
        "rgba.png": _encode(rgb.convert("RGBA"), "PNG"),
        "palette.png": _encode(rgb.convert("P"), "PNG", transparency=0),
        "deep16.png": _encode(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"),
        "bilevel.png": _encode(rgb.convert("1"), "PNG"),
        "face.bmp": _encode(rgb, "BMP"),
        "face.gif": _encode(rgb, "GIF"),
        "animated.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "face.tif": _encode(rgb, "TIFF"),
        "cmyk.tif": _encode(rgb.convert("CMYK"), "TIFF"),
        "int32.tif": _encode(Image.fromarray(grey.astype(np.int32) * 70000), "TIFF"),
        "float.tif": _encode(Image.fromarray(grey.astype(np.float32) / 255), "TIFF"),
        "nan.tif": _encode(Image.fromarray(np.where(grey > 128, np.nan, grey).astype(np.float32)), "TIFF"),
        "pages.tif": _encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "face.webp": _encode(rgb, "WEBP"),
        "face.ppm": _encode(rgb, "PPM"),
        "thin.png": _encode(Image.new("RGB", (16, 3000), (90, 90, 90)), "PNG"),
        "tiny.png": _encode(Image.new("RGB", (1, 1)), "PNG"),
        "exif.jpg": _encode(rgb, "JPEG", exif=_sideways_exif()),
    }
    return seeds


def _sideways_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return exif.tobytes()


def video_seeds(folder: Path) -> dict[str, bytes]:
    """Valid short videos in several containers and codecs (file name -> bytes)."""
    import cv2

    face = cv2.cvtColor(_face(96), cv2.COLOR_RGB2BGR)
    seeds = {name: (FIXTURES / name).read_bytes() for name in ("vfr.mp4", "interlaced.mpg", "two_videos.mkv", "av1.mp4")}
    # stems differ, as each video's tables are named after it
    for name, fourcc in (("mjpeg_avi.avi", "MJPG"), ("mpeg4_mkv.mkv", "mp4v"), ("mpeg4_mov.mov", "mp4v"), ("vp9.webm", "VP90")):
        path = folder / name
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (96, 96))
        for i in range(6):
            writer.write(np.roll(face, 3 * i, axis=1))
        writer.release()
        seeds[name] = path.read_bytes()
        path.unlink()
    return seeds


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random damage to a file: its kind and the damaged bytes."""
    kind = rng.choice(["truncate", "bitflip", "header", "splice", "zero_run"])
    buf = bytearray(data)
    n = len(buf)
    if kind == "truncate":
        return kind, bytes(buf[: int(rng.integers(0, n))])
    if kind == "bitflip":
        for _ in range(int(rng.integers(1, 17))):
            i = int(rng.integers(0, n))
            buf[i] ^= 1 << int(rng.integers(0, 8))
        return kind, bytes(buf)
    if kind == "header":  # sizes, counts and offsets live near the start
        word = BOUNDARY_WORDS[int(rng.integers(0, len(BOUNDARY_WORDS)))]
        i = int(rng.integers(0, max(1, min(n, 200) - len(word))))
        buf[i : i + len(word)] = word
        return kind, bytes(buf[:n])
    if kind == "splice":  # a block repeated, as a broken copy or upload may leave it
        i, j = sorted(int(v) for v in rng.integers(0, n, 2))
        return kind, bytes(buf[:j] + buf[i:j] + buf[j:])
    i = int(rng.integers(0, n))
    length = int(rng.integers(1, 512))
    buf[i : i + length] = bytes(min(length, n - i))
    return kind, bytes(buf)


def write_inputs(folder: Path, seeds: dict[str, bytes], count: int, seed: int) -> list[Path]:
    """``count`` damaged copies of the seeds (and the seeds themselves) in ``folder``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(seeds)
    paths = []
    for name in names:
        paths.append(folder / name)
        paths[-1].write_bytes(seeds[name])
    for i in range(count):
        name = names[int(rng.integers(0, len(names)))]
        kind, data = mutate(seeds[name], rng)
        paths.append(folder / f"{i:04d}_{kind}_{name}")
        paths[-1].write_bytes(data)
    return paths


@dataclass
class Outcome:
    """What one run of the command over some inputs did."""

    inputs: int
    crashed: bool = False  # the process died on a signal or ended in an uncaught exception
    hung: bool = False
    missing: list[str] = field(default_factory=list)  # inputs without a row
    vague: list[str] = field(default_factory=list)  # error rows whose message says nothing specific
    stderr: str = ""


def run_mien(args: list[str], timeout: float) -> tuple[int | None, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    try:
        done = subprocess.run([sys.executable, "-m", "mien", *args], capture_output=True, text=True, env=env,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return None, (exc.stderr or b"").decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    return done.returncode, done.stderr


def check_images(paths: list[Path], out: Path, timeout: float) -> Outcome:
    """Analyse image files in one run; every file must have a row."""
    code, stderr = run_mien(["analyze", *map(str, paths), "-o", str(out), "--no-iris"], timeout)
    outcome = Outcome(len(paths), crashed=_crashed(code, stderr), hung=code is None, stderr=stderr[-3000:])
    if not (outcome.crashed or outcome.hung):
        table = pd.read_csv(out, keep_default_na=False, dtype=str)
        outcome.missing = sorted({str(p) for p in paths} - set(table["source"]))
        outcome.vague = _vague(table)
    elif not outcome.hung:
        outcome.missing = [str(p) for p in paths]
    return outcome


def check_videos(paths: list[Path], out: Path, timeout: float) -> Outcome:
    """Analyse videos in one run, each into its own table; every video must have a table with rows."""
    code, stderr = run_mien(["analyze", *map(str, paths), "-o", str(out), "--format", "csv"], timeout)
    outcome = Outcome(len(paths), crashed=_crashed(code, stderr), hung=code is None, stderr=stderr[-3000:])
    for path in paths:
        table_path = out / f"{path.stem}.csv"
        table = pd.read_csv(table_path, keep_default_na=False, dtype=str) if table_path.exists() else None
        if table is None or table.empty:
            outcome.missing.append(str(path))
        else:
            outcome.vague += _vague(table)
    return outcome


def _crashed(code: int | None, stderr: str) -> bool:
    """Died on a signal, or ended in an uncaught exception (which exits 1, like a failed input)."""
    return code is not None and (code not in (0, 1) or "Traceback (most recent call last)" in stderr)


def _vague(table: pd.DataFrame) -> list[str]:
    errors = table.loc[table["status"] == "error", "error"]
    return sorted({e for e in errors if len(e) < 12 or e.strip().lower() in VAGUE or "Traceback" in e})
