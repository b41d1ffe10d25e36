"""Small images through the front door: the enlargement rule, its mapping back, and the CLI/API on 48x48 crops."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from mien.quality import NOT_DETECTED
from mien.small_faces import SMALL_IMAGE_PX, Enlargement, enlarge_small_image


def test_large_images_are_left_alone():
    rgb = np.zeros((SMALL_IMAGE_PX, 400, 3), np.uint8)
    seen, enlargement = enlarge_small_image(rgb)
    assert seen is rgb and enlargement.identity
    np.testing.assert_array_equal(enlargement.points_to_original(np.array([[3.5, 7.25, 2.0]])), [[3.5, 7.25, 2.0]])


def test_small_image_is_enlarged_in_a_border_and_points_map_back():
    rgb = np.full((48, 60, 3), 40, np.uint8)
    rgb[20, 10] = 255  # pixel (row 20, column 10): its centre is (10.5, 20.5)
    seen, e = enlarge_small_image(rgb)
    assert e.scale == 3 and e.border == 90  # round(192 / 60) = 3; half the enlarged longer side (180)
    assert seen.shape == (48 * 3 + 180, 60 * 3 + 180, 3)
    assert (seen[0, 0] == 128).all() and (seen[-1, -1] == 128).all()
    peak = np.unravel_index(np.argmax(seen[..., 0]), seen.shape[:2])
    back = e.points_to_original(np.array([[peak[1] + 0.5, peak[0] + 0.5, 6.0]]))
    np.testing.assert_allclose(back[0, :2], [10.5, 20.5], atol=0.5)
    assert back[0, 2] == pytest.approx(2.0)
    np.testing.assert_allclose(e.boxes_to_original(np.array([[90, 90, 270, 234]])), [[0, 0, 60, 48]])


def test_grey_small_image_keeps_its_channels():
    seen, e = enlarge_small_image(np.zeros((48, 48), np.uint8))
    assert seen.ndim == 2 and seen.shape == (48 * 4 + 192,) * 2 and e.scale == 4


def test_mapping_is_the_inverse_of_the_enlargement():
    e = Enlargement(4.0, 96.0)
    p = np.random.default_rng(0).random((5, 468, 3)).astype(np.float32) * 48
    enlarged = p * 4
    enlarged[..., :2] += 96
    np.testing.assert_allclose(e.points_to_original(enlarged), p, atol=1e-4)


def ferplus_crops(shared_data, n: int):
    folder = shared_data / "ferplus" / "data" / "FER2013Test"
    return sorted(p for p in folder.glob("*.png") if p.name != "fer0033120.png")[:n]


def test_analyzer_finds_48px_faces_like_the_hand_upscaled_path(shared_data, analyzer):
    """The API on the original 48x48 crops finds the faces that hand upscaling (4x + 64 px border) finds,
    and reports them in the crop's own pixels."""
    from oracle_inputs import upscale_with_border

    paths = ferplus_crops(shared_data, 40)
    by_hand = direct = 0
    for path in paths:
        grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        hand = analyzer.analyze(upscale_with_border(grey))
        batch = analyzer.analyze(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
        by_hand += len(hand.scores) > 0
        direct += len(batch.scores) > 0
        if len(batch.scores) and len(hand.scores):  # same face, in the 48x48 crop's pixels
            np.testing.assert_allclose(batch.boxes[0], (hand.boxes[0] - 64) / 4, atol=4)
            np.testing.assert_allclose(batch.landmarks[0, :, :2], (hand.landmarks[0, :, :2] - 64) / 4, atol=4)
    assert direct >= by_hand >= 35


def test_cli_analyzes_48px_crops_without_hand_upscaling(shared_data, tmp_path):
    import pandas as pd

    from mien.cli import main

    folder = tmp_path / "crops"
    folder.mkdir()
    for path in ferplus_crops(shared_data, 12):
        shutil.copy(path, folder / path.name)
    out = tmp_path / "faces.csv"
    assert main(["analyze", str(folder), "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert (table["status"] == "ok").sum() >= 11
    assert table["perceived_top_p"].notna().sum() >= 11


def test_analyzer_detects_small_images_enlarged(monkeypatch):
    from mien.analyzer import Analyzer, Options

    from mien.detect import FaceDetector

    analyzer = Analyzer(Options(iris=False, perceived=False, action_units=False))
    seen = []
    detect = FaceDetector.__call__

    def spy(self, image, *args, **kwargs):
        seen.append(image.shape)
        return detect(self, image, *args, **kwargs)

    monkeypatch.setattr(FaceDetector, "__call__", spy)
    analyzer.analyze(np.full((48, 48, 3), 90, np.uint8))
    analyzer.analyze(np.full((200, 300, 3), 90, np.uint8))
    assert seen == [(384, 384, 3), (200, 300, 3)]


def test_search_regions_are_9_squares_centred_on_the_image():
    from mien.small_faces import SEARCH_SIDES, SEARCH_TILTS, search_regions

    _, e = enlarge_small_image(np.zeros((48, 60, 3), np.uint8))
    regions = search_regions(48, 60, e)
    assert len(regions.side) == len(SEARCH_SIDES) * len(SEARCH_TILTS) == 9
    np.testing.assert_allclose(regions.centre, np.tile(e.border + e.scale * np.array([30.0, 24.0]), (9, 1)))
    pairs = sorted(zip(regions.side / (e.scale * 60), regions.angle))
    np.testing.assert_allclose(pairs, [(s, t) for s in SEARCH_SIDES for t in SEARCH_TILTS])


# FERPlus Valid crops where neither detector places a face the landmark model accepts (a shouting
# face with a raised hand, no detection at all; a laughing face, presence 0.23), and the search does.
MISSED_BY_THE_DETECTORS = ("fer0029156.png", "fer0030053.png")


@pytest.mark.parametrize("name", MISSED_BY_THE_DETECTORS)
def test_a_face_crop_the_detectors_miss_is_found_by_the_search(shared_data, analyzer, name):
    from mien.detect import FaceDetector
    from mien.landmarks import FaceMesher, roi_from_detections

    grey = cv2.imread(str(shared_data / "ferplus" / "data" / "FER2013Valid" / name), cv2.IMREAD_GRAYSCALE)
    crop = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    seen, _ = enlarge_small_image(crop)
    det = FaceDetector("both")(seen)
    assert len(det) == 0 or (FaceMesher()(seen, roi_from_detections(det)).presence < 0.5).all()

    faces = analyzer.analyze(crop)
    assert len(faces.scores) == 1
    assert 0.5 <= faces.scores[0] <= 1 and faces.presence[0] >= 0.5  # the confirming detector's confidence
    assert faces.quality.reasons[0].split(";")[-1] == NOT_DETECTED
    points = faces.landmarks[0, :, :2]
    np.testing.assert_allclose(faces.boxes[0], [*points.min(0), *points.max(0)], atol=1e-3)
    eyes = points[[33, 263]]  # outer eye corners, inside the crop, in its own pixels
    assert ((eyes > 0) & (eyes < 48)).all()
    assert 8 < np.linalg.norm(eyes[0] - eyes[1]) < 40


def test_the_search_vouches_for_none_of_its_faces(analyzer, astronaut):
    """The mission patch on the astronaut's suit: the search reports a face there (the landmark model
    is sure, a detector agrees at a low score); like every face the search finds, it is not reliable,
    so it gets no perceived label."""
    patch = np.ascontiguousarray(astronaut[288:422, 120:254])
    faces = analyzer.analyze(patch)
    assert len(faces.scores) == 1
    assert not faces.quality.reliable[0] and NOT_DETECTED in faces.quality.reasons[0].split(";")
    assert faces.perceived.top[0] == "uncertain"


def test_a_small_face_the_detectors_place_is_not_flagged_not_detected(analyzer, astronaut):
    """The astronaut's face shrunk to 90 px: the detectors place it, so it is vouched for like any other face."""
    small = cv2.resize(np.ascontiguousarray(astronaut[60:200, 155:295]), (90, 90), interpolation=cv2.INTER_AREA)
    faces = analyzer.analyze(small)
    assert len(faces.scores) == 1
    assert faces.quality.reasons == ("",) and faces.quality.reliable[0]


@pytest.mark.parametrize("pixels", [np.full((48, 48, 3), 128, np.uint8),
                                    np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)])
def test_the_search_finds_no_face_in_flat_or_noisy_small_images(analyzer, pixels):
    assert len(analyzer.analyze(pixels).scores) == 0


def test_video_mode_tracks_small_frames_enlarged_as_still_images_are(shared_data, analyzer):
    """A 48x48 crop as a one-frame video finds the face that the same crop as a still image finds
    without the search, in the crop's own pixels."""
    from mien.analyzer import Analyzer, Mode, Options
    from mien.video.decode import Frame

    video = Analyzer(Options(mode=Mode.VIDEO))
    as_still = as_video = 0
    for path in ferplus_crops(shared_data, 120):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2RGB)
        still = analyzer.analyze(rgb)
        placed = [NOT_DETECTED not in r.split(";") for r in still.quality.reasons]
        video.reset()
        (frame,) = video.analyze_batch([Frame(0, 0.0, rgb)])
        as_still += any(placed)
        as_video += len(frame.scores) > 0
        if any(placed) and len(frame.scores):  # the same mesh (the video's box is the mesh's extent, the still's the detector's)
            offsets = frame.landmarks[0, :, :2] - still.landmarks[placed.index(True), :, :2]
            assert np.abs(offsets).mean() < 1.0
    assert as_video >= as_still - 2 and as_still >= 100
