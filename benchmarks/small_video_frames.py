"""Video mode on small frames: tracked enlarged as small images are (``mien.small_faces``).

    python benchmarks/small_video_frames.py [--valid 3579]

1. FERPlus Valid (48x48 crops): each crop as a one-frame video (``Analyzer(Options(mode=Mode.VIDEO))``)
   against the same crop as a still image (``Analyzer()``); faces the detectors placed (the still
   image's small-image search, which video mode does not run, left out).
2. ``new_face_video-90.mp4`` (640x480) shrunk to 96x72 and to 64x48, every frame, default video
   analysis: face-frames found (and how many are reliable), against the full-size video.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))
import ferplus as FP  # noqa: E402
from one_core import DEMO_VIDEO  # noqa: E402
from mien.analyzer import Analyzer, Mode, Options  # noqa: E402
from mien.quality import NOT_DETECTED  # noqa: E402
from mien.video import Frame  # noqa: E402
from mien.video.analysis import read_video  # noqa: E402


def placed_by_detectors(faces) -> bool:
    return any(NOT_DETECTED not in reasons.split(";") for reasons in faces.quality.reasons)


def ferplus_valid(count: int) -> tuple[int, int, int]:
    """Crops, faces placed as still images, faces found as one-frame videos."""
    names, _ = FP.read_votes("Valid")
    still, video = Analyzer(), Analyzer(Options(mode=Mode.VIDEO))
    as_still = as_video = 0
    for grey in FP.read_images("Valid", names[:count]):
        rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
        as_still += placed_by_detectors(still.analyze(rgb))
        video.reset()
        as_video += len(video.analyze_batch([Frame(0, 0.0, rgb)])[0].scores) > 0
    return min(count, len(names)), as_still, as_video


def face_frames(path: str, size: tuple[int, int] | None) -> tuple[int, int]:
    """Face rows of the default video analysis of ``path``, its frames shrunk to ``size`` (width, height),
    and how many of them are reliable."""
    analyzer = Analyzer(Options(mode=Mode.VIDEO))
    frames = [f if size is None else Frame(f.index, f.time_s, cv2.resize(f.rgb, size, interpolation=cv2.INTER_AREA))
              for f in read_video(path)]
    found = [faces for start in range(0, len(frames), 16) for faces in analyzer.analyze_batch(frames[start:start + 16])
             if len(faces.scores)]
    return sum(len(faces.scores) for faces in found), sum(int(faces.quality.reliable.sum()) for faces in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--valid", type=int, default=3579, help="how many FERPlus Valid crops")
    args = parser.parse_args()
    n, as_still, as_video = ferplus_valid(args.valid)
    print(f"FERPlus Valid, {n} 48x48 crops: faces placed by the detectors as still images {as_still}, "
          f"found as one-frame videos {as_video}")
    full, _ = face_frames(str(DEMO_VIDEO), None)
    for size in ((96, 72), (64, 48)):
        found, reliable = face_frames(str(DEMO_VIDEO), size)
        print(f"{DEMO_VIDEO.name} shrunk to {size[0]}x{size[1]}: {found} face-frames ({reliable} reliable), "
              f"against {full} at 640x480")


if __name__ == "__main__":
    main()
