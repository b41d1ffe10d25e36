"""Reference landmarks from mediapipe 0.10.21's legacy FaceMesh (static mode), for the tests.

mediapipe is not a dependency of mien: it pins numpy<2. Run this once in a separate
environment and commit its output (landmarks only, no pixels):

    python -m venv /tmp/oracle && /tmp/oracle/bin/pip install "numpy<2" opencv-python-headless==4.10.0.84 \
        matplotlib protobuf==4.25.5 absl-py attrs flatbuffers && \
        /tmp/oracle/bin/pip install --no-deps mediapipe==0.10.21
    /tmp/oracle/bin/python tools/make_oracle_landmarks.py ../shared/data tests/fixtures/oracle_landmarks.npz

The FERPlus images are the first 200 Test images (sorted by name, fer0033120.png excluded),
upscaled with ``mien_fixture_image`` below; the test rebuilds the same pixels from ../shared.
"""
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle_inputs import demo_images, ferplus_images  # noqa: E402


def main(data_dir: str, out: str) -> None:
    import mediapipe as mp

    names, points, counts, shapes = [], [], [], []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=10, min_detection_confidence=0.5) as mesh:
        for name, rgb in list(demo_images(Path(data_dir))) + list(ferplus_images(Path(data_dir))):
            result = mesh.process(rgb)
            faces = result.multi_face_landmarks or []
            h, w = rgb.shape[:2]
            for face in faces:
                pts = np.array([[p.x * w, p.y * h, p.z * w] for p in face.landmark], np.float32)
                points.append(pts)
            names.append(name)
            counts.append(len(faces))
            shapes.append((h, w))
    np.savez_compressed(out, names=np.array(names), counts=np.array(counts), shapes=np.array(shapes),
                        points=np.array(points, np.float32).reshape(-1, 468, 3))
    print(f"{len(names)} images, {sum(counts)} faces -> {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
