"""Population neutral face and action-unit occurrence thresholds: src/mien/data/neutral_face.npz.

1. Neutral mesh: FERPlus Train faces with >= 8 of 10 crowd votes for "neutral" (label.csv),
   48x48 → ``upscale_with_border`` → ``Analyzer(Options(detector="short", iris=False))``;
   faces with |yaw| or |pitch| > 25° are left out. Each mesh is pose-removed
   (``to_canonical_frame``); the neutral is the per-coordinate median, made mirror-symmetric
   (averaged with its mirror image).
2. Thresholds: on FERPlus Valid faces whose crowd majority is neutral (FERPlus protocol; held out
   from step 1; every pose, as faces come), the ``PERCENTILE``-th percentile of each unit's change from that neutral, taking
   the larger of left and right, so that both sides share one threshold and about
   100 - ``PERCENTILE`` % of those faces show the unit on either side. Test is not used.

    python tools/make_neutral_face.py          # needs ../shared/data; caches meshes in cache/
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "src"))
import ferplus_meshes as fm  # noqa: E402
from mien import actions  # noqa: E402
from mien.geometry import canonical_face, head_pose, to_canonical_frame  # noqa: E402

MIN_NEUTRAL_VOTES = 8
MAX_ANGLE = 25.0
PERCENTILE = 97.0
OUT = ROOT / "src" / "mien" / "data" / "neutral_face.npz"


def canonical_meshes(points: np.ndarray, max_angle: float | None = MAX_ANGLE) -> np.ndarray:
    """Pose-removed meshes of the faces found among ``points`` (NaN = no face), those turned more
    than ``max_angle`` degrees in yaw or pitch left out (None: all)."""
    points = points[np.isfinite(points).all(axis=(1, 2))].astype(np.float64)
    pose = head_pose(points)
    limit = np.inf if max_angle is None else max_angle
    keep = (np.abs(pose.yaw) <= limit) & (np.abs(pose.pitch) <= limit)
    canon = to_canonical_frame(points, pose)
    return canon[keep]


def symmetrise(mesh: np.ndarray) -> np.ndarray:
    mirror = canonical_face().mirror
    flipped = mesh[mirror] * np.array([-1.0, 1.0, 1.0])
    return 0.5 * (mesh + flipped)


def either_side_thresholds(change: np.ndarray, percentile: float) -> np.ndarray:
    """Per unit, the percentile of the larger side's change: one threshold shared by both sides."""
    units = actions.action_units()
    thresholds = np.empty(len(units))
    for k, u in enumerate(units):
        same = [j for j, v in enumerate(units) if v.number == u.number]
        thresholds[k] = np.nanpercentile(change[:, same].max(1), percentile)
    return np.maximum(thresholds, 1e-4)


def main() -> None:
    names = fm.neutral_train_names(MIN_NEUTRAL_VOTES)
    train = canonical_meshes(fm.meshes("Train", names))
    neutral = symmetrise(np.median(train, axis=0))

    vnames, votes = fm.read_votes("Valid")
    vpoints = fm.meshes("Valid", vnames)
    valid = canonical_meshes(vpoints[fm.majority_labels(votes) == 0], max_angle=None)
    change = actions.measures(valid) - actions.measures(neutral)[0]
    thresholds = either_side_thresholds(change, PERCENTILE)

    source = (f"FERPlus label.csv: neutral mesh = symmetrised median of {len(train)} Train faces "
              f"(>= {MIN_NEUTRAL_VOTES}/10 neutral votes, |yaw|,|pitch| <= {MAX_ANGLE:g}); thresholds = "
              f"{PERCENTILE:g}th percentile of the larger side's change on {len(valid)} Valid faces whose crowd "
              "majority is neutral (any pose)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, mesh=neutral.astype(np.float32), thresholds=thresholds.astype(np.float64),
                        percentile=np.float64(PERCENTILE), columns=np.array(actions.columns()),
                        source=np.array(source), n_train=np.int64(len(train)), n_valid=np.int64(len(valid)))
    print(source)
    print(json.dumps({c: round(float(t), 4) for c, t in zip(actions.columns(), thresholds)}, indent=1))


if __name__ == "__main__":
    main()
