"""The images behind tests/fixtures/oracle_landmarks.npz, rebuilt from ../shared/data."""
from pathlib import Path

import cv2
import numpy as np

DEMO_STILLS = ("skimage/astronaut.png", "pillow/hopper.jpg", "openmpf/person_cropped_2.png")
FERPLUS_COUNT = 200
EXCLUDED = {"fer0033120.png"}


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def upscale_with_border(grey48: np.ndarray) -> np.ndarray:
    """48x48 FER image → 192x192 (4x, bicubic) inside a 64 px mid-grey border, RGB."""
    big = cv2.resize(grey48, (192, 192), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=128)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)


def demo_images(data_dir: Path):
    for rel in DEMO_STILLS:
        yield rel, read_rgb(data_dir / "demo" / rel)


def ferplus_images(data_dir: Path):
    folder = data_dir / "ferplus" / "data" / "FER2013Test"
    names = sorted(p.name for p in folder.glob("*.png") if p.name not in EXCLUDED)[:FERPLUS_COUNT]
    for name in names:
        yield f"ferplus/{name}", upscale_with_border(cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE))
