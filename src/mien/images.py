"""Reading still images into RGB uint8 arrays, with a specific error for each kind of bad file.

EXIF orientation is applied; greyscale, palette, 16-bit, 32-bit, CMYK and RGBA images become
RGB (transparent pixels are composited onto white). Images above ``MAX_PIXELS`` are decoded at
reduced size when the format allows it (JPEG) and refused otherwise, so memory stays bounded;
:func:`decode_image` says by how much, so that coordinates can be given in the file's pixels.
Of a multi-frame file (animated GIF or PNG, multi-page TIFF) the first frame is read, and the
note says so.
"""
from __future__ import annotations

import errno
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MienError

MAX_PIXELS = 50_000_000
MIN_SIDE = 16
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jfif", ".pgm", ".ppm"}

Image.MAX_IMAGE_PIXELS = None  # we bound size ourselves, before decoding
EXIF_ORIENTATION = 0x0112
SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
TEXT_CHUNK_ERRORS = ("MAX_TEXT_CHUNK", "MAX_TEXT_MEMORY", "text chunks")  # Pillow's words for over-large PNG metadata


@dataclass(frozen=True)
class DecodedImage:
    """An image file's pixels as analysed, and how they relate to the file's own."""

    rgb: np.ndarray  # (H, W, 3) uint8, upright
    width: int  # the file's size in its own pixels, upright (after EXIF rotation)
    height: int
    scale: int = 1  # file pixels per analysed pixel: 2, 4 or 8 for a very large JPEG decoded at reduced size
    note: str = ""  # what the reader should know about how the file was read; "" when nothing


class ImageReadError(MienError, ValueError):
    """A file that cannot be used as an image; the message says why."""


def file_problem(path: str | Path) -> str:
    """Why ``path`` cannot be read as a media file ("" when it is a non-empty regular file), from
    its metadata alone: a named pipe or device is never opened, so it cannot block the run."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (it points to {os.readlink(path)!r}, which does not exist)"
        return "file not found"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)"
        return f"cannot read file: {exc.strerror}"
    kind = _SPECIAL_KINDS.get(stat.S_IFMT(info.st_mode))
    if kind:
        return f"is {kind}, not a regular file"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    return ""


_SPECIAL_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a character device",
                  stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of a PIL image of any mode (see the module docstring)."""
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode == "L":  # cheaper than Pillow's convert + a second copy
        return np.repeat(np.asarray(img)[:, :, None], 3, axis=2)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return np.repeat(_grey_of_deep(img)[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def _frame_count(img: Image.Image) -> int:
    """Frames in a file (1 for most), or 0 when it holds more whose headers are damaged."""
    try:
        return getattr(img, "n_frames", 1)
    except Exception:  # noqa: BLE001 - counting walks every frame's header, damaged or not
        img.seek(0)
        return 0


def _note(scale: int, frames: int, width: int, height: int) -> str:
    notes = []
    if scale > 1:
        notes.append(f"decoded at 1/{scale} size ({width}x{height} is above the {MAX_PIXELS / 1e6:.0f} MP limit); "
                     "coordinates are in the file's pixels")
    if frames > 1:
        notes.append(f"first of {frames} frames analysed (a multi-frame file)")
    elif frames == 0:
        notes.append("first frame analysed; the file's further frames are damaged")
    return "; ".join(notes)


def _grey_of_deep(img: Image.Image) -> np.ndarray:
    """8-bit grey of a 16-bit, 32-bit or float image. Values that fit 8 or 16 bits are scaled from
    that range; wider integers (a 32-bit TIFF) and floats are stretched from their own minimum to
    maximum, so that nothing saturates. Not-a-number pixels become black and infinities the extremes."""
    arr = np.asarray(img, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    arr = np.nan_to_num(arr, nan=low, posinf=high, neginf=low)
    if img.mode.startswith("I;16") or (img.mode == "I" and 0 <= low and high <= 65535):
        low, high = 0.0, 65535.0 if img.mode.startswith("I;16") or high > 255 else 255.0
    span = max(high - low, 1e-12)
    return np.clip((arr - low) / span * 255.0 + 0.5, 0, 255).astype(np.uint8)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of the image file at ``path``, upright (EXIF orientation applied);
    raises ImageReadError saying why when it cannot be used. ``max_pixels``: the largest image
    decoded (default ``MAX_PIXELS``, 50 MP); a larger JPEG is decoded at 1/2, 1/4 or 1/8 scale."""
    return decode_image(path, max_pixels).rgb


def decode_image(path: str | Path, max_pixels: int | None = None) -> DecodedImage:
    """The pixels of an image file, upright, with the file's own size and the decoding scale; or
    ImageReadError. ``max_pixels`` defaults to ``MAX_PIXELS``."""
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise ImageReadError(problem)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                width, height = img.size
                if width < MIN_SIDE or height < MIN_SIDE:
                    raise ImageReadError(f"image is {width}x{height} pixels; mien needs at least {MIN_SIDE}x{MIN_SIDE}")
                scale = 1
                if width * height > max_pixels:
                    if img.format != "JPEG":
                        raise ImageReadError(
                            f"image is {width}x{height} ({width * height / 1e6:.0f} MP), more than the "
                            f"{max_pixels / 1e6:.0f} MP limit for {img.format} files; downscale it first"
                        )
                    # JPEG decoders can scale by 1/2, 1/4 or 1/8 while decoding; pick the mildest that fits.
                    factor = next((f for f in (2, 4, 8) if width * height / f**2 <= max_pixels), 8)
                    img.draft("RGB", (width // factor, height // factor))  # Pillow scales by at most what this allows
                    if img.size[0] * img.size[1] > max_pixels:
                        raise ImageReadError(f"image is {width}x{height}; cannot decode it below the {max_pixels / 1e6:.0f} MP limit")
                    scale = round(width / img.size[0])
                frames = _frame_count(img)
                if img.getexif().get(EXIF_ORIENTATION) in SIDEWAYS:
                    width, height = height, width
                img.load()
                upright = ImageOps.exif_transpose(img)
                if upright is not img:
                    img.close()
                rgb = np.ascontiguousarray(pil_to_rgb(upright))
        return DecodedImage(rgb, width, height, scale, _note(scale, frames, width, height))
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not an image file, or an image format mien cannot read") from None
    except PermissionError as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror}") from None
    except ValueError as exc:
        if any(words in str(exc) for words in TEXT_CHUNK_ERRORS):
            raise ImageReadError("the PNG's text metadata is larger than the 1 MB that is read safely (it could be a "
                                 "decompression bomb); the pixels may be fine: save the image again without its metadata") from None
        raise ImageReadError(f"corrupt or truncated image ({exc})") from None
    except (OSError, SyntaxError, EOFError) as exc:
        raise ImageReadError(f"corrupt or truncated image ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file reaches Pillow's plug-ins' unguarded corners
        raise ImageReadError(f"corrupt image: Pillow could not read it ({type(exc).__name__}: {exc})") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - MAX_IMAGE_PIXELS is disabled
        raise ImageReadError(str(exc)) from None
