"""The numpy parts of training/perceived_head.py: calibrators, ECE against votes, the Valid choice."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import perceived_head as H  # noqa: E402


def test_temperature_fit_recovers_the_temperature_of_the_crowd():
    logits = np.random.default_rng(0).normal(size=(400, 8)) * 3
    crowd = H.softmax(logits / 2.0)
    matrix, bias = H.fit_calibration(logits, crowd, "temperature", steps=800, lr=0.02)
    np.testing.assert_allclose(matrix, np.eye(8) / 2.0, atol=0.02)
    assert not bias.any()


def test_vector_fit_learns_class_biases_that_temperature_cannot():
    logits = np.random.default_rng(1).normal(size=(400, 8))
    shift = np.linspace(-1, 1, 8)
    crowd = H.softmax(H.log_softmax(logits) + shift)
    _, bias = H.fit_calibration(logits, crowd, "vector", steps=800, lr=0.02)
    np.testing.assert_allclose(bias - bias.mean(), shift - shift.mean(), atol=0.1)


def test_vote_ece_compares_top_share_with_the_crowd_share_of_the_top_class():
    probs = np.array([[0.6, 0.4] + [0.0] * 6, [0.3, 0.7] + [0.0] * 6])
    honest = np.array([[0.6, 0.4] + [0.0] * 6, [0.3, 0.7] + [0.0] * 6])
    assert H.vote_ece(probs, honest) == pytest.approx(0.0)
    crowd = np.array([[0.2, 0.8] + [0.0] * 6, [0.3, 0.7] + [0.0] * 6])
    assert H.vote_ece(probs, crowd) == pytest.approx(0.4 / 2)


def test_choice_keeps_valid_accuracy_at_least_the_shipped_heads():
    ideas = {"shipped": {"accuracy": 0.87, "uar": 0.68}, "a": {"accuracy": 0.86, "uar": 0.80},
             "b": {"accuracy": 0.871, "uar": 0.72}, "c": {"accuracy": 0.88, "uar": 0.70}}
    assert H.choose(ideas) == "b"


def test_energy_is_log_sum_exp():
    z = np.array([[0.0, np.log(3.0)] + [-np.inf] * 6])
    assert H.energy(z)[0] == pytest.approx(np.log(4.0))
