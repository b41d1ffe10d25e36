"""training/device_data.py: FERPlus faces carried as one lossless mosaic come back as the same pixels."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import device_data as D  # noqa: E402


def test_a_mosaic_gives_back_every_face_in_order_through_lossless_webp():
    faces = np.random.default_rng(0).integers(0, 256, (D.ROW + 37, D.SIDE, D.SIDE)).astype(np.uint8)
    picture = D.mosaic(faces)
    assert picture.shape == (2 * D.SIDE, D.ROW * D.SIDE)
    ok, data = cv2.imencode(".webp", picture, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert ok
    np.testing.assert_array_equal(D.faces_of(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE), len(faces)), faces)
