"""The small-image search (``mien.small_faces``): the faces it finds and the non-faces it lets through.

    python benchmarks/small_face_search.py [--patches 1150]

1. FERPlus Valid (48x48 crops, the split the search was chosen on): through ``Analyzer()`` as
   ``mien analyze`` runs it, how many images the detectors place no accepted face in (the search
   runs), how many of those the search finds a face in (told apart by the quality check
   ``not_detected``), and how often the largest perceived share names the crowd majority on the
   faces it found, against the faces the detectors found.
2. Non-faces: square patches (32-150 px, half of them made grey) cut at random (seed 0) from the
   demo stills and from every 30th frame of the demo videos, at least 30 px away from every face
   mien finds in the whole picture; how many of them mien reports a face in, and how many of those
   it calls reliable. A patch may still hold part of an undetected person (hair, a shoulder).
3. A harder non-face set: 64, 96 and 134 px patches on a 24 px grid over the astronaut photo, away
   from her face (the orange suit, its mission patch, the flag, the space-shuttle model).
4. Cost, one thread: median time of ``Analyzer().analyze`` on a flat grey 48x48 image (no face: the
   search runs) and on a flat grey 160x160 one (too large for the search).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
import ferplus as FP  # noqa: E402
from detector_rule import video_frames  # noqa: E402
from one_core import pin_to_one_core  # noqa: E402
from mien.analyzer import Analyzer  # noqa: E402
from mien.images import read_image  # noqa: E402
from mien.quality import NOT_DETECTED  # noqa: E402
from perceived_crossval import largest  # noqa: E402

DEMO = FP.DATA / "demo"
FRAME_EVERY = 30
MARGIN_PX = 30


def found_by(faces) -> str | None:
    """How a small image's face was found: "search" (quality check ``not_detected``), "detectors", or None (no
    face). In an image under 160 px the search runs exactly when the detectors placed no face."""
    if not len(faces.scores):
        return None
    return "search" if NOT_DETECTED in faces.quality.reasons[0].split(";") else "detectors"


def ferplus_valid(analyzer: Analyzer) -> dict:
    names, votes = FP.read_votes("Valid")
    labels = FP.majority_labels(votes)
    searched = found_by_search = 0
    right = {"detectors": [0, 0], "search": [0, 0]}  # right, labelled
    for grey, label in zip(FP.read_images("Valid", names), labels):
        faces = analyzer.analyze(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB))
        how = found_by(faces)
        searched += how != "detectors"
        found_by_search += how == "search"
        if how is not None and label >= 0:
            tally = right[how]
            tally[0] += int(np.argmax(faces.perceived.probabilities[largest(faces.boxes)]) == label)
            tally[1] += 1
    return dict(images=len(names), searched=searched, found_by_search=found_by_search, right=right)


def pictures():
    for path in sorted(DEMO.glob("*/*")):
        if path.suffix in (".png", ".jpg"):
            yield read_image(path)
        elif path.suffix == ".mp4":
            yield from (rgb for _, rgb in video_frames(path, FRAME_EVERY))


def away_from_faces(x: int, y: int, side: int, boxes: np.ndarray) -> bool:
    return all(x + side < b[0] - MARGIN_PX or x > b[2] + MARGIN_PX or y + side < b[1] - MARGIN_PX or y > b[3] + MARGIN_PX
               for b in boxes)


def non_faces(analyzer: Analyzer, count: int) -> dict:
    rng = np.random.default_rng(0)
    pics = list(pictures())
    per_picture = -(-count // len(pics))
    patches = searched = faces_reported = by_search = reliable = 0
    reported = []
    for picture in pics:
        boxes = analyzer.analyze(picture).boxes
        taken = 0
        for _ in range(20 * per_picture):
            if taken == per_picture or patches == count:
                break
            side = int(rng.integers(32, min(150, min(picture.shape[:2]) - 1)))
            x = int(rng.integers(0, picture.shape[1] - side))
            y = int(rng.integers(0, picture.shape[0] - side))
            if not away_from_faces(x, y, side, boxes):
                continue
            patch = np.ascontiguousarray(picture[y:y + side, x:x + side])
            if rng.random() < 0.5:
                patch = cv2.cvtColor(cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            taken += 1
            patches += 1
            faces = analyzer.analyze(patch)
            how = found_by(faces)
            searched += how != "detectors"
            if how is not None:
                faces_reported += 1
                by_search += how == "search"
                reliable += bool(faces.quality.reliable.any())
                reported.append((float(faces.scores.max()), float(faces.presence.max())))
    return dict(pictures=len(pics), patches=patches, searched=searched, faces_reported=faces_reported, by_search=by_search,
                reliable=reliable, reported=reported)


def astronaut_suit(analyzer: Analyzer) -> dict:
    photo = read_image(ROOT / "src" / "mien" / "data" / "astronaut.png")
    face = analyzer.analyze(photo).boxes[0]
    patches = by_search = 0
    for side in (64, 96, 134):
        for y in range(0, photo.shape[0] - side, 24):
            for x in range(0, photo.shape[1] - side, 24):
                if not away_from_faces(x, y, side, face[None]):
                    continue
                patches += 1
                by_search += found_by(analyzer.analyze(np.ascontiguousarray(photo[y:y + side, x:x + side]))) == "search"
    return dict(patches=patches, by_search=by_search)


def median_ms(analyzer: Analyzer, image: np.ndarray, runs: int = 15) -> float:
    times = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        analyzer.analyze(image)
        times.append(time.perf_counter() - start)
    return float(np.median(times[2:]) * 1e3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=1150, help="non-face patches to cut")
    args = parser.parse_args()
    pin_to_one_core()
    analyzer = Analyzer()
    v = ferplus_valid(analyzer)
    (d_right, d_n), (s_right, s_n) = v["right"]["detectors"], v["right"]["search"]
    print(f"FERPlus Valid, {v['images']} 48x48 crops: the detectors placed no accepted face in {v['searched']}; "
          f"the search found a face in {v['found_by_search']} of them")
    print(f"  largest perceived share = crowd majority: {s_right} of {s_n} faces found by the search ({s_right / max(s_n, 1):.1%}), "
          f"{d_right} of {d_n} found by the detectors ({d_right / d_n:.1%})")
    n = non_faces(analyzer, args.patches)
    print(f"Non-face patches: {n['patches']} from {n['pictures']} demo pictures; the search ran on {n['searched']}; "
          f"a face was reported in {n['faces_reported']} ({n['faces_reported'] / n['patches']:.2%}; {n['by_search']} found by "
          f"the search), {n['reliable']} of them reliable")
    print("  their detector score and landmark presence: " + ", ".join(f"{s:.2f}/{p:.2f}" for s, p in n["reported"]))
    suit = astronaut_suit(analyzer)
    print(f"Astronaut photo away from her face: {suit['patches']} patches; the search reported a face in {suit['by_search']}")
    print(f"Cost: a flat grey 48x48 image {median_ms(analyzer, np.full((48, 48, 3), 128, np.uint8)):.1f} ms (the search runs), "
          f"160x160 {median_ms(analyzer, np.full((160, 160, 3), 128, np.uint8)):.1f} ms (no search); median of 15, one thread")


if __name__ == "__main__":
    main()
