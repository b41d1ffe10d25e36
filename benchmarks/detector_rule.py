"""The ``auto`` detector's rule (full range only where short range cannot see) against ``both``.

    python benchmarks/detector_rule.py [--ferplus-every 10] [--frame-every 5]

1. How small a face the short-range model finds: the demo faces (skimage astronaut, frames of
   new_face_video-90.mp4) shrunk step by step on a 640x640 grey canvas; the narrowest face it
   found, as a share of the canvas side (``FULL_RANGE_BELOW`` is set from this).
2. Whether ``auto`` finds the faces ``both`` finds, through the whole image pipeline (small images
   enlarged as mien does): the demo stills, every n-th frame of both demo videos and every n-th
   FERPlus Valid image. Faces match when their boxes overlap with IoU > 0.5. Also counts on how
   many images ``auto`` skipped the full-range model.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mien.analyzer import Analyzer, Options  # noqa: E402
from mien.detect import DetectorRange, FaceDetector, box_iou, needs_full_range  # noqa: E402
from mien.images import read_image  # noqa: E402
from mien.small_faces import enlarge_small_image  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data"
DEMO_VIDEOS = ("video_01.mp4", "new_face_video-90.mp4")


def video_frames(path: Path, every: int):
    cap = cv2.VideoCapture(str(path))
    index = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            return
        if index % every == 0:
            yield f"{path.name}#{index}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        index += 1


def narrowest_short_range_face(detector: FaceDetector, rgb: np.ndarray, canvas: int = 640) -> float:
    """The narrowest face (share of the canvas side) the short range finds as ``rgb`` shrinks on a grey canvas."""
    narrowest = np.inf
    for k in np.arange(1.0, 0.1, -0.025):
        small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)[:canvas, :canvas]
        square = np.full((canvas, canvas, 3), 90, np.uint8)
        square[:small.shape[0], :small.shape[1]] = small
        found = detector(square, only=DetectorRange.SHORT)
        if len(found):
            narrowest = min(narrowest, float((found.boxes[:, 2] - found.boxes[:, 0]).min()) / canvas)
    return narrowest


def images(ferplus_every: int, frame_every: int):
    for path in sorted((DATA / "demo").glob("*/*")):
        if path.suffix in (".png", ".jpg"):
            yield "demo stills", path.name, read_image(path)
    for name in DEMO_VIDEOS:
        for label, rgb in video_frames(DATA / "demo/openmpf" / name, frame_every):
            yield f"{name} frames", label, rgb
    for path in sorted((DATA / "ferplus/data/FER2013Valid").glob("*.png"))[::ferplus_every]:
        yield "FERPlus Valid", path.name, read_image(path)


def same_faces(a, b) -> bool:
    if len(a) != len(b):
        return False
    return all(box_iou(box, b.boxes).max() > 0.5 for box in a.boxes) if len(a) else True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ferplus-every", type=int, default=10)
    parser.add_argument("--frame-every", type=int, default=5)
    args = parser.parse_args()
    detector = FaceDetector(DetectorRange.AUTO)
    sources = {"astronaut": read_image(resources.files("mien") / "data" / "astronaut.png")}
    for label, rgb in video_frames(DATA / "demo/openmpf/new_face_video-90.mp4", 100):
        if len(detector(rgb, only=DetectorRange.SHORT)):
            sources[label] = rgb
    limits = {name: narrowest_short_range_face(detector, rgb) for name, rgb in sources.items()}
    print("narrowest face the short-range model finds, share of the longer side: "
          + ", ".join(f"{name} {v:.3f}" for name, v in limits.items()) + f"; median {np.median(list(limits.values())):.3f}")

    measure = dict(iris=False, action_units=False, perceived=False)
    auto, both = Analyzer(Options(detector="auto", **measure)), Analyzer(Options(detector="both", **measure))
    counts: dict[str, list[int]] = {}
    for group, label, rgb in images(args.ferplus_every, args.frame_every):
        a, b = auto.analyze(rgb), both.analyze(rgb)
        seen = enlarge_small_image(rgb)[0]
        skipped = not needs_full_range(detector(seen, only=DetectorRange.SHORT).boxes, max(seen.shape[:2]))
        same = same_faces(a, b)
        row = counts.setdefault(group, [0, 0, 0, 0, 0])
        row[0] += 1
        row[1] += same
        row[2] += skipped
        row[3] += len(a)
        row[4] += len(b)
        if not same:
            print(f"  differs: {group} {label}: auto {len(a)} faces, both {len(b)}")
    print("auto against both (same faces: same count, every box matched at IoU > 0.5):")
    for group, (n, same, skipped, faces_auto, faces_both) in counts.items():
        print(f"  {group}: {n} images, same faces on {same}, full range skipped on {skipped}; "
              f"faces found: auto {faces_auto}, both {faces_both}")


if __name__ == "__main__":
    main()
