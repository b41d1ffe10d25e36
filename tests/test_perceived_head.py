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


def test_model_card_says_how_a_cnn_was_distilled_and_where_it_was_trained():
    import model_card

    row = {"accuracy": 0.8, "uar": 0.7, "ece": 0.02}
    base = {"init_onnx": None, "epochs": 42, "lr": 0.1, "capture_aug": False, "threads": 2, "median_epoch_seconds": 6.0,
            "wall_seconds": 300.0, "last_epoch_valid_accuracy": 0.87}
    record = {"selection": "rule", "chosen": "old", "ideas": {"old": row, "taught": row, "views": row},
              "ideas_crossval": {"old": {"jaffe": row}, "taught": {"jaffe": row}, "views": {"jaffe": row}},
              "cnns": {"old": {"head": "shipped", "training": base},
                       "taught": {"head": "shipped", "training": base | {"teacher_weight": 0.5, "device": "cuda"}},
                       "views": {"head": "shipped", "training": base | {"teacher_weight": 0.0, "device": "cpu"}}}}
    text = "\n".join(model_card.cnn_section(record))
    assert "- old: trained from scratch, 42 epochs, peak learning rate 0.1, without capture augmentation, 2 thread(s)," in text
    assert "distilled with teacher weight 0.5 (`--teacher`), on the GPU machine (`--device cuda`)" in text
    assert "with the crowd votes alone (`--teacher`, weight 0), 2 thread(s)" in text


def test_model_card_sets_the_teacher_beside_the_shipped_cnn_and_states_the_spread_of_its_members():
    import model_card

    def row(acc: float, jaffe: float) -> dict:
        return {"valid": {"accuracy": acc, "uar": 0.7, "ece": 0.02},
                "crossval": {"jaffe": {"accuracy": jaffe, "uar": jaffe, "ece": 0.1}}}

    teacher = {"teacher": {"device": "GPU", "torch": "2", "parameters_per_member": 11_000_000, "views": 24,
                           "members": [{"index": k, "epochs": 40, "mixup": k == 1, "train_seconds": 200.0} for k in range(2)]},
               "rows": {"member 0 adjusted(0.2)": row(0.88, 0.50), "member 1 adjusted(0.2)": row(0.89, 0.45),
                        "ensemble adjusted(0.2)": row(0.90, 0.55)},
               "disagreement": {"jaffe": {"faces": 42, "error": 0.5, "auc_wrong_disagreement": 0.61,
                                          "auc_wrong_top_share": 0.8, "flagged_by_disagreement": 0.02}}}
    cnn = {"chosen": "shipped", "ideas": {"shipped": {"accuracy": 0.87, "uar": 0.72, "ece": 0.02}},
           "ideas_crossval": {"shipped": {"jaffe": {"accuracy": 0.5, "uar": 0.5, "ece": 0.4}}}}
    text = "\n".join(model_card.teacher_section(teacher, cnn, 1_100_000))
    assert "11.0 M parameters each (10 times the shipped CNN)" in text
    assert "| ensemble adjusted(0.2) | 90.00% | 70.00% | 0.020 | 55.0% / 55.0% / 0.100 |" in text
    assert "member 1: 40 epochs, mixup, 200 s" in text
    assert "against the shipped CNN with its head (its row under 'Retraining the CNN'): Valid accuracy +3.0, UAR -2.0" in text
    assert "jaffe +5.0 / +5.0 points" in text
    assert "differ among themselves by jaffe 5.0 points of crossval accuracy, and by 1.0 on Valid" in text
    assert "| jaffe | 42 | 50.0% | 0.610 | 0.800 | 2.0% |" in text
    limit = "\n".join(model_card.teacher_limit(teacher, cnn))
    assert "(2 networks of 11.0 M parameters" in limit
    assert "gains +3.0 points of Valid accuracy over the shipped CNN, while its crossval accuracy moves +5.0 to +5.0" in limit
    assert model_card.teacher_limit(teacher, {"chosen": None}) == []
