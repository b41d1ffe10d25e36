import numpy as np
import pytest

from mien.geometry import canonical_face, from_canonical_frame, head_pose, to_canonical_frame

ANGLES = [(0, 0, 0), (30, 0, 0), (-30, 0, 0), (0, 25, 0), (0, -25, 0), (0, 0, 20), (25, -15, 10), (-40, 25, -20), (60, 10, 5)]


@pytest.mark.parametrize("yaw,pitch,roll", ANGLES)
def test_pose_recovers_known_rotation(yaw, pitch, roll):
    mesh = from_canonical_frame(canonical_face().points, yaw, pitch, roll, scale=9.0, centre_xy=(320, 240))
    pose = head_pose(mesh[None])
    np.testing.assert_allclose([pose.yaw[0], pose.pitch[0], pose.roll[0]], [yaw, pitch, roll], atol=1.0)


def test_pose_under_landmark_noise_within_one_degree():
    rng = np.random.default_rng(0)
    face = canonical_face().points
    for yaw, pitch, roll in ANGLES:
        mesh = from_canonical_frame(face, yaw, pitch, roll, scale=9.0, centre_xy=(320, 240))
        mesh += rng.normal(0, 0.5, mesh.shape)  # half-pixel noise on a ~130 px face
        pose = head_pose(mesh[None])
        np.testing.assert_allclose([pose.yaw[0], pose.pitch[0], pose.roll[0]], [yaw, pitch, roll], atol=1.0)


def test_image_signs_match_the_documented_convention():
    face = canonical_face().points
    turned = from_canonical_frame(face, 20, 0, 0, 9.0, (320, 240))
    nose, centre = turned[1, 0], turned[:, 0].mean()
    assert nose > centre  # positive yaw: the nose moves to the image's right
    up = from_canonical_frame(face, 0, 20, 0, 9.0, (320, 240))
    level = from_canonical_frame(face, 0, 0, 0, 9.0, (320, 240))
    assert up[1, 1] < level[1, 1]  # positive pitch: the nose rises (image y decreases)
    ccw = from_canonical_frame(face, 0, 0, 15, 9.0, (320, 240))
    # counterclockwise on screen: the eye on the image's right (landmark 263) goes up
    assert ccw[263, 1] < ccw[33, 1]


def test_to_canonical_frame_removes_pose():
    face = canonical_face().points
    mesh = from_canonical_frame(face, 25, -10, 8, 11.0, (300, 200))
    back = to_canonical_frame(mesh[None], head_pose(mesh[None]))[0]
    np.testing.assert_allclose(back, face, atol=1e-6)


def test_mirrored_photo_flips_yaw_and_roll(analyzer, astronaut):
    turned = astronaut.copy()
    # rotate the photo a little so that roll is clearly non-zero
    import cv2

    matrix = cv2.getRotationMatrix2D((256, 256), 12, 1.0)
    turned = cv2.warpAffine(turned, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
    a = analyzer.analyze(turned).pose
    b = analyzer.analyze(np.ascontiguousarray(turned[:, ::-1])).pose
    assert abs(a.roll[0]) > 5
    assert np.sign(a.roll[0]) == -np.sign(b.roll[0])
    assert abs(a.roll[0] + b.roll[0]) < 1.5
    assert abs(a.yaw[0] + b.yaw[0]) < 1.5
    assert abs(a.pitch[0] - b.pitch[0]) < 1.5


def test_rotating_the_photo_counterclockwise_gives_positive_roll(analyzer, astronaut):
    import cv2

    base = analyzer.analyze(astronaut).pose.roll[0]
    matrix = cv2.getRotationMatrix2D((256, 256), 15, 1.0)  # OpenCV: positive angle = counterclockwise
    rotated = cv2.warpAffine(astronaut, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
    roll = analyzer.analyze(rotated).pose.roll[0]
    assert roll - base == pytest.approx(15, abs=2)


def test_gaze_adds_eye_rotation_to_head_pose():
    from mien.geometry import EYEBALL_RADIUS_CM, gaze_angles

    face = canonical_face().points
    mesh = from_canonical_frame(face, 15, -10, 5, 10.0, (320, 240))
    pose = head_pose(mesh[None])
    corners = np.array([[mesh[[33, 133], :2], mesh[[263, 362], :2]]])
    looking_ahead = corners.mean(2)
    np.testing.assert_allclose(gaze_angles(mesh[None], looking_ahead, corners, pose)[0], [15, -10], atol=1.0)
    # move both irises 0.3 cm towards the subject's left (canonical +x), in the head's frame
    shift = from_canonical_frame(np.array([[0.3, 0, 0], [0, 0, 0]]), 15, -10, 5, 10.0, (0, 0))
    moved = looking_ahead + (shift[0, :2] - shift[1, :2])
    expected_yaw = 15 + np.degrees(np.arcsin(0.3 / EYEBALL_RADIUS_CM))
    assert gaze_angles(mesh[None], moved, corners, pose)[0, 0] == pytest.approx(expected_yaw, abs=1.5)


def test_mirrored_photo_flips_gaze_yaw(analyzer, astronaut):
    a = analyzer.analyze(astronaut).gaze[0]
    b = analyzer.analyze(np.ascontiguousarray(astronaut[:, ::-1])).gaze[0]
    assert abs(a[0] + b[0]) < 2.0 and abs(a[1] - b[1]) < 2.0
