import cv2
import numpy as np
import pytest

from mien.landmarks import roi_to_tensor_matrix
from mien.pixels import warp_rgb


def plain_warp(image, matrix, size, border):
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


@pytest.mark.parametrize("border", [cv2.BORDER_REPLICATE, cv2.BORDER_CONSTANT])
def test_warp_rgb_matches_opencv_within_one_level_for_squares_inside_across_and_outside_the_image(border):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    differing = []
    for _ in range(200):
        matrix = roi_to_tensor_matrix(rng.uniform(-100, 260, 2), rng.uniform(2, 400), rng.uniform(-np.pi, np.pi), 48)
        ours, theirs = warp_rgb(image, matrix, 48, border).astype(int), plain_warp(image, matrix, 48, border).astype(int)
        assert np.abs(ours - theirs).max() <= 1
        differing.append(np.mean(ours != theirs))
    assert np.mean(differing) < 0.01


def test_warp_rgb_writes_into_out_and_keeps_what_it_cannot_speed_up():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    matrix = roi_to_tensor_matrix(np.array([30.0, 25.0]), 40.0, 0.3, 32)
    out = np.zeros((32, 32, 3), np.uint8)
    assert warp_rgb(image, matrix, 32, out=out) is out and out.any()
    grey = image[..., 0].copy()
    np.testing.assert_array_equal(warp_rgb(grey, matrix, 32), plain_warp(grey, matrix, 32, cv2.BORDER_REPLICATE))
    singular = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(warp_rgb(image, singular, 16), plain_warp(image, singular, 16, cv2.BORDER_REPLICATE))
    far_away = roi_to_tensor_matrix(np.array([5000.0, 5000.0]), 10.0, 0.0, 16)
    black = warp_rgb(image, far_away, 16, cv2.BORDER_CONSTANT)
    assert black.shape == (16, 16, 3) and not black.any()
