"""The candidate definitions behind mien's action units, compared where the choice was made.

For each unit whose definition changed after commit f62f65f, the f62f65f definition, the one of
67370d2 where it changed again, the one of 056c501 where only the face-size unit changed since, the
shipped one (``mien.actions``) and the alternatives named in docs/action_units.md are scored on

- crossval CK+ (``tools/crossval_meshes.py``): AUC of the intensity (larger side; 0 at or below
  the population neutral) against the FACS coders' code, and
- FERPlus Valid (``tools/ferplus_meshes.py``): AUC of the same against the crowd class EMFACS links
  to the unit, and the share of crowd-happy faces where it is present, with a threshold at the
  97th percentile of the larger side's change on Valid crowd-neutral faces (the shipped rule).

FERPlus Test is not used. Meshes come from the caches the benchmark fills.

    python tools/action_unit_candidates.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import crossval_meshes as cm  # noqa: E402
import ferplus_meshes as fm  # noqa: E402
from action_units import CLASSES, auc_with_ci  # noqa: E402
from mien import actions  # noqa: E402
from mien.geometry import canonical_face, head_pose, to_canonical_frame  # noqa: E402
from mien.mesh import interocular_distance  # noqa: E402

X, Y = 0, 1


def height(m, ids):
    return m[:, list(ids), Y].mean(1)


def outwards(m, ids):  # on the subject's right side (x < 0), away from the midline
    return -m[:, list(ids), X].mean(1)


def opposite(m):
    """The mesh seen from the other side: the subject's left side at the right side's landmark numbers."""
    return m[:, canonical_face().mirror] * [-1, 1, 1]


_UPPER_LID, _LOWER_LID = (159, 158, 160), (145, 144, 153)
_CHEEK, _CHIN, _LOWER_LIP = (118, 100, 101, 50, 36), (152, 175, 199), (17, 84, 314)


def _au12(m):
    return 2 * height(m, (61,)) - 2 / 3 * height(m, (2,)) - 1 / 3 * height(m, (152,)) - height(m, (0, 17))


_BROW_LOWERING = (105, 66, 107, 52, 65, 55)


def _inner_brow(m):
    return height(m, (107, 66, 55, 65)) - height(m, (168,))


def _outer_brow(m):
    return height(m, (70, 63, 46, 53)) - height(m, (168,))


def _eye_opening(m):
    return height(m, _UPPER_LID) - height(m, _LOWER_LID)


def _brow_lowering(m):
    return -height(m, _BROW_LOWERING) + height(m, (133,))


def _au15_below(reference):
    return lambda m: height(m, reference) - height(m, (61,)) + 0.5 * (outwards(m, (61,)) - outwards(m, (2,)))


# The definitions of 056c501, all divided by the IOD then, for every unit whose face-size unit or
# landmarks changed since (the shipped rows come from mien.actions)
SINCE_056C501 = (
    (1, ("surprise",), _inner_brow),
    (2, ("surprise",), _outer_brow),
    (4, ("anger", "disgust"), lambda m: _brow_lowering(m) - outwards(m, (107, 55)) + outwards(m, (168,))),
    (5, ("surprise",), _eye_opening),
    (6, ("happiness",), lambda m: height(m, _CHEEK) - height(m, (33, 133))),
    (7, ("anger",), lambda m: height(m, _LOWER_LID) - height(m, (33,))),
    (9, ("anger", "disgust"), lambda m: height(m, (98, 64, 327, 294)) - height(m, (168,))),
    (10, ("disgust",), lambda m: height(m, (0, 37, 39, 267, 269)) - height(m, (2,))),
    (12, ("happiness",), _au12),
    (14, ("happiness",), lambda m: height(m, (91, 181)) - height(m, (40, 39))),
    (15, ("sadness",), _au15_below((17,))),
    (24, ("anger",), lambda m: height(m, _LOWER_LIP) - height(m, (0, 37, 267))),
    (25, ("surprise",), lambda m: height(m, (13, 82, 312)) - height(m, (14, 87, 317))),
    (26, ("surprise",), lambda m: height(m, (2,)) - height(m, _CHIN)),
)

# (unit, crowd classes on Valid, label, measure of the subject's RIGHT side (or whole face) in cm,
#  face-size unit: "iod" (divided by the inter-ocular distance), "cm" (canonical centimetres) or
#  "upper" (a share of the upper face's height, top of the forehead 10 to nose base 2))
CANDIDATES = tuple((n, c, "056c501", f, "iod") for n, c, f in SINCE_056C501) + (
    (1, ("surprise",), "056c501 in canonical centimetres", _inner_brow, "cm"),
    (2, ("surprise",), "056c501 in canonical centimetres", _outer_brow, "cm"),
    (4, ("anger", "disgust"), "056c501 in canonical centimetres", SINCE_056C501[2][2], "cm"),
    (4, ("anger", "disgust"), "056c501 as a share of the upper face's height", SINCE_056C501[2][2], "upper"),
    (4, ("anger", "disgust"), "brow lowering only, divided by the IOD", _brow_lowering, "iod"),
    (4, ("anger", "disgust"), "brow lowering only, in canonical centimetres", _brow_lowering, "cm"),
    (5, ("surprise",), "056c501 in canonical centimetres", _eye_opening, "cm"),
    (5, ("surprise",), "eye's opening as a share of the nose's length (6 to 2)",
     lambda m: _eye_opening(m) * iod(m) / (height(m, (6,)) - height(m, (2,))), "iod"),
    (5, ("surprise",), "upper lid above the nose bridge (6) plus half the eye's opening",
     lambda m: height(m, _UPPER_LID) - height(m, (6,)) + 0.5 * _eye_opening(m), "cm"),
    (6, ("happiness",), "shipped as a share of the upper face's height",
     lambda m: height(m, _CHEEK) - height(m, (33, 133)), "upper"),
    (7, ("anger",), "056c501 (middle of the lower lid) in canonical centimetres",
     lambda m: height(m, _LOWER_LID) - height(m, (33,)), "cm"),
    (7, ("anger",), "the whole lower lid (7, 163, 144, 145, 153, 154, 155) above the outer corner",
     lambda m: height(m, (7, 163, 144, 145, 153, 154, 155)) - height(m, (33,)), "cm"),
    (7, ("anger",), "middle of the lower lid above the nasion (168)",
     lambda m: height(m, _LOWER_LID) - height(m, (168,)), "cm"),
    (7, ("anger",), "shipped as a share of the upper face's height",
     lambda m: height(m, (153, 154, 155)) - height(m, (33,)), "upper"),
    (9, ("anger", "disgust"), "nose base (2) above the nasion (168)",
     lambda m: height(m, (2,)) - height(m, (168,)), "cm"),
    (10, ("disgust",), "upper lip above nose base plus a quarter of the corner's lateral pull",
     lambda m: height(m, (0, 37, 39)) - height(m, (2,)) + 0.25 * outwards(m, (61,)), "cm"),
    (14, ("happiness",), "lips thinning beside the corner plus the corner's rise above the other corner",
     lambda m: height(m, (91, 181)) - height(m, (40, 39)) + height(m, (61,)) - height(opposite(m), (61,)), "cm"),
    (14, ("happiness",), "corner's rise above the other corner (one-sided pull)",
     lambda m: height(m, (61,)) - height(opposite(m), (61,)), "cm"),
    (15, ("sadness",), "corner below the inner edge of the lower lip beside the middle (87)", _au15_below((87,)), "iod"),
    (15, ("sadness",), "corner below the inner edge of the lower lip halfway out (178)", _au15_below((178,)), "iod"),
    (15, ("sadness",), "corner below the outer edge of the lower lip halfway out (181)", _au15_below((181,)), "iod"),
    (15, ("sadness",), "shipped in canonical centimetres", _au15_below((14,)), "cm"),
    (17, ("sadness",), "lower lip's rise towards nose base, in canonical centimetres instead of a share",
     lambda m: height(m, _LOWER_LIP) - height(m, (2,)), "cm"),
    (20, ("fear",), "shipped in canonical centimetres",
     lambda m: outwards(m, (61,)) - outwards(m, (2,)) - height(m, (61,)) + 2 / 3 * height(m, (2,))
     + 1 / 3 * height(m, (152,)), "cm"),
    (23, ("anger",), "shipped in canonical centimetres",
     lambda m: height(m, (17,)) - height(m, (0,)) + 0.25 * (m[:, 61, X] - m[:, 291, X]), "cm"),
    (26, ("surprise",), "nose base down to halfway between the lower lip and the chin",
     lambda m: height(m, (2,)) - 0.5 * height(m, _LOWER_LIP) - 0.5 * height(m, _CHIN), "cm"),
    (26, ("surprise",), "nose base down to the chin divided by the face's width (234 to 454)",
     lambda m: (height(m, (2,)) - height(m, _CHIN)) * iod(m) / (m[:, 454, X] - m[:, 234, X]), "iod"),
) + tuple(c + ("iod",) for c in (
    (1, ("surprise",), "f62f65f: inner brow above inner eye corner", lambda m: height(m, (107, 66, 55, 65)) - height(m, (133,))),
    (2, ("surprise",), "f62f65f: outer brow above outer eye corner", lambda m: height(m, (70, 63, 46, 53)) - height(m, (33,))),
    (5, ("surprise",), "f62f65f: upper lid above eye corners", lambda m: height(m, (159, 158, 160)) - height(m, (33, 133))),
    (6, ("happiness",), "f62f65f: cheek above nasal bridge", lambda m: height(m, (118, 100, 101, 50, 36)) - height(m, (6,))),
    (7, ("anger",), "f62f65f: lower lid against eye corners", lambda m: height(m, (145, 144, 153)) - height(m, (33, 133))),
    (7, ("anger",), "lower lid above the outer corner plus half the eye's narrowing",
     lambda m: height(m, (145, 144, 153)) - height(m, (33,))
     + 0.5 * (height(m, (145, 144, 153)) - height(m, (159, 158, 160)))),
    (10, ("disgust",), "lateral part of the upper lip (37, 39, 40) above nose base",
     lambda m: height(m, (37, 39, 40)) - height(m, (2,))),
    (12, ("happiness",), "f62f65f: corner above nose base", lambda m: height(m, (61,)) - height(m, (2,))),
    (12, ("happiness",), "67370d2: corner above nose base plus above the lips' midline",
     lambda m: 2 * height(m, (61,)) - height(m, (2,)) - height(m, (0, 17))),
    (12, ("happiness",), "67370d2 + half the corner's lateral pull",
     lambda m: 2 * height(m, (61,)) - height(m, (2,)) - height(m, (0, 17)) + 0.5 * outwards(m, (61,))),
    (12, ("happiness",), "67370d2 with the nose base followed by a quarter of the jaw's drop",
     lambda m: 2 * height(m, (61,)) - 0.75 * height(m, (2,)) - 0.25 * height(m, (152,)) - height(m, (0, 17))),
    (14, ("happiness",), "f62f65f: corner depth behind the lips' midline",
     lambda m: -m[:, 61, 2] + 0.5 * m[:, 0, 2] + 0.5 * m[:, 17, 2]),
    (14, ("happiness",), "lips thinning beside the corner plus half the corner's rise above the lips' midline",
     lambda m: height(m, (91, 181)) - height(m, (40, 39)) + 0.5 * (height(m, (61,)) - 0.5 * height(m, (0, 17)))),
    (15, ("sadness",), "f62f65f: corner below nose base", lambda m: height(m, (2,)) - height(m, (61,))),
    (15, ("sadness",), "67370d2: corner below the lower lip's middle", lambda m: height(m, (17,)) - height(m, (61,))),
    (15, ("sadness",), "67370d2 + a quarter of the corner's lateral pull",
     lambda m: height(m, (17,)) - height(m, (61,)) + 0.25 * (outwards(m, (61,)) - outwards(m, (2,)))),
    (15, ("sadness",), "67370d2 + all of the corner's lateral pull",
     lambda m: height(m, (17,)) - height(m, (61,)) + outwards(m, (61,)) - outwards(m, (2,))),
    (15, ("sadness",), "corner below the point a third of the way from nose base to chin",
     lambda m: 2 / 3 * height(m, (2,)) + 1 / 3 * height(m, (152,)) - height(m, (61,))),
    (17, ("sadness",), "f62f65f: chin rise towards nose base", lambda m: height(m, (152, 175, 199)) - height(m, (2,))),
    (26, ("surprise",), "lower lip's edge (17, 84, 314) below nose base",
     lambda m: height(m, (2,)) - height(m, (17, 84, 314))),
    (20, ("fear",), "f62f65f: corner's lateral distance", lambda m: outwards(m, (61,)) - outwards(m, (2,))),
    (20, ("fear",), "67370d2: lateral distance minus height above nose base",
     lambda m: outwards(m, (61,)) - outwards(m, (2,)) - height(m, (61,)) + height(m, (2,))),
    (23, ("anger",), "f62f65f: mouth narrowing", lambda m: m[:, 61, X] - m[:, 291, X]),
    (24, ("anger",), "f62f65f: red of the lips thinning",
     lambda m: -(height(m, (0, 37, 267)) - height(m, (13, 82, 312)) + height(m, (14, 87, 317)) - height(m, (17, 84, 314)))),
))


def canonical(points: np.ndarray) -> np.ndarray:
    points = points[np.isfinite(points).all(axis=(1, 2))].astype(np.float64)
    return to_canonical_frame(points, head_pose(points))


def iod(m: np.ndarray) -> np.ndarray:
    return interocular_distance(m, dims=3)


def upper_face(m: np.ndarray) -> np.ndarray:
    return height(m, (10,)) - height(m, (2,))


def sides(measure, meshes: np.ndarray, size: str = "iod") -> np.ndarray:
    """(N, 2) change from the population neutral, right side and (mirrored) left side, divided by the
    IOD (``size="iod"``), in canonical centimetres (``"cm"``) or as a share of the upper face's height
    (``"upper"``)."""
    neutral = actions.population_neutral().mesh[None].astype(np.float64)
    unit = {"iod": iod, "cm": lambda m: 1.0, "upper": upper_face}[size]
    out = []
    for m, n in ((meshes, neutral), (opposite(meshes), opposite(neutral))):
        out.append(measure(m) / unit(m) - measure(n) / unit(n))
    return np.stack(out, 1)


def shipped(number: int):
    cols = [k for k, u in enumerate(actions.action_units()) if u.number == number]
    ref = actions.population_neutral()
    return lambda meshes: actions.measures(meshes)[:, cols] - ref.raw[cols]


def main() -> None:
    names, _, codes = cm.read_codes()
    ck_points = cm.meshes(names)
    ck_found = np.isfinite(ck_points).all(axis=(1, 2))
    ck = canonical(ck_points)
    vnames, votes = fm.read_votes("Valid")
    v_points = fm.meshes("Valid", vnames)
    v_found = np.isfinite(v_points).all(axis=(1, 2))
    valid, labels = canonical(v_points), fm.majority_labels(votes[v_found])
    kept = labels >= 0
    linked = {n: classes for n, classes, _, _, _ in CANDIDATES}
    definitions = {u.number: u.definition for u in actions.action_units()}
    rows = [(n, linked[n], "shipped: " + definitions[n], None, None) for n in sorted(linked)] + list(CANDIDATES)
    history = ("f62f65f", "67370d2", "056c501")
    rows.sort(key=lambda r: (r[0], [not r[2].startswith(h) for h in history], r[2]))
    for n, classes, label, f, size in rows:
        ck_change, v_change = ((shipped(n)(ck), shipped(n)(valid)) if f is None
                               else (sides(f, ck, size), sides(f, valid, size)))
        ck_auc = auc_with_ci(np.maximum(ck_change.max(1), 0), codes[n][ck_found])[0]
        larger = v_change.max(1)
        positive = np.isin(labels[kept], [CLASSES.index(c) for c in classes])
        v_auc = auc_with_ci(np.maximum(larger[kept], 0), positive)[0]
        happy = (larger[labels == 1] > np.percentile(larger[labels == 0], 97)).mean()
        print(f"AU{n:<3} CK+ {ck_auc:.3f}  Valid {'/'.join(classes)} {v_auc:.3f}  present on happy {happy:4.0%}  {label[:90]}")
    # How far the lip corners follow the jaw (AU12's and AU20's reference point): least-squares slope of
    # the corner's change in height below the nose base on the nose-to-chin lengthening, over Valid
    # faces whose crowd majority is surprise (mouths open without a smile)
    surprise = labels == CLASSES.index("surprise")
    corner = sides(lambda m: height(m, (61,)) - height(m, (2,)), valid[surprise]).mean(1)
    jaw = sides(lambda m: height(m, (2,)) - height(m, (152,)), valid[surprise]).mean(1)
    slope = np.polyfit(jaw, corner, 1)[0]
    print(f"lip corners follow {-slope:.3f} of the jaw's drop ({surprise.sum()} Valid crowd-surprise faces)")
    # AU15 mostly comes with AU17 in CK+: does the shipped AU15 separate within those faces?
    with17 = codes[17][ck_found]
    au15 = np.maximum(shipped(15)(ck).max(1), 0)
    print(f"AU15 within the {with17.sum()} CK+ faces coded AU17: AUC "
          f"{auc_with_ci(au15[with17], codes[15][ck_found][with17])[0]:.3f} ({codes[15][ck_found][with17].sum()} AU15)")
    # AU7: does a candidate follow the lids, or the brow lowerer (which pulls the nasion down) or the cheek
    # raiser (which pushes the lower lid up)? AUCs within the CK+ faces coded AU4 / AU6 and the others.
    with4, with6, au7_code = codes[4][ck_found], codes[6][ck_found], codes[7][ck_found]
    for label, lid, reference in (("middle of the lower lid above the outer corner (056c501)", _LOWER_LID, (33,)),
                                  ("inner half of the lower lid above the outer corner (shipped)", (153, 154, 155), (33,)),
                                  ("middle of the lower lid above the nasion", _LOWER_LID, (168,))):
        au7 = np.maximum(sides(lambda m: height(m, lid) - height(m, reference), ck, "cm").max(1), 0)
        within = [auc_with_ci(au7[g], au7_code[g])[0] for g in (with4, ~with4, with6, ~with6)]
        print(f"AU7 {label}: CK+ AUC against AU4 codes {auc_with_ci(au7, with4)[0]:.3f}; against AU7 within faces "
              f"coded AU4 {within[0]:.3f}, the others {within[1]:.3f}; within faces coded AU6 {within[2]:.3f}, "
              f"the others {within[3]:.3f}")

if __name__ == "__main__":
    main()
