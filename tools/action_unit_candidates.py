"""The candidate definitions behind mien's action units, compared where the choice was made.

For each unit whose definition changed after commit f62f65f, the f62f65f definition, the one of
67370d2 where it changed again, the one of 056c501 where only the face-size unit changed since, the
one of 6b7d039 for the units compared after it, the shipped one (``mien.actions``) and the
alternatives named in docs/action_units.md are scored on

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
from action_units import CLASSES, MIN_POSITIVES as MIN_CODED, auc_with_ci  # noqa: E402
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


# After 6b7d039 (the commit before AU9 and AU14 changed): every candidate compared, kept or rejected
Z = 2
_LIPS_BESIDE_CORNER = ((91, 181), (40, 39))  # lower and upper lip's edge next to the corner (AU14 of 6b7d039)
_UPPER_LIP = actions._UPPER_LIP


def _lips_thinning(m):
    return height(m, _LIPS_BESIDE_CORNER[0]) - height(m, _LIPS_BESIDE_CORNER[1])


def _depth_behind(m, reference):
    """How far the lip corner (61) lies behind ``reference`` (landmarks), in cm."""
    return m[:, list(reference), Z].mean(1) - m[:, 61, Z]


def _corner_rise_above_jaw_point(m):
    return height(m, (61,)) - 2 / 3 * height(m, (2,)) - 1 / 3 * height(m, (152,))


def _jaw(m):
    return height(m, (2,)) - height(m, _CHIN)


def _mouth_opening(m):
    return height(m, (13, 82, 312)) - height(m, (14, 87, 317))


def _mouth_width(m):
    return m[:, 291, X] - m[:, 61, X]


def _lower_face(m):
    return height(m, (2,)) - height(m, (152,))


def _lower_lip_rise(m):
    return height(m, _LOWER_LIP) - height(m, (2,))


def _lower_lip_forwards(m):
    return m[:, list(_LOWER_LIP), Z].mean(1) - m[:, 2, Z]


def _rise_share(ids):
    """Rise of ``ids`` towards the nose base as a share of the nose-to-chin height (scored with size "iod")."""
    return lambda m: (height(m, ids) - height(m, (2,))) / _lower_face(m) * iod(m)


_CHIN_BOSS = actions._CHIN_BOSS


_AD, _S = ("anger", "disgust"), ("surprise",)
SINCE_6B7D039 = tuple((n, c, label, f, size) for n, c, size, label, f in (
    (9, _AD, "cm", "6b7d039: nostril wings (98, 64, 327, 294) above the nasion",
     lambda m: height(m, (98, 64, 327, 294)) - height(m, (168,))),
    (9, _AD, "cm", "nostril wings and both nose-tip points (1, 4; 4 anchors the pose fit) above the nasion",
     lambda m: height(m, (98, 64, 327, 294, 1, 4)) - height(m, (168,))),
    (9, _AD, "cm", "nose tip (1) above the nasion", lambda m: height(m, (1,)) - height(m, (168,))),
    (9, _AD, "cm", "nostril wings above the nasion plus the nose tip (1) above the nasion",
     lambda m: height(m, (98, 64, 327, 294)) + height(m, (1,)) - 2 * height(m, (168,))),
    (9, _AD, "cm", "nostril wings above the inner eye corner (133)", lambda m: height(m, (98, 64, 327, 294)) - height(m, (133,))),
    (9, _AD, "cm", "nostril wings above the eye corners (33, 133)", lambda m: height(m, (98, 64, 327, 294)) - height(m, (33, 133))),
    (9, _AD, "cm", "nostril wings above the nose bridge (6)", lambda m: height(m, (98, 64, 327, 294)) - height(m, (6,))),
    (9, _AD, "cm", "nostril wings above the top of the forehead (10)", lambda m: height(m, (98, 64, 327, 294)) - height(m, (10,))),
    (9, _AD, "upper", "6b7d039 as a share of the upper face's height",
     lambda m: height(m, (98, 64, 327, 294)) - height(m, (168,))),
    (14, ("happiness",), "cm", "6b7d039: thinning of the lips beside the corner", _lips_thinning),
    (14, ("happiness",), "cm", "thinning plus the corner's depth behind the cheek further out (214)",
     lambda m: _lips_thinning(m) + _depth_behind(m, (214,))),
    (14, ("happiness",), "cm", "thinning plus the corner's depth behind the cheek (212, 214)",
     lambda m: _lips_thinning(m) + _depth_behind(m, (212, 214))),
    (14, ("happiness",), "cm", "thinning plus the corner's depth behind the skin just below it (57)",
     lambda m: _lips_thinning(m) + _depth_behind(m, (57,))),
    (14, ("happiness",), "cm", "thinning plus half the corner's depth behind the cheek beside it (212)",
     lambda m: _lips_thinning(m) + 0.5 * _depth_behind(m, (212,))),
    (14, ("happiness",), "cm", "the corner's depth behind the cheek beside it (212) alone",
     lambda m: _depth_behind(m, (212,))),
    (14, ("happiness",), "cm", "the corner's depth behind the nose base (2) alone", lambda m: _depth_behind(m, (2,))),
    (14, ("happiness",), "cm", "the corner's depth in the canonical frame alone", lambda m: -m[:, 61, Z]),
) + tuple((14, ("happiness",), "cm", f"thinning plus {w:g} of the corner's depth {where}",
           lambda m, w=w, ref=ref: _lips_thinning(m) + w * (_depth_behind(m, ref) if ref else -m[:, 61, Z]))
          for w in (0.25, 0.5, 1.0) for where, ref in (("in the canonical frame", None),
                                                        ("behind the lips' midline (0, 17)", (0, 17)),
                                                        ("behind the nose base (2)", (2,)))) + (
    (14, ("happiness",), "cm", "outer lips right at the corner (146 below 185)",
     lambda m: height(m, (146,)) - height(m, (185,))),
    (14, ("happiness",), "cm", "outer lips 146, 91, 181 below 185, 40, 39",
     lambda m: height(m, (146, 91, 181)) - height(m, (185, 40, 39))),
    (14, ("happiness",), "cm", "inner lips near the corner (95, 88 below 191, 80)",
     lambda m: height(m, (95, 88)) - height(m, (191, 80))),
    (14, ("happiness",), "cm", "thinning plus half the corner drawn in towards the midline",
     lambda m: _lips_thinning(m) - 0.5 * (outwards(m, (61,)) - outwards(m, (2,)))),
    (10, ("disgust",), "cm", "upper lip's centre (0) above the nose base", lambda m: height(m, (0,)) - height(m, (2,))),
    (10, ("disgust",), "cm", "upper lip's centre (0) above the top of the philtrum (164)",
     lambda m: height(m, (0,)) - height(m, (164,))),
    (10, ("disgust",), "cm", "lateral upper lip (37, 39) above the nostril wings (98, 64)",
     lambda m: height(m, (37, 39)) - height(m, (98, 64))),
    (10, ("disgust",), "cm", "upper lip above the nasion", lambda m: height(m, _UPPER_LIP) - height(m, (168,))),
    (10, ("disgust",), "cm", "upper lip above the eye corners", lambda m: height(m, _UPPER_LIP) - height(m, (33, 133))),
    (10, ("disgust",), "cm", "upper lip above the nose tip (1, 4)", lambda m: height(m, _UPPER_LIP) - height(m, (1, 4))),
    (10, ("disgust",), "cm", "upper lip's inner edge (13, 82, 312) above the nose base",
     lambda m: height(m, (13, 82, 312)) - height(m, (2,))),
    (10, ("disgust",), "cm", "lateral upper lip (37, 39, 40, 185) above its centre (0): the angular lip",
     lambda m: height(m, (37, 39, 40, 185)) - height(m, (0,))),
    (10, ("disgust",), "cm", "6b7d039 plus the corner's rise above the nose base",
     lambda m: height(m, _UPPER_LIP) + height(m, (61,)) - 2 * height(m, (2,))),
    (10, ("disgust",), "cm", "6b7d039 plus half the nostril wings' rise above the nasion",
     lambda m: height(m, _UPPER_LIP) - height(m, (2,)) + 0.5 * (height(m, (98, 64)) - height(m, (168,)))),
    (10, ("disgust",), "cm", "upper lip above the lip corners (61, 291)", lambda m: height(m, _UPPER_LIP) - height(m, (61, 291))),
    (10, ("disgust",), "cm", "upper lip's centre (0) above the lip corners", lambda m: height(m, (0,)) - height(m, (61, 291))),
    (10, ("disgust",), "cm", "6b7d039 minus the corner's rise above the jaw-following point (AU12's first part)",
     lambda m: height(m, _UPPER_LIP) - height(m, (2,)) - _corner_rise_above_jaw_point(m)),
    (10, ("disgust",), "cm", "6b7d039 minus half the corner's rise above the jaw-following point",
     lambda m: height(m, _UPPER_LIP) - height(m, (2,)) - 0.5 * _corner_rise_above_jaw_point(m)),
    (10, ("disgust",), "cm", "upper lip's centre minus the corner's rise above the jaw-following point",
     lambda m: height(m, (0,)) - height(m, (2,)) - _corner_rise_above_jaw_point(m)),
    (10, ("disgust",), "cm", "upper lip's rise minus the corner's rise, both above the nose base",
     lambda m: height(m, _UPPER_LIP) - height(m, (61,))),
    (10, ("disgust",), "cm", "nostril wings (64, 98) widened", lambda m: outwards(m, (64, 98)) - outwards(m, (2,))),
    (10, ("disgust",), "cm", "6b7d039 plus the nostril wings widened",
     lambda m: height(m, _UPPER_LIP) - height(m, (2,)) + outwards(m, (64, 98)) - outwards(m, (2,))),
    (10, ("disgust",), "cm", "nostril wings (64, 98) above the nose base", lambda m: height(m, (64, 98)) - height(m, (2,))),
    (26, _S, "upper", "shipped as a share of the upper face's height", _jaw),
    (26, _S, "iod", "shipped divided by the IOD", _jaw),
    (26, _S, "cm", "nose base down to the chin's tip (152) only", lambda m: height(m, (2,)) - height(m, (152,))),
    (26, _S, "cm", "nose base down to the chin and the lower lip's edge",
     lambda m: height(m, (2,)) - height(m, _LOWER_LIP + _CHIN)),
    (26, _S, "cm", "jaw drop plus the mouth's width (a drop that does not narrow the mouth)",
     lambda m: _jaw(m) + _mouth_width(m)),
    (26, _S, "cm", "jaw drop plus half the mouth's width", lambda m: _jaw(m) + 0.5 * _mouth_width(m)),
    (26, _S, "cm", "jaw drop minus the lips' opening", lambda m: _jaw(m) - _mouth_opening(m)),
    (26, _S, "cm", "jaw drop minus half the lips' opening", lambda m: _jaw(m) - 0.5 * _mouth_opening(m)),
    (26, _S, "cm", "jaw drop times the mouth's width", lambda m: _jaw(m) * _mouth_width(m)),
    (26, _S, "cm", "nasion (168) down to the chin", lambda m: height(m, (168,)) - height(m, _CHIN)),
    (26, _S, "cm", "eye corners down to the chin", lambda m: height(m, (33, 133)) - height(m, _CHIN)),
    (26, _S, "cm", "nose bridge (6) down to the chin", lambda m: height(m, (6,)) - height(m, _CHIN)),
    (26, _S, "cm", "nose tip (1, 4) down to the chin", lambda m: height(m, (1, 4)) - height(m, _CHIN)),
    (26, _S, "cm", "upper lip (0) down to the chin", lambda m: height(m, (0,)) - height(m, _CHIN)),
    (26, _S, "cm", "lip corners down to the chin", lambda m: height(m, (61, 291)) - height(m, _CHIN)),
    (26, _S, "cm", "lower lip's inner edge down to the chin", lambda m: height(m, (14, 87, 317)) - height(m, _CHIN)),
    (26, _S, "cm", "nose base down to the lower lip's inner edge", lambda m: height(m, (2,)) - height(m, (14, 87, 317))),
    (26, _S, "cm", "nose base down to the chin boss (18, 200, 199, 83, 313, 201, 421, 208, 428)",
     lambda m: height(m, (2,)) - height(m, _CHIN_BOSS)),
    (26, _S, "cm", "nose base down to the chin boss's bottom row (199, 208, 428)",
     lambda m: height(m, (2,)) - height(m, (199, 208, 428))),
    (4, _AD, "upper", "brow lowering towards the nose base (2)", lambda m: height(m, (2,)) - height(m, _BROW_LOWERING)),
    (4, _AD, "upper", "brow lowering towards the eye corners (33, 133)",
     lambda m: height(m, (33, 133)) - height(m, _BROW_LOWERING)),
    (4, _AD, "upper", "inner brow (107, 66, 55, 65) lowering towards 133", lambda m: height(m, (133,)) - height(m, (107, 66, 55, 65))),
    (4, _AD, "upper", "brow lowering from the top of the forehead (10)", lambda m: height(m, (10,)) - height(m, _BROW_LOWERING)),
    (4, _AD, "cm", "6b7d039 in canonical centimetres", _brow_lowering),
    (4, _AD, "upper", "brow lowering towards the upper lid (the eye cover fold)",
     lambda m: height(m, _UPPER_LID) - height(m, _BROW_LOWERING)),
    (4, _AD, "upper", "brow lowering towards halfway between the upper lid and 133",
     lambda m: 0.5 * height(m, _UPPER_LID) + 0.5 * height(m, (133,)) - height(m, _BROW_LOWERING)),
    (4, _AD, "upper", "middle brow (105, 52) lowering towards 133", lambda m: height(m, (133,)) - height(m, (105, 52))),
    (4, _AD, "upper", "middle brow (105, 66, 52, 65) lowering towards 133",
     lambda m: height(m, (133,)) - height(m, (105, 66, 52, 65))),
    (4, _AD, "upper", "outer brow (70, 63, 46, 53) lowering towards 133", lambda m: height(m, (133,)) - height(m, (70, 63, 46, 53))),
    (4, _AD, "upper", "innermost brow (107, 55) lowering towards 133", lambda m: height(m, (133,)) - height(m, (107, 55))),
    (4, _AD, "upper", "inner brows (107, 55) drawn towards the midline only",
     lambda m: outwards(m, (168,)) - outwards(m, (107, 55))),
    (5, _S, "iod", "eye's opening divided by the eye's width (33 to 133)",
     lambda m: _eye_opening(m) * iod(m) / (m[:, 133, X] - m[:, 33, X])),
    (5, _S, "upper", "eye's opening over more lid points (157-161 above 145, 144, 153, 154, 163)",
     lambda m: height(m, (159, 158, 160, 157, 161)) - height(m, (145, 144, 153, 154, 163))),
    (1, _S, "upper", "innermost brow (107, 55) above the nasion", lambda m: height(m, (107, 55)) - height(m, (168,))),
    (1, _S, "upper", "inner brow above the outer brow (70, 63, 46, 53): the oblique brow",
     lambda m: _inner_brow(m) - _outer_brow(m)),
    (1, _S, "upper", "inner brow above the nasion plus above the outer brow", lambda m: 2 * _inner_brow(m) - _outer_brow(m)),
    (1, _S, "upper", "inner brow above the nasion plus above the brow's middle (105, 52)",
     lambda m: _inner_brow(m) + height(m, (107, 66, 55, 65)) - height(m, (105, 52))),
    (7, ("anger",), "cm", "inner half of the lower lid above both eye corners",
     lambda m: height(m, (153, 154, 155)) - height(m, (33, 133))),
    (7, ("anger",), "cm", "inner half and middle of the lower lid (153, 154, 155, 145) above the outer corner",
     lambda m: height(m, (153, 154, 155, 145)) - height(m, (33,))),
    (17, ("sadness",), "cm", "lower lip's inner edge (14, 87, 317) rising towards the nose base",
     lambda m: height(m, (14, 87, 317)) - height(m, (2,))),
    (17, ("sadness",), "cm", "lower lip's edge above the lip corner (an inverted U; AU15 reads the same movement)",
     lambda m: height(m, _LOWER_LIP) - height(m, (61,))),
    (23, ("anger",), "iod", "lips' outer height shrinking plus half the mouth's narrowing",
     lambda m: height(m, (17,)) - height(m, (0,)) + 0.5 * (m[:, 61, X] - m[:, 291, X])),
    (23, ("anger",), "iod", "red of both lips thinning plus a quarter of the mouth's narrowing",
     lambda m: height(m, _LOWER_LIP) - height(m, (0, 37, 267)) - _mouth_opening(m) + 0.25 * (m[:, 61, X] - m[:, 291, X])),
    (24, ("anger",), "cm", "red of both lips thinning (outer height minus inner opening)",
     lambda m: height(m, _LOWER_LIP) - height(m, (0, 37, 267)) - _mouth_opening(m)),
    (15, ("sadness",), "iod", "corner below where the lips meet, the mean of 13 and 14", _au15_below((13, 14))),
    (15, ("sadness",), "iod", "corner below the upper lip's inner edge (13)", _au15_below((13,))),
    (15, ("sadness",), "iod", "corner below the inner lips' middle (13, 82, 312, 14, 87, 317)",
     _au15_below((13, 82, 312, 14, 87, 317))),
    (17, ("sadness",), "iod", "6b7d039: lower lip's edge (17, 84, 314) rising, as a share of the nose-to-chin height",
     _rise_share(_LOWER_LIP)),
    (17, ("sadness",), "iod", "chin boss's midline (18, 200, 199) rising, as a share", _rise_share((18, 200, 199))),
    (17, ("sadness",), "iod", "chin boss's upper two rows (18, 200, 83, 313, 201, 421) rising, as a share",
     _rise_share((18, 200, 83, 313, 201, 421))),
    (17, ("sadness",), "iod", "chin boss's top row (18, 83, 313) rising, as a share", _rise_share((18, 83, 313))),
    (17, ("sadness",), "iod", "chin boss's middle row (200, 201, 421) rising, as a share", _rise_share((200, 201, 421))),
    (17, ("sadness",), "iod", "chin boss's bottom row (199, 208, 428) rising, as a share", _rise_share((199, 208, 428))),
    (17, ("sadness",), "iod", "chin boss (18, 200) rising, as a share", _rise_share((18, 200))),
    (17, ("sadness",), "iod", "chin boss (200) rising, as a share", _rise_share((200,))),
    (17, ("sadness",), "iod", "lower lip's edge and the chin boss rising, as a share", _rise_share(_LOWER_LIP + _CHIN_BOSS)),
    (17, ("sadness",), "cm", "chin boss rising, in canonical centimetres", lambda m: height(m, _CHIN_BOSS) - height(m, (2,))),
    (17, ("sadness",), "upper", "chin boss rising, as a share of the upper face's height",
     lambda m: height(m, _CHIN_BOSS) - height(m, (2,))),
    (17, ("sadness",), "iod", "chin boss rising, divided by the IOD", lambda m: height(m, _CHIN_BOSS) - height(m, (2,))),
    (17, ("sadness",), "cm", "chin boss above the chin's tip (152)", lambda m: height(m, _CHIN_BOSS) - height(m, (152,))),
    (7, ("anger",), "cm", "inner half of the lower lid above the cheek (AU6's points)",
     lambda m: height(m, (153, 154, 155)) - height(m, _CHEEK)),
    (7, ("anger",), "cm", "middle of the lower lid above the cheek", lambda m: height(m, _LOWER_LID) - height(m, _CHEEK)),
    (7, ("anger",), "cm", "shipped minus the cheek's rise of AU6",
     lambda m: height(m, (153, 154, 155)) - height(m, (33,)) - height(m, _CHEEK) + height(m, (33, 133))),
    (7, ("anger",), "cm", "shipped minus half the cheek's rise of AU6",
     lambda m: height(m, (153, 154, 155)) - height(m, (33,)) - 0.5 * (height(m, _CHEEK) - height(m, (33, 133)))),
    (17, ("sadness",), "cm", "lower lip's edge pushed forwards (depth in front of the nose base)", _lower_lip_forwards),
    (17, ("sadness",), "iod", "lower lip's rise plus its forward push, as a share of the nose-to-chin height",
     lambda m: (_lower_lip_rise(m) + _lower_lip_forwards(m)) / _lower_face(m) * iod(m)),
    (17, ("sadness",), "iod", "lower lip's rise plus half its forward push, as a share of the nose-to-chin height",
     lambda m: (_lower_lip_rise(m) + 0.5 * _lower_lip_forwards(m)) / _lower_face(m) * iod(m)),
    (17, ("sadness",), "cm", "lower lip's rise plus its forward push, in canonical centimetres",
     lambda m: _lower_lip_rise(m) + _lower_lip_forwards(m)),
    (4, _AD, "cm", "brows pushed forwards, in front of the nasion", lambda m: m[:, list(_BROW_LOWERING), Z].mean(1) - m[:, 168, Z]),
    (4, _AD, "cm", "brows pushed forwards, in front of the inner eye corner (133)",
     lambda m: m[:, list(_BROW_LOWERING), Z].mean(1) - m[:, 133, Z]),
    (7, ("anger",), "cm", "inner half of the lower lid pushed forwards, in front of the outer corner",
     lambda m: m[:, [153, 154, 155], Z].mean(1) - m[:, 33, Z]),
    (24, ("anger",), "cm", "lips pushed forwards, in front of the nose base", lambda m: m[:, [0, 17], Z].mean(1) - m[:, 2, Z]),
    (24, ("anger",), "cm", "lips drawn back, behind the nose base", lambda m: m[:, 2, Z] - m[:, [0, 17], Z].mean(1)),
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
    linked = {n: classes for n, classes, _, _, _ in CANDIDATES + SINCE_6B7D039}
    definitions = {u.number: u.definition for u in actions.action_units()}
    rows = [(n, linked[n], "shipped: " + definitions[n], None, None) for n in sorted(linked)] + list(CANDIDATES + SINCE_6B7D039)
    history = ("f62f65f", "67370d2", "056c501", "6b7d039")
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
    # The same jaw-following point with the chin boss (AU17's points) in place of the chin's tip (152), for AU12
    # and AU20 (rejected after 6b7d039)
    boss_drop = sides(lambda m: height(m, (2,)) - height(m, _CHIN_BOSS), valid[surprise]).mean(1)
    share = -np.polyfit(boss_drop, corner, 1)[0]
    point = lambda m: (1 - share) * height(m, (2,)) + share * height(m, _CHIN_BOSS)  # noqa: E731
    for n, classes, f, size in ((12, ("happiness",), lambda m: 2 * height(m, (61,)) - point(m) - height(m, (0, 17)), "cm"),
                                (20, ("fear",), lambda m: outwards(m, (61,)) - outwards(m, (2,)) - height(m, (61,))
                                 + point(m), "iod")):
        positive = np.isin(labels[kept], [CLASSES.index(c) for c in classes])
        print(f"AU{n:<3} CK+ {auc_with_ci(np.maximum(sides(f, ck, size).max(1), 0), codes[n][ck_found])[0]:.3f}  "
              f"Valid {'/'.join(classes)} {auc_with_ci(np.maximum(sides(f, valid, size).max(1)[kept], 0), positive)[0]:.3f}"
              f"  with the point {share:.3f} of the way from the nose base to the chin boss")
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

    # AU26: FACS codes a jaw opened far enough, with the mouth stretched, as AU27 instead, so the CK+ AU27 faces
    # (the largest drops) are AU26 negatives. How well does the shipped AU26 separate among the other faces, and
    # what would resolving AU26 against AU27 (the stronger kept, as for the pairs of actions.EXCLUSIVE) do?
    au26, au26_code, au27_code = np.maximum(shipped(26)(ck).max(1), 0), codes[26][ck_found], codes[27][ck_found]
    print(f"AU26 within the {(~au27_code).sum()} CK+ faces not coded AU27: AUC "
          f"{auc_with_ci(au26[~au27_code], au26_code[~au27_code])[0]:.3f}; faces coded both: {(au26_code & au27_code).sum()}")
    result = actions.analyse(ck)
    numbers = np.array([u.number for u in result.units])
    both = result.present[:, numbers == 26].any(1) & result.present[:, numbers == 27].any(1)
    stronger_27 = result.intensity[:, numbers == 27].max(1) > result.intensity[:, numbers == 26].max(1)
    print(f"AU26 and AU27 both present on {both.sum()} CK+ faces ({(both & au26_code).sum()} coded AU26); AU27 the "
          f"stronger on {(both & stronger_27).sum()}: resolving the pair would leave AU26 present on "
          f"{(result.present[:, numbers == 26].any(1) & ~(both & stronger_27)).sum()} CK+ faces")
    # The benchmark's AUC is of the intensity, which is 0 at or below the neutral (ties); the signed change is
    # printed alongside to show how much of each AUC those ties cost (not used for any choice)
    aucs = []
    for n in sorted(set(numbers)):
        if n in codes and MIN_CODED <= codes[n][ck_found].sum():
            code = codes[n][ck_found]
            intensity, change = (getattr(result, a)[:, numbers == n].max(1) for a in ("intensity", "change"))
            aucs.append((auc_with_ci(intensity, code)[0], auc_with_ci(change, code)[0]))
            print(f"AU{n:<3} CK+ AUC of the intensity {aucs[-1][0]:.3f}, of the signed change {aucs[-1][1]:.3f}; "
                  f"intensity 0 on {np.mean(intensity == 0):.0%} of faces")
    print("mean CK+ AUC over those units: of the intensity {:.3f}, of the signed change {:.3f}".format(*np.mean(aucs, 0)))


if __name__ == "__main__":
    main()
