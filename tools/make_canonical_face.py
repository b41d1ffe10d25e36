"""Vendor MediaPipe's canonical face in landmark order: src/mien/data/canonical_face.npz.

The copy in ../shared/data/reference/canonical_face_model.obj was re-exported by Apple ModelIO:
its vertices are renumbered (obj vertex k is not landmark k), some triangle diagonals are
flipped, and the whole face is turned about 12 degrees. This script recovers the landmark
order and a frontal frame:

Output: ``points`` (468, 3) cm, ``mirror`` (468,), ``procrustes_weights`` (468,), ``triangles``
(898, 3) in landmark indices, ``obj_vertex_of_landmark`` (468,).

1. A landmark-order reference shape: the mean mesh that mien's own landmark model gives on
   FERPlus Train faces the crowd calls neutral (>= 9 of 10 votes), similarity-aligned.
2. Match obj vertices to landmarks: affine fit + Hungarian assignment, iterated. Check: the
   matched canonical face is mirror-symmetric under the landmarks' left/right permutation
   (derived from the landmark model on mirrored photos) to about 1e-5 cm, which a wrong
   matching would not be.
3. Frontal frame: the smallest rotation that takes the mirror plane's normal onto +x (towards
   landmark 263, the subject's left eye), then centre the mirror plane on x = 0.
   Axes of the result: x to the subject's left (image right), y up, z out of the face.

    python tools/make_canonical_face.py ../shared/data
"""
import csv
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))
from mien.detect import FaceDetector  # noqa: E402
from mien.landmarks import FaceMesher, roi_from_detections  # noqa: E402
from oracle_inputs import upscale_with_border  # noqa: E402


def read_obj(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()[1:4]] for line in path.read_text().splitlines() if line.startswith("v ")])


def read_triangles(path: Path) -> np.ndarray:
    return np.array([[int(v.split("/")[0]) - 1 for v in line.split()[1:4]] for line in path.read_text().splitlines() if line.startswith("f ")])


def read_weights(path: Path) -> dict[int, float]:
    weights = {}
    for line in path.read_text().splitlines():
        if line.startswith("procrustes_landmark_basis"):
            parts = line.replace("{", " ").replace("}", " ").split()
            weights[int(parts[parts.index("landmark_id:") + 1])] = float(parts[parts.index("weight:") + 1])
    return weights


def normalise(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(0)
    return centred / np.sqrt((centred**2).sum(1).mean())


def rotation_onto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vector a onto unit vector b."""
    v = np.cross(a, b)
    c = float(a @ b)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)


def meshes_of(images, detector, mesher):
    out = []
    for rgb in images:
        det = detector(rgb, max_faces=1)
        if len(det):
            mesh = mesher(rgb, roi_from_detections(det))
            if mesh.presence[0] > 0.9:
                out.append(mesh.points[0].astype(np.float64))
    return out


def neutral_mean_shape(data: Path, detector, mesher) -> np.ndarray:
    folder = data / "ferplus/data/FER2013Train"
    rows = list(csv.reader(open(folder / "label.csv")))
    names = [r[0] for r in rows if int(r[2]) >= 9][:400]
    meshes = meshes_of((upscale_with_border(cv2.imread(str(folder / n), cv2.IMREAD_GRAYSCALE)) for n in names), detector, mesher)
    shapes = [normalise(m * np.array([1, -1, -1])) for m in meshes]
    ref = shapes[0]
    for _ in range(3):
        aligned = []
        for s in shapes:
            u, _, wt = np.linalg.svd(s.T @ ref)
            d = np.diag([1, 1, np.sign(np.linalg.det(u @ wt))])
            aligned.append(s @ (u @ d @ wt))
        ref = normalise(np.mean(aligned, 0))
    return ref


def mirror_permutation(data: Path, detector, mesher) -> np.ndarray:
    """Landmark i of a face is landmark sigma[i] of its mirror image."""
    rgb = cv2.cvtColor(cv2.imread(str(data / "demo/skimage/astronaut.png")), cv2.COLOR_BGR2RGB)
    (a,), (b,) = meshes_of([rgb], detector, mesher), meshes_of([rgb[:, ::-1].copy()], detector, mesher)
    b[:, 0] = rgb.shape[1] - b[:, 0]
    _, sigma = linear_sum_assignment(((a[:, None, :2] - b[None, :, :2]) ** 2).sum(-1))
    assert (sigma[sigma] == np.arange(468)).all(), "mirror permutation is not an involution"
    return sigma


def main(data: Path) -> None:
    detector, mesher = FaceDetector("short"), FaceMesher()
    obj = read_obj(data / "reference/canonical_face_model.obj")
    target = normalise(obj)
    shape = neutral_mean_shape(data, detector, mesher)
    homog = np.hstack([shape, np.ones((468, 1))])
    perm = None
    for _ in range(20):
        fitted = shape if perm is None else homog @ np.linalg.lstsq(homog, target[perm], rcond=None)[0]
        _, perm = linear_sum_assignment(((fitted[:, None] - target[None]) ** 2).sum(-1))
    canonical = obj[perm]
    sigma = mirror_permutation(data, detector, mesher)

    centred = canonical - canonical.mean(0)
    u, _, wt = np.linalg.svd(centred.T @ centred[sigma])
    reflection = (u @ wt).T
    residual = np.sqrt(((centred @ reflection.T - centred[sigma]) ** 2).sum(1).mean())
    assert residual < 1e-3, f"matched canonical face is not mirror-symmetric (rms {residual:.4f} cm)"
    values, vectors = np.linalg.eig(reflection)
    normal = np.real(vectors[:, np.argmin(np.real(values))])
    if (canonical[263] - canonical[33]) @ normal < 0:
        normal = -normal
    frontal = centred @ rotation_onto(normal, np.array([1.0, 0.0, 0.0])).T
    frontal[:, 0] -= (frontal[:, 0] + frontal[sigma, 0]).mean() / 2
    frontal -= np.array([0.0, frontal[:, 1].mean(), frontal[:, 2].mean()])

    weights = np.zeros(468)
    for idx, w in read_weights(data / "reference/geometry_pipeline_metadata_landmarks.pbtxt").items():
        weights[idx] = w
    out = ROOT / "src/mien/data/canonical_face.npz"
    np.savez(out, points=frontal.astype(np.float32), mirror=sigma.astype(np.int16),
             procrustes_weights=weights.astype(np.float32), obj_vertex_of_landmark=perm.astype(np.int16),
             triangles=np.argsort(perm)[read_triangles(data / "reference/canonical_face_model.obj")].astype(np.int16))
    print(f"mirror rms {residual:.2e} cm; mirror-plane normal in the obj {np.round(normal, 3)}; -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
