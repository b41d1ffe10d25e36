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


def test_unpacking_refuses_to_write_over_a_split_that_is_already_there(tmp_path, monkeypatch):
    import pytest

    (tmp_path / "FER2013Train").mkdir()
    (tmp_path / "FER2013Train" / "label.csv").write_text("fer0000000.png,0,10,0,0,0,0,0,0,0,0,0\n")
    monkeypatch.setattr(D.FP, "split_dir", lambda split: tmp_path / f"FER2013{split}")
    with pytest.raises(SystemExit, match="already holds FERPlus"):
        D.unpack(tmp_path / "packed")
    assert (tmp_path / "FER2013Train" / "label.csv").read_text().startswith("fer0000000.png")
