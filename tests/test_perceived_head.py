"""The numpy parts of training/perceived_head.py: calibrators, ECE against votes, the Valid choice."""
from __future__ import annotations

import hashlib
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


def test_record_adds_a_cnn_with_its_chosen_head_and_keeps_the_others(tmp_path):
    base = tmp_path / "plain.onnx"
    base.write_bytes(b"cnn")
    row = {"accuracy": 0.8, "uar": 0.7, "ece": 0.02}
    report = {"chosen": "shipped + flip", "ideas": {"shipped": {}, "shipped + flip": row},
              "ideas_crossval": {"shipped": {}, "shipped + flip": {"jaffe": row}}}
    before = {"chosen": "old", "ideas": {"old": row}, "ideas_crossval": {"old": {"jaffe": row}},
              "cnns": {"old": {"head": "shipped", "sha256": "x", "training": None}}}
    kept = H.record_cnn(before, "new", report, base, {"epochs": 3}, shipped=False)
    assert kept["chosen"] == "old" and set(kept["ideas"]) == {"old", "new"}
    assert kept["ideas"]["new"] == row and kept["ideas_crossval"]["new"] == {"jaffe": row}
    assert kept["cnns"]["new"] == {"head": "shipped + flip", "training": {"epochs": 3},
                                   "sha256": hashlib.sha256(b"cnn").hexdigest()}
    assert H.record_cnn(before, "new", report, base, None, shipped=True)["chosen"] == "new"


def test_model_card_lists_each_cnn_with_its_head_and_marks_the_shipped_one():
    import model_card

    row = {"accuracy": 0.8, "uar": 0.7, "ece": 0.02}
    training = {"init_onnx": "runs/main/plain.onnx", "epochs": 10, "lr": 0.01, "capture_aug": True, "threads": 1,
                "median_epoch_seconds": 300.0, "wall_seconds": 3000.0, "last_epoch_valid_accuracy": 0.85}
    record = {"selection": "rule", "chosen": "old", "ideas": {"old": row, "new": row},
              "ideas_crossval": {"old": {"jaffe": row}, "new": {"jaffe": row}},
              "cnns": {"old": {"head": "shipped + flip", "training": None}, "new": {"head": "balanced(0.5)", "training": training}}}
    text = "\n".join(model_card.cnn_section(record))
    assert "| old; head: shipped + flip (chosen) | 80.00% | 70.00% | 0.020 | 80.0% / 70.0% / 0.020 |" in text
    assert "| new; head: balanced(0.5) | 80.00%" in text
    assert "- new: fine-tuned from `plain.onnx`, 10 epochs, peak learning rate 0.01, with capture augmentation" in text
    assert "5.0 min per epoch (50 min in all)" in text
    assert "- new against the shipped CNN: Valid accuracy +0.0, UAR +0.0 points; crossval accuracy / UAR jaffe +0.0 / +0.0" in text
