"""training/teacher_report.py: each member's and the ensemble's logits, flip-averaged."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import teacher_report as R  # noqa: E402


def test_candidates_average_each_face_with_its_mirror_and_the_members_for_the_ensemble():
    rng = np.random.default_rng(0)
    z = {"valid": rng.normal(size=(3, 5, 8)), "valid_flip": rng.normal(size=(3, 5, 8))}
    got = R.candidates(z, "valid", 3)
    assert set(got) == {"member 0", "member 1", "member 2", "ensemble"}
    np.testing.assert_allclose(got["member 1"], 0.5 * (z["valid"][1] + z["valid_flip"][1]))
    np.testing.assert_allclose(got["ensemble"], np.mean([got[f"member {k}"] for k in range(3)], axis=0))


def test_members_that_agree_have_no_disagreement_and_ones_that_differ_do():
    same = np.random.default_rng(1).normal(size=(5, 8))
    z = {"s": np.stack([same] * 3), "s_flip": np.stack([same] * 3)}
    shares, kl = R.disagreement(z, "s", 3)
    np.testing.assert_allclose(kl, 0, atol=1e-12)
    np.testing.assert_allclose(shares.sum(1), 1)
    z["s"] = z["s"] + np.random.default_rng(2).normal(size=(3, 5, 8))
    assert bool((R.disagreement(z, "s", 3)[1] > 0).all())
