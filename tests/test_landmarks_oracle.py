"""Landmarks agree with mediapipe 0.10.21's legacy FaceMesh (static mode).

The reference landmarks in fixtures/oracle_landmarks.npz were generated with mediapipe itself by
tools/make_oracle_landmarks.py (mediapipe is not installed here: it pins numpy<2)."""
from pathlib import Path

import numpy as np
import pytest

from mien.analyzer import Analyzer, Options
from oracle_inputs import demo_images, ferplus_images

FIXTURE = Path(__file__).parent / "fixtures" / "oracle_landmarks.npz"


@pytest.fixture(scope="module")
def oracle_run(shared_data):
    ref = np.load(FIXTURE)
    # Legacy FaceMesh uses the short-range detector only.
    analyzer = Analyzer(Options(detector="short", iris=False, max_faces=10))
    images = dict(list(demo_images(shared_data)) + list(ferplus_images(shared_data)))
    offset = 0
    rows = []
    for name, count in zip(ref["names"], ref["counts"]):
        ours = analyzer.analyze(images[str(name)]).landmarks
        theirs = ref["points"][offset : offset + count]
        offset += count
        rows.append((str(name), ours, theirs))
    return rows


def test_same_number_of_faces(oracle_run):
    mismatched = [(name, len(o), len(t)) for name, o, t in oracle_run if len(o) != len(t)]
    assert len(oracle_run) == 203
    assert mismatched == []


def test_mean_landmark_error_below_one_pixel(oracle_run):
    errors = []
    for name, ours, theirs in oracle_run:
        for t in theirs:
            o = ours[np.argmin([np.abs(p[:, :2] - t[:, :2]).mean() for p in ours])]
            errors.append(np.linalg.norm(o[:, :2] - t[:, :2], axis=1).mean())
    errors = np.array(errors)
    assert len(errors) >= 180
    assert errors.mean() <= 1.0, f"mean error {errors.mean():.3f} px"
    assert np.median(errors) <= 0.5
