import cv2
import numpy as np
import pytest

from mien.detect import letterbox_transform
from mien.landmarks import roi_to_tensor_matrix
from mien.pixels import SMALLEST_WIDENED, WIDEST_WINDOW, _sampled_window, warp_rgb, window_per_square_pixel


def plain_warp(image, matrix, size, border):
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border)


@pytest.mark.parametrize("border", [cv2.BORDER_REPLICATE, cv2.BORDER_CONSTANT])
def test_warp_rgb_matches_opencv_within_one_level_for_squares_inside_across_and_outside_the_image(border):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (360, 480, 3), dtype=np.uint8)
    differing = []
    for _ in range(200):
        matrix = roi_to_tensor_matrix(rng.uniform(-300, 780, 2), rng.uniform(6, 1200), rng.uniform(-np.pi, np.pi), 128)
        ours, theirs = warp_rgb(image, matrix, 128, border).astype(int), plain_warp(image, matrix, 128, border).astype(int)
        assert np.abs(ours - theirs).max() <= 1
        differing.append(np.mean(ours != theirs))
    assert np.mean(differing) < 0.01


def test_warp_rgb_writes_into_out_and_leaves_small_squares_grey_images_and_singular_matrices_to_opencv():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    matrix = roi_to_tensor_matrix(np.array([30.0, 25.0]), 40.0, 0.3, 32)
    widened = roi_to_tensor_matrix(np.array([30.0, 25.0]), 40.0, 0.3, SMALLEST_WIDENED)
    out = np.zeros((SMALLEST_WIDENED, SMALLEST_WIDENED, 3), np.uint8)
    assert warp_rgb(image, widened, SMALLEST_WIDENED, out=out) is out and out.any()
    np.testing.assert_array_equal(warp_rgb(image, matrix, 32), plain_warp(image, matrix, 32, cv2.BORDER_REPLICATE))
    grey = image[..., 0].copy()
    np.testing.assert_array_equal(warp_rgb(grey, matrix, 32), plain_warp(grey, matrix, 32, cv2.BORDER_REPLICATE))
    singular = np.zeros((2, 3), np.float32)
    np.testing.assert_array_equal(warp_rgb(image, singular, 16), plain_warp(image, singular, 16, cv2.BORDER_REPLICATE))
    far_away = roi_to_tensor_matrix(np.array([5000.0, 5000.0]), 10.0, 0.0, 16)
    black = warp_rgb(image, far_away, 16, cv2.BORDER_CONSTANT)
    assert black.shape == (16, 16, 3) and not black.any()


def test_a_window_much_larger_than_the_square_is_warped_in_three_channels_as_widening_it_would_cost_more():
    """A 1280x720 frame letterboxed into the short-range detector's 128 px samples 56 window pixels per
    square pixel, a close-up's rotated 700 px square about as many: converting all of them to four
    channels costs more than the faster warp saves, so they come out exactly as OpenCV warps them."""
    frame = np.random.default_rng(2).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    letterbox, *_ = letterbox_transform(720, 1280, 128)
    close_up = roi_to_tensor_matrix(np.array([640.0, 360.0]), 700.0, 0.3, 128)
    for matrix in (letterbox, close_up):
        assert window_per_square_pixel(_sampled_window(matrix, 128, 720, 1280), 128) > WIDEST_WINDOW
    np.testing.assert_array_equal(warp_rgb(frame, close_up, 128), plain_warp(frame, close_up, 128, cv2.BORDER_REPLICATE))
    mesh_crop = roi_to_tensor_matrix(np.array([640.0, 360.0]), 200.0, 0.3, 192)
    assert window_per_square_pixel(_sampled_window(mesh_crop, 192, 720, 1280), 192) < WIDEST_WINDOW


def test_an_empty_square_comes_out_as_opencv_makes_it():
    image = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    matrix = roi_to_tensor_matrix(np.array([25.0, 20.0]), 30.0, 0.2, 16)
    assert warp_rgb(image, matrix, 0).shape == plain_warp(image, matrix, 0, cv2.BORDER_REPLICATE).shape
