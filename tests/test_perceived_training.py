"""training/train_perceived.py's capture augmentation and its start from an exported CNN (needs the training venv's torch)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training venv (training/requirements.txt) has torch; mien does not")
pytest.importorskip("onnx")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import train_perceived as T  # noqa: E402
from net import PerceivedNet  # noqa: E402


def faces(n: int = 16) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 1, 48, 48))).float()


def test_capture_augment_at_probability_zero_leaves_faces_alone():
    x = faces()
    np.testing.assert_allclose(T.capture_augment(x, torch.Generator().manual_seed(0), p=0.0), x, atol=1e-3)


def test_capture_augment_changes_every_face_within_range_and_repeats_with_the_seed():
    x = faces()
    a = T.capture_augment(x, torch.Generator().manual_seed(1), p=1.0)
    b = T.capture_augment(x, torch.Generator().manual_seed(1), p=1.0)
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 255
    assert torch.equal(a, b)
    assert bool(((a - x).abs().flatten(1).mean(1) > 5).all())


def test_motion_blur_smears_along_its_angle_only():
    x = torch.zeros(2, 1, 15, 15)
    x[:, :, :, 7] = 255.0  # a vertical line
    along = T.per_face_blur(x, torch.tensor([2.0, 2.0]), torch.tensor([0.3, 0.3]), torch.tensor([0.0, math.pi / 2]))
    assert float(along[0, 0, 7, 7]) < 150 and float(along[0, 0, 7, 5]) > 20  # across the line: spread out
    assert float(along[1, 0, 7, 7]) > 250 and float(along[1, 0, 7, 5]) < 1  # along the line: still sharp
    np.testing.assert_allclose(along.sum(dim=(2, 3)), x.sum(dim=(2, 3)), rtol=1e-4)


def test_a_folded_export_is_reopened_with_the_same_logits(tmp_path):
    widths = (4, 8, 8, 8)
    trained = PerceivedNet(widths)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in trained.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5, generator=g), m.running_var.uniform_(0.5, 2, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g), m.bias.normal_(0, 0.3, generator=g)
    path = tmp_path / "plain.onnx"
    T.export(trained, path)
    images = np.random.default_rng(1).integers(0, 256, (64, 48, 48)).astype(np.float32)
    reopened = PerceivedNet(widths)
    T.load_folded_onnx(reopened, path, images)
    np.testing.assert_allclose(T.predict_logits(reopened, images), T.predict_logits(trained, images), atol=1e-4)
    bn = reopened.stem[0][1]
    assert float(bn.running_var.min()) > 0 and not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    with pytest.raises(ValueError, match="not an export of PerceivedNet"):
        T.load_folded_onnx(PerceivedNet((4, 8, 8, 16)), path, images)
