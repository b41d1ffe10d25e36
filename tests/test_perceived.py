"""Perceived expression: model integrity, outputs, abstention, FER2013 framing, a few real faces."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mien import actions
from mien import perceived as P
from mien.mesh import EYE_CORNERS


@pytest.fixture(scope="module")
def model() -> P.PerceivedModel:
    return P.PerceivedModel()


def test_model_matches_its_sha256_and_size():
    from mien.runtime import manifest, verified_model_path

    data = verified_model_path(P.MODEL_NAME).read_bytes()
    assert hashlib.sha256(data).hexdigest() == P.model_card()["sha256"] == manifest()[P.MODEL_NAME]["sha256"]
    assert len(data) <= 10 * 1024 * 1024


def test_probabilities_sum_to_one_and_columns(model):
    faces = (np.random.default_rng(0).random((5, 48, 48)) * 255).astype(np.uint8)
    res = model(faces)
    assert res.probabilities.shape == (5, 8)
    np.testing.assert_allclose(res.probabilities.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(res.top_p, res.probabilities.max(1), atol=1e-6)
    assert ((res.entropy >= 0) & (res.entropy <= np.log(8) + 1e-5)).all()
    assert set(res.top) <= set(P.CLASSES + (P.UNCERTAIN,))
    assert res.take([4, 0]).top == (res.top[4], res.top[0])
    from mien.results import COLUMNS
    # every measure column is an action unit or a perceived (crowd-label) value, and each share says what it is not
    perceived = {f"perceived_{c}" for c in P.CLASSES} | {f"perceived_{k}" for k in ("top", "top_p", "entropy", "abstain_reason")}
    units = set(actions.columns()) | {f"{c}_present" for c in actions.columns()}
    measures = [c for c in COLUMNS if c.name.startswith(("au", "perceived_")) and c.name not in ("au_baseline", "au_baseline_frames")]
    assert {c.name for c in measures} == perceived | units
    assert all("not what the person feels" in c.meaning for c in COLUMNS if c.name in {f"perceived_{k}" for k in P.CLASSES})


def test_accepts_batches_of_any_layout(model):
    face = (np.random.default_rng(1).random((48, 48)) * 255).astype(np.uint8)
    a = model(face).probabilities
    b = model(face[None, :, :, None].astype(np.float32)).probabilities
    c = model(np.repeat(face[None, :, :, None], 3, axis=3)).probabilities
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a, c, atol=1e-5)
    assert model(np.zeros((0, 48, 48), np.uint8)).probabilities.shape == (0, 8)
    with pytest.raises(ValueError, match="48x48"):
        model(np.zeros((2, 64, 64), np.uint8))


def test_uncertain_below_threshold_and_when_unreliable(model):
    logits = np.array([[4.0, 0, 0, 0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0, 0, 0, 0]], np.float32) * model.temperature
    res = model.from_logits(logits)
    assert res.top[0] == "neutral" and res.top_p[0] >= model.threshold
    assert res.top[1] == P.UNCERTAIN and res.top_p[1] < model.threshold
    res = model.from_logits(logits, reliable=[False, True])
    assert res.top == (P.UNCERTAIN, P.UNCERTAIN)
    high = P.PerceivedModel(threshold=1.01)
    assert set(high.from_logits(logits).top) == {P.UNCERTAIN}


def _synthetic_mesh(left, right) -> np.ndarray:
    mesh = np.zeros((1, 468, 3), np.float32)
    mesh[0, :, :2] = (np.asarray(left) + np.asarray(right)) / 2
    for (i, j), c in zip(EYE_CORNERS, (left, right)):
        mesh[0, i, :2] = np.asarray(c) - (3, 0)
        mesh[0, j, :2] = np.asarray(c) + (3, 0)
    return mesh


def test_alignment_puts_eyes_where_the_constants_say():
    # a tilted face at 6x scale: eye centres 100 px apart, rotated by 20 degrees
    ang = np.radians(20)
    left = np.array([200.0, 150.0])
    right = left + 100 * np.array([np.cos(ang), np.sin(ang)])
    mesh = _synthetic_mesh(left, right)
    mat = P.alignment_matrices(mesh)[0]
    for src, dst in ((left, P.FER_EYE_LEFT), (right, P.FER_EYE_RIGHT)):
        np.testing.assert_allclose(mat[:, :2] @ src + mat[:, 2], dst, atol=1e-6)
    # and in pixels: bright dots at the eye centres come out at the constants
    import cv2
    img = np.zeros((400, 400, 3), np.uint8)
    for c in (left, right):
        cv2.circle(img, tuple(int(round(v)) for v in c), 6, (255, 255, 255), -1)
    crop = P.aligned_face_crops(img, mesh)[0].astype(np.float64)
    ys, xs = np.mgrid[:48, :48]
    for half, target in ((xs < 24, P.FER_EYE_LEFT), (xs >= 24, P.FER_EYE_RIGHT)):
        w = crop * half
        centroid = np.array([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
        np.testing.assert_allclose(centroid, target, atol=0.35)


def test_alignment_rejects_bad_meshes():
    with pytest.raises(ValueError, match="468"):
        P.alignment_matrices(np.zeros((1, 10, 3)))
    with pytest.raises(ValueError, match="coincident"):
        P.alignment_matrices(np.zeros((1, 468, 3)))


def test_real_ferplus_faces_through_the_pipeline(model, shared_data):
    import cv2
    from oracle_inputs import upscale_with_border

    from mien.analyzer import Analyzer, Options

    folder = shared_data / "ferplus" / "data" / "FER2013Test"
    votes = {}
    for line in (folder / "label.csv").read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        votes[parts[0]] = np.array([int(v) for v in parts[-10:]])
    # clear cases: >= 8 of 10 votes for one expression; the first 12 in name order
    names = sorted(n for n, v in votes.items() if v[:8].max() >= 8 and n != "fer0033120.png")[:12]
    an = Analyzer(Options(detector="short", iris=False))
    hits = faces = 0
    for name in names:
        grey = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        rgb = upscale_with_border(grey)
        found = an.analyze(rgb)
        if not len(found):
            continue
        faces += 1
        probs = found.perceived.probabilities[0]
        assert abs(probs.sum() - 1) < 1e-4
        hits += int(probs.argmax() == votes[name][:8].argmax())
    assert faces >= 10
    assert hits >= 0.75 * faces, f"only {hits} of {faces} clear FERPlus faces match the crowd through the pipeline"


@pytest.mark.parametrize("scale,shift", [(1.0, (0, 0)), (7.5, (0, 0)), (1.0, (-200, -150))])
def test_crops_cut_from_their_window_match_a_whole_image_warp(astronaut, scale, shift):
    import cv2

    from mien.analyzer import Analyzer, Options

    image = cv2.resize(astronaut, None, fx=scale, fy=scale) if scale != 1.0 else astronaut
    image = np.ascontiguousarray(np.roll(image, shift, axis=(0, 1)))  # the face cut by the image edge
    mesh = Analyzer(Options(iris=False, perceived=False, action_units=False)).analyze(astronaut).landmarks[:1]
    mesh = mesh * scale + np.array([shift[1], shift[0], 0.0]) * (scale == 1.0)
    big = P.FACE_SIZE * 4
    whole = cv2.warpAffine(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), P.alignment_matrices(mesh, big)[0], (big, big),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    expected = cv2.resize(whole, (P.FACE_SIZE, P.FACE_SIZE), interpolation=cv2.INTER_AREA)
    got = P.aligned_face_crops(image, mesh)[0]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_calibration_temperature_equals_dividing_logits():
    logits = np.random.default_rng(2).normal(size=(6, 8)) * 3
    z = logits / 0.7
    expected = np.exp(z - z.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    cal = P.Calibration.from_temperature(0.7)
    np.testing.assert_allclose(cal(logits), expected, atol=1e-12)
    assert cal.temperature == pytest.approx(0.7)


def test_calibration_matrix_and_bias_from_the_sidecar():
    matrix, bias = np.diag(np.linspace(0.5, 1.5, 8)), np.linspace(-0.2, 0.2, 8)
    cal = P.Calibration.from_card({"calibration": {"kind": "vector", "matrix": matrix.tolist(), "bias": bias.tolist()}})
    logits = np.random.default_rng(3).normal(size=(4, 8))
    q = logits - logits.max(1, keepdims=True)
    q -= np.log(np.exp(q).sum(1, keepdims=True))
    z = q @ matrix.T + bias
    expected = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    np.testing.assert_allclose(cal(logits), expected, atol=1e-12)
    assert np.isnan(cal.temperature)
    with pytest.raises(P.ModelFileError, match="8x8"):
        P.Calibration.from_card({"calibration": {"matrix": [[1.0]], "bias": [0.0]}})


def test_faces_with_low_energy_are_uncertain(model):
    confident = np.array([[12.0, 0, 0, 0, 0, 0, 0, 0]])
    strange = confident - 30.0  # same shares, far lower log-sum-exp of the logits
    assert model.from_logits(confident).top[0] == "neutral"
    model_min, model.min_energy = model.min_energy, float(P.energy_score(confident)[0] - 1)
    try:
        res = model.from_logits(np.concatenate([confident, strange]))
        np.testing.assert_allclose(res.probabilities[0], res.probabilities[1], atol=1e-6)
        assert res.top == ("neutral", P.UNCERTAIN)
    finally:
        model.min_energy = model_min
