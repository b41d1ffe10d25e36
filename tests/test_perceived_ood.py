"""training/perceived_ood.py: the warning scores compared against the faces the perceived model gets wrong."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import perceived_ood as O  # noqa: E402


def test_feature_density_is_far_for_features_unlike_every_class():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(8), 50)
    centres = rng.normal(0, 5, (8, 6))
    x = centres[labels] + rng.normal(0, 1, (400, 6))
    means, precision = O.class_gaussians(x, labels)
    near = O.mahalanobis_to_nearest_class(centres + rng.normal(0, 1, (8, 6)), means, precision)
    far = O.mahalanobis_to_nearest_class(np.full((1, 6), 40.0), means, precision)
    assert far[0] > 10 * near.max()


def test_warning_scores_grow_as_the_model_grows_unsure():
    w, b = np.eye(8, 4) * 4.0, np.zeros(8)
    sure, unsure = np.array([[3.0, 0, 0, 0]]), np.array([[0.1, 0.1, 0, 0]])
    s = {"x": np.vstack([sure, unsure]), "x_flip": np.vstack([sure, unsure])}
    means, precision = np.zeros((8, 4)), np.eye(4)
    scores, _ = O.warning_scores(s, w, b, (np.eye(8), np.zeros(8)), means, precision)
    assert scores["top share"][1] > scores["top share"][0] and scores["energy"][1] > scores["energy"][0]


def test_the_card_lists_every_score_for_every_set():
    import model_card

    record = {"tail": 0.05, "train_cut_offs": {"energy": -3.9, "feature density": 470.0},
              "sets": {name: {"faces": 10, "error": 0.3, "auc_wrong": {"top share": 0.8, "energy": 0.7, "feature density": 0.5},
                              "flagged": {"energy": 0.05, "feature density": 0.1}} for name in ("valid", "ckplus48")}}
    text = "\n".join(model_card.ood_section(record))
    assert "| set | faces | error | AUC top share | AUC energy | AUC feature density | flagged by energy | flagged by feature density |" in text
    assert "| ckplus48 | 10 | 30.0% | 0.800 | 0.700 | 0.500 | 5.0% | 10.0% |" in text
