"""Reading still images into RGB uint8 arrays, with a specific error for each kind of bad file.

EXIF orientation is applied; greyscale, palette, 16-bit, CMYK and RGBA images become RGB
(transparent pixels are composited onto white). Images above ``MAX_PIXELS`` are decoded at
reduced size when the format allows it (JPEG) and refused otherwise, so memory stays bounded.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import MienError

MAX_PIXELS = 50_000_000
MIN_SIDE = 16
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jfif", ".pgm", ".ppm"}

Image.MAX_IMAGE_PIXELS = None  # we bound size ourselves, before decoding


class ImageReadError(MienError, ValueError):
    """A file that cannot be used as an image; the message says why."""


def pil_to_rgb(img: Image.Image) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of a PIL image of any mode (see the module docstring)."""
    if img.mode == "RGB":
        return np.asarray(img)
    if img.mode == "L":  # cheaper than Pillow's convert + a second copy
        return np.repeat(np.asarray(img)[:, :, None], 3, axis=2)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        span = max(arr.max() - arr.min(), 1e-12)
        grey = ((arr - arr.min()) / span * 255.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """RGB uint8 (H, W, 3) pixels of an image file, upright, or ImageReadError."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageReadError("file not found") from None
    except OSError as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror}") from None
    if path.is_dir():
        raise ImageReadError("is a folder, not an image file")
    if size == 0:
        raise ImageReadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                width, height = img.size
                if width < MIN_SIDE or height < MIN_SIDE:
                    raise ImageReadError(f"image is {width}x{height} pixels; mien needs at least {MIN_SIDE}x{MIN_SIDE}")
                if width * height > max_pixels:
                    if img.format != "JPEG":
                        raise ImageReadError(
                            f"image is {width}x{height} ({width * height / 1e6:.0f} MP), more than the "
                            f"{max_pixels / 1e6:.0f} MP limit for {img.format} files; downscale it first"
                        )
                    # JPEG decoders can scale by 1/2, 1/4 or 1/8 while decoding; pick the mildest that fits.
                    factor = next((f for f in (2, 4, 8) if width * height / f**2 <= max_pixels), 8)
                    img.draft("RGB", (-(-width // factor), -(-height // factor)))
                    if img.size[0] * img.size[1] > max_pixels:
                        raise ImageReadError(f"image is {width}x{height}; cannot decode it below the {max_pixels / 1e6:.0f} MP limit")
                img.load()
                upright = ImageOps.exif_transpose(img)
                if upright is not img:
                    img.close()
                return np.ascontiguousarray(pil_to_rgb(upright))
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not an image file, or an image format mien cannot read") from None
    except PermissionError as exc:
        raise ImageReadError(f"cannot read file: {exc.strerror}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"corrupt or truncated image ({exc})") from None
    except Image.DecompressionBombError as exc:  # pragma: no cover - MAX_IMAGE_PIXELS is disabled
        raise ImageReadError(str(exc)) from None
