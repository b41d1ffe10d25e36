"""Fuzzing mien's command with a few hundred seeded, damaged images and videos (issue 14): no
crash, no hang, one row per input, a specific message for every failure. benchmarks/fuzz.py
runs the same checks on many more inputs."""
import pytest

from fuzz_inputs import check_images, check_videos, image_seeds, video_seeds, write_inputs

TIMEOUT_S = 240  # a hang fails the test instead of stopping the suite; the runs take a fraction of it


def assert_clean(outcome):
    assert not outcome.hung, f"the command hung on {outcome.inputs} inputs"
    assert not outcome.crashed, outcome.stderr
    assert outcome.missing == [], f"no row for {outcome.missing[:10]}"
    assert outcome.vague == [], f"error rows that say nothing specific: {outcome.vague[:10]}"


@pytest.mark.parametrize("seed", [14])
def test_damaged_images_each_get_a_row_with_a_specific_message(tmp_path, seed):
    paths = write_inputs(tmp_path / "images", image_seeds(), count=200, seed=seed)
    assert_clean(check_images(paths, tmp_path / "images.csv", TIMEOUT_S))


@pytest.mark.parametrize("seed", [14])
def test_damaged_videos_each_get_a_table_with_a_specific_message(tmp_path, seed):
    paths = write_inputs(tmp_path / "videos", video_seeds(tmp_path), count=40, seed=seed)
    assert_clean(check_videos(paths, tmp_path / "out", TIMEOUT_S))
