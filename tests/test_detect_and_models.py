import shutil

import cv2
import numpy as np
import pytest

from mien import runtime
from mien.detect import FaceDetector, ssd_anchor_centres, weighted_nms


def test_anchor_layouts_match_the_models():
    assert len(ssd_anchor_centres(128, (8, 16, 16, 16), 2)) == 896
    assert len(ssd_anchor_centres(192, (4,), 1)) == 2304


def test_weighted_nms_merges_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    out_boxes, out_scores, _ = weighted_nms(boxes, scores, kps)
    assert len(out_scores) == 2 and out_scores[0] == pytest.approx(0.9)
    np.testing.assert_allclose(out_boxes[0], [0.4, 0.4, 10.4, 10.4], atol=1e-5)


def test_auto_finds_small_faces_in_the_group_video(shared_data):
    cap = cv2.VideoCapture(str(shared_data / "demo/openmpf/video_01.mp4"))
    for _ in range(30):
        ok, frame = cap.read()
    assert ok
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    auto = FaceDetector("auto")(rgb)
    assert len(auto) >= 3
    widths = auto.boxes[:, 2] - auto.boxes[:, 0]
    assert (widths < 70).all()


def test_auto_finds_close_up_faces(astronaut, shared_data):
    for image in (astronaut, cv2.cvtColor(cv2.imread(str(shared_data / "demo/pillow/hopper.jpg")), cv2.COLOR_BGR2RGB)):
        assert len(FaceDetector("auto")(image)) == 1


def test_no_face_in_a_flat_image():
    assert len(FaceDetector("auto")(np.full((240, 320, 3), 127, np.uint8))) == 0


@pytest.fixture()
def fake_models_dir(tmp_path, monkeypatch):
    copy = tmp_path / "models"
    shutil.copytree(runtime.models_dir(), copy)
    monkeypatch.setattr(runtime, "models_dir", lambda: copy)
    runtime._manifest_document.cache_clear()
    runtime.verified_model_path.cache_clear()
    yield copy
    runtime._manifest_document.cache_clear()
    runtime.verified_model_path.cache_clear()


def test_corrupted_model_names_the_file_and_the_repair(fake_models_dir):
    target = fake_models_dir / "face_landmark.tflite"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(runtime.ModelFileError, match="face_landmark.tflite is corrupted.*pip install --force-reinstall"):
        runtime.verified_model_path("face_landmark.tflite")


def test_missing_model_names_the_file(fake_models_dir):
    (fake_models_dir / "iris_landmark.tflite").unlink()
    with pytest.raises(runtime.ModelFileError, match="iris_landmark.tflite is missing"):
        runtime.verified_model_path("iris_landmark.tflite")


def test_shipped_models_match_the_manifest():
    for name in runtime.manifest():
        assert runtime.verified_model_path(name).exists()
