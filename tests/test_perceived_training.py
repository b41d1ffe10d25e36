"""training/train_perceived.py: augmentation, distillation views and targets, capture augmentation and the start from an
exported CNN (needs the training venv's torch)."""
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


def identity(n: int) -> dict[str, torch.Tensor]:
    return {"angle": torch.zeros(n), "scale": torch.ones(n), "flip": torch.ones(n), "shift_x": torch.zeros(n),
            "shift_y": torch.zeros(n), "contrast": torch.ones(n), "brightness": torch.zeros(n),
            "erase": torch.zeros(n, dtype=torch.bool), "erase_size": torch.full((n,), 8), "erase_x": torch.zeros(n),
            "erase_y": torch.zeros(n), "erase_grey": torch.full((n,), 7.0)}


def test_augment_with_identity_parameters_keeps_faces_and_erases_only_its_square():
    x = faces(4)
    np.testing.assert_allclose(T.augment(x, identity(4)), x, atol=1e-3)
    p = identity(4)
    p["erase"][1] = True
    p["erase_x"][1], p["erase_y"][1] = 0.999, 0.0  # the right-most place a square of 8 fits: columns 39..46
    y = T.augment(x, p)
    assert bool((y[1, 0, :8, 39:47] == 7.0).all())
    np.testing.assert_allclose(y[1, 0, 8:], x[1, 0, 8:], atol=1e-3)
    np.testing.assert_allclose(y[1, 0, :8, :39], x[1, 0, :8, :39], atol=1e-3)
    np.testing.assert_allclose(y[1, 0, :8, 47:], x[1, 0, :8, 47:], atol=1e-3)
    np.testing.assert_allclose(y[[0, 2, 3]], x[[0, 2, 3]], atol=1e-3)


def test_a_flip_mirrors_the_face():
    x = faces(2)
    p = identity(2)
    p["flip"] = torch.tensor([-1.0, 1.0])
    np.testing.assert_allclose(T.augment(x, p)[0], torch.flip(x[0], dims=[2]), atol=1e-3)


def test_distillation_views_are_fixed_per_view_and_differ_between_views():
    a, b, c = T.view_augmentation(50, 3), T.view_augmentation(50, 3), T.view_augmentation(50, 4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["angle"], c["angle"])


def test_teacher_targets_follow_the_faces_by_name(tmp_path):
    names = np.array([f"fer{i:07d}.png" for i in range(6)])
    logits = np.random.default_rng(0).normal(size=(2, 6, 8)).astype(np.float16)
    path = tmp_path / "teacher_views.npz"
    np.savez(path, names=names, logits=logits, record="{}")
    shares, views = T.teacher_targets(path, names[[4, 1]])
    np.testing.assert_allclose(shares[1, 0], torch.softmax(torch.from_numpy(logits[1, 4].astype(np.float32)), -1))
    assert torch.equal(views[0]["angle"], T.view_augmentation(6, 0)["angle"][[4, 1]])
    with pytest.raises(SystemExit, match="no teacher outputs for 1"):
        T.teacher_targets(path, np.array(["fer0000001.png", "elsewhere.png"]))


def test_the_teacher_gives_each_member_s_logits_for_every_face():
    import teacher
    from net import TeacherNet

    nets = [TeacherNet((4, 8, 8, 8)).eval() for _ in range(2)]
    x, x_flip = teacher.with_mirror(np.random.default_rng(0).integers(0, 256, (5, 48, 48)).astype(np.uint8), torch.device("cpu"))
    got = teacher.member_logits(nets, x, batch=2)
    assert got.shape == (2, 5, 8)
    with torch.no_grad():
        np.testing.assert_allclose(got[1], nets[1](x).numpy(), atol=1e-5)
    assert torch.equal(x_flip, torch.flip(x, dims=[3]))


def test_a_distillation_batch_shows_the_view_and_mixes_the_teacher_in_by_its_weight():
    x = faces(6)
    crowd = torch.softmax(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), -1)
    teacher = torch.softmax(torch.randn(3, 6, 8, generator=torch.Generator().manual_seed(1)), -1)
    views = [T.view_augmentation(6, v) for v in range(3)]
    idx = torch.tensor([4, 0])
    got_x, got_target = T.distillation_batch(x, crowd, idx, views, teacher, 2, 0.25)
    torch.testing.assert_close(got_x, T.augment(x[idx], T.pick(views[2], idx)))
    torch.testing.assert_close(got_target, 0.75 * crowd[idx] + 0.25 * teacher[2, idx])


def test_sampled_augmentation_stays_within_its_stated_ranges():
    p = T.sample_augmentation(20000, torch.Generator().manual_seed(0))
    assert float(p["angle"].abs().max()) <= math.radians(12) and 0.9 <= float(p["scale"].min()) <= float(p["scale"].max()) <= 1.1
    assert float(p["shift_x"].abs().max()) <= 0.2 and set(p["flip"].tolist()) == {-1.0, 1.0}
    assert 0.7 <= float(p["contrast"].min()) and float(p["contrast"].max()) <= 1.3 and float(p["brightness"].abs().max()) <= 25
    assert abs(float(p["erase"].float().mean()) - 0.25) < 0.02
    assert int(p["erase_size"].min()) == 8 and int(p["erase_size"].max()) == 16 and float(p["erase_x"].max()) < 1
