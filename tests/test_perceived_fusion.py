"""The numpy parts of training/perceived_fusion.py: geometry features, fused logits, the fallback, the verdict."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import perceived_fusion as F  # noqa: E402
from mien import actions  # noqa: E402


def neutral_meshes(n: int, seed: int = 0) -> np.ndarray:
    """The population neutral, each copy scaled and jittered a little."""
    rng = np.random.default_rng(seed)
    base = actions.population_neutral().mesh
    return np.stack([base * rng.uniform(0.8, 1.2) + rng.normal(scale=0.01, size=base.shape) for _ in range(n)])


def faces(canonical: np.ndarray, found: np.ndarray) -> F.PipelineFaces:
    n = len(found)
    return F.PipelineFaces(found, found.copy(), np.zeros((n, 48, 48), np.uint8), canonical.astype(np.float32))


def test_offsets_of_the_neutral_are_zero_at_any_face_size():
    neutral = actions.population_neutral().mesh
    offsets = F.mesh_offsets(np.stack([neutral, 1.7 * neutral]))
    assert offsets.shape == (2, 468 * 3)
    np.testing.assert_allclose(offsets, 0, atol=1e-9)


def test_geometry_features_are_standardised_and_zero_where_no_face_was_found():
    meshes = neutral_meshes(60)
    basis = F.fit_basis(meshes)
    assert basis.components.shape == (F.PCA_COMPONENTS, 468 * 3)
    np.testing.assert_allclose(basis.components @ basis.components.T, np.eye(F.PCA_COMPONENTS), atol=1e-9)
    found = np.arange(60) % 3 != 0
    g = F.geometry_features(faces(meshes, found), basis)
    assert g.shape == (60, F.ACTION_UNIT_COLUMNS + F.PCA_COMPONENTS)
    assert not g[~found].any()
    assert np.isfinite(g).all()


def fake_set(found: np.ndarray, seed: int = 1) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(found)
    s = {"z": rng.normal(size=(n, 8)), "pooled": rng.normal(size=(n, 256)),
         "faces": faces(np.zeros((n, 468, 3)), found)}
    return s, rng.normal(size=(n, F.ACTION_UNIT_COLUMNS + 5))


def test_a_head_starts_from_the_shipped_logits():
    found = np.ones(5, bool)
    s, g = fake_set(found)
    fc_w, fc_b = np.random.default_rng(2).normal(size=(8, 256)), np.random.default_rng(3).normal(size=8)
    s["z"] = s["pooled"] @ fc_w.T + fc_b
    for kind in ("features + geometry", "logits + geometry"):
        w, b = F.initial_head(kind, g.shape[1], (fc_w, fc_b))
        np.testing.assert_allclose(F.head_inputs(kind, s, g) @ w.T + b, s["z"], atol=1e-9)


def test_faces_without_a_mesh_keep_the_shipped_logits_and_the_others_add_geometry():
    found = np.array([True, False, True, False])
    s, g = fake_set(found)
    w, b = np.random.default_rng(4).normal(size=(8, g.shape[1])), np.random.default_rng(5).normal(size=8)
    heads = {("geometry", 0.5): (w, b)}
    log_prior = np.log(np.full(8, 1 / 8))
    z = F.candidate_logits(s, g, heads, ("logits + a * geometry", 0.5, 0.25, 0.2), log_prior)
    np.testing.assert_allclose(z[~found], s["z"][~found] - 0.2 * log_prior)
    np.testing.assert_allclose(z[found], s["z"][found] + 0.25 * (g[found] @ w.T + b) - 0.2 * log_prior)
    alone = F.candidate_logits(s, g, heads, ("geometry", 0.5, 0.0, 0.0), log_prior)
    np.testing.assert_allclose(alone[found], g[found] @ w.T + b)
    np.testing.assert_allclose(alone[~found], s["z"][~found])


def test_recipe_names_are_distinct():
    names = [F.recipe_name(r) for r in F.recipes()]
    assert len(set(names)) == len(names)
    assert "logits + 0.25 * action units(0.5) adjusted(0.2)" in names


@pytest.mark.parametrize("chosen_cv, shipped_words", [
    ({"a": {"accuracy": 0.7, "uar": 0.6}}, "improves crossval accuracy and UAR on every set"),
    ({"a": {"accuracy": 0.7, "uar": 0.5}}, "no gain in a uar"),
])
def test_verdict_asks_for_a_gain_on_every_crossval_set(chosen_cv, shipped_words):
    ideas_cv = {"shipped": {"a": {"accuracy": 0.6, "uar": 0.5}}, "logits + geometry(0)": chosen_cv, "features(0)": chosen_cv}
    assert shipped_words in F.verdict({}, ideas_cv, "logits + geometry(0)")
    assert "reads no geometry" not in F.verdict({}, ideas_cv, "logits + geometry(0)")
    assert "reads no geometry" in F.verdict({}, ideas_cv, "features(0)")
    assert "shipped model stays" in F.verdict({}, ideas_cv, "shipped")


def test_model_card_section_marks_the_choice_and_shows_the_class_profiles():
    import model_card

    row = {"accuracy": 0.8, "uar": 0.7, "ece": 0.02}
    record = {"chosen": "geometry(0)", "selection": "rule", "verdict": "Recorded, not shipped.",
              "geometry_columns": {"action_unit_raw": 30, "action_unit_intensity": 30, "offset_components": 24},
              "faces_with_mesh": {"Valid": {"found": 9, "images": 10}}, "train_faces_used": 100, "cnn_train_accuracy": 0.9,
              "ideas": {"shipped": row, "geometry(0)": row}, "ideas_crossval": {"shipped": {"jaffe": row}, "geometry(0)": {"jaffe": row}},
              "test": {"shipped": row, "geometry(0)": row},
              "class_profiles": {"jaffe": {"anger": {"n": 6, "AU4": 0.25, "AU24": 1.5}}}}
    text = "\n".join(model_card.fusion_section(record))
    assert "| geometry(0) (chosen) | 80.00% | 70.00% | 0.020 | 80.0% / 70.0% / 0.020 |" in text
    assert "| jaffe | anger | 6 | 0.25 | 1.50 |" in text
    assert "Recorded, not shipped." in text and "Valid 9 of 10" in text
