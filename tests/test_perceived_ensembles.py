"""training/perceived_ensembles.py: how a pair of CNNs is averaged, the rule that ships one, and its card table."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import model_card  # noqa: E402
import perceived_ensembles as E  # noqa: E402


def test_one_cnn_averages_its_mirror_image_and_two_average_each_other_once():
    rng = np.random.default_rng(0)
    z = {m: {"valid": (rng.normal(size=(4, 8)), rng.normal(size=(4, 8)))} for m in ("a", "b")}
    prior = np.full(8, 1 / 8)
    shift = E.SHIPPED_TAU * np.log(prior)
    np.testing.assert_allclose(E.candidate_logits(("a",), z, "valid", prior), 0.5 * (z["a"]["valid"][0] + z["a"]["valid"][1]) - shift)
    np.testing.assert_allclose(E.candidate_logits(("a", "b"), z, "valid", prior), 0.5 * (z["a"]["valid"][0] + z["b"]["valid"][0]) - shift)


def row(acc: float, uar: float, jaffe: float) -> dict:
    return {"valid": {"accuracy": acc, "uar": uar, "ece": 0.01},
            "crossval": {"jaffe": {"accuracy": jaffe, "uar": jaffe, "ece": 0.1}}}


def test_a_pair_ships_only_when_better_on_valid_and_worse_on_no_crossval_set():
    shipped = row(0.87, 0.72, 0.50)
    assert E.ships(row(0.87, 0.73, 0.50), shipped)
    assert not E.ships(row(0.88, 0.73, 0.476), shipped)  # one JAFFE face fewer
    assert not E.ships(row(0.869, 0.80, 0.60), shipped)  # Valid accuracy lower
    assert not E.ships(row(0.88, 0.72, 0.60), shipped)  # Valid UAR not higher


def test_the_card_lists_every_candidate_and_says_which_would_ship():
    record = {"names": {"a": "CNN a"}, "rows": {"a (with its mirror image)": row(0.87, 0.72, 0.5) | {"ships": False},
                                               "a + b": row(0.88, 0.74, 0.55) | {"ships": True}}}
    text = "\n".join(model_card.ensembles_section(record))
    assert "`a`: CNN a" in text
    assert "| a + b | 88.00% | 74.00% | 0.010 | 55.0% / 55.0% / 0.100 |" in text
    assert "- By that rule: a + b would ship." in text
