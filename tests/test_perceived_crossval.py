"""The cross-dataset benchmark's scoring (benchmarks/perceived_crossval.py), on small made-up sets."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import perceived_crossval as CV  # noqa: E402


def one_hot(k: list[int], share: float = 0.9) -> np.ndarray:
    p = np.full((len(k), 8), (1 - share) / 7)
    p[np.arange(len(k)), k] = share
    return p


def test_no_face_counts_as_wrong_and_uar_uses_the_classes_present():
    labels = np.array([4, 4, 4, 5])  # anger x3, disgust
    probs = one_hot([4, 0, 4, 5])
    found = np.array([True, True, False, True])
    r = CV.score(probs, labels, found, answered=found)
    assert r["accuracy"] == pytest.approx(2 / 4)
    assert r["per_class_recall"] == {"anger": pytest.approx(1 / 3), "disgust": 1.0}
    assert r["uar"] == pytest.approx((1 / 3 + 1) / 2)
    assert r["no_face"] == 1
    assert r["confusion"][4] == [1, 0, 0, 0, 1, 0, 0, 0, 1]  # last column: no face
    assert r["coverage_at_threshold"] == pytest.approx(3 / 4)
    assert r["accuracy_answered"] == pytest.approx(2 / 3)


def test_ece_is_over_the_faces_found_with_15_bins():
    labels = np.array([1, 1, 1, 1])
    probs = one_hot([1, 1, 0, 0], share=0.95)
    found = np.ones(4, bool)
    r = CV.score(probs, labels, found, answered=found)
    assert r["ece"] == pytest.approx(abs(0.5 - 0.95))
    assert r["mean_top_share"] == pytest.approx(0.95)


def test_largest_face_is_kept():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 40, 30], [0, 0, 20, 20]], float)
    assert CV.largest(boxes) == 1


def test_the_cache_key_covers_the_modules_that_place_and_crop_faces():
    """A crop cached under an old key would be scored as today's pipeline: every mien module that the
    face-finding modules take code from must be part of the key."""
    import inspect

    from mien import analyzer, detect, landmarks, small_faces

    for module in (analyzer, detect, landmarks, small_faces):
        assert f"{module.__name__.split('.')[-1]}.py" in CV.PIPELINE_SOURCES
    for module in (detect, landmarks, small_faces):
        for value in vars(module).values():
            source = inspect.getmodule(value)
            named = source.__name__ if source is not None else ""
            if named.startswith("mien.") and named not in ("mien.errors", "mien.runtime"):
                assert f"{named.split('.')[-1]}.py" in CV.PIPELINE_SOURCES, named
