"""FACS action units measured from the 468-point mesh: facial movements, not feelings.

An action unit (AU) is a movement that trained coders score the same way (FACS). mien measures
each one geometrically, as a pure function of pose-removed meshes ``(N, 468, 3)`` in the
canonical frame (centimetres, x towards the subject's left, y up, z out of the face; see
:mod:`mien.geometry`), so a head turn does not fake a movement. Every measure is a fixed linear
combination of landmark coordinates in a face-size unit, so it does not depend on the distance to
the camera: heights above the eyes (brows, upper lid) are shares of the upper face's height (top of
the forehead to the nose base), other measures without a lateral part (heights, and AU14's depth)
stay in the canonical frame's centimetres (the pose fit has already scaled the face to MediaPipe's
canonical face), and measures with a lateral part are divided by the inter-ocular distance (IOD)
between the eye centres; AU27 uses the mouth width, AU17 the nose-to-chin height. Left and right are
the *subject's* left and right (``_l`` is on the image's right for an unmirrored frontal face).

Three numbers per unit and face:

- ``raw``: the measure itself, in canonical centimetres or IOD units (AU1, AU2, AU4, AU5, AU17,
  AU27, AU43: ratios);
- ``change``: ``raw`` minus a neutral reference, signed so that > 0 is movement in the unit's
  direction. The reference is the population neutral shipped in ``data/neutral_face.npz`` (a
  mesh estimated from FERPlus Train faces the crowd calls neutral), or a per-person baseline;
- ``intensity``: ``max(change, 0) / threshold``: 1.0 is the occurrence threshold, 0 is neutral
  or movement the other way. ``present`` is ``intensity >= 1``, except that of two units that
  cannot co-occur on one side (``EXCLUSIVE``) only the stronger is present.

Thresholds are chosen from data (``tools/make_neutral_face.py``): a high percentile of ``change``
on FERPlus Valid faces the crowd calls neutral. Each unit's AUC against FACS coders comes from
``benchmarks/action_units.py`` (``data/action_unit_validity.json``); units below 0.70 are
experimental. See docs/action_units.md for every definition, how it was chosen, the reliability
of each unit, and its measured link to FACS coders and crowd judgements. mien does not infer
emotions: a lip corner puller is a movement of the lip corners, not happiness.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .geometry import canonical_face
from .errors import InputError
from .mesh import EYE_CORNERS, LANDMARK_COUNT, check_meshes, interocular_distance
from .runtime import verified_json, verified_npz

X, Y, Z = 0, 1, 2
RIGHT_EYE = EYE_CORNERS[0]  # the subject's right eye (outer, inner corner): the image-left eye of mesh.py


@dataclass(frozen=True)
class ActionUnit:
    """One measured column: an AU on one side (``side`` "l" / "r") or on the whole face ("")."""

    number: int
    name: str  # FACS name in snake case, e.g. "lip_corner_puller"
    side: str  # "l", "r" or ""
    landmarks: tuple[int, ...]  # every landmark the measure reads, for this side
    movement: tuple  # ((landmarks, (dx, dy, dz)), ...): the movement in the canonical frame, cm per cm
    definition: str
    reliability: str  # "good" | "fair" | "weak" | "experimental"
    note: str

    @property
    def column(self) -> str:
        """The unit's column in mien's tables, e.g. ``au12_lip_corner_puller_l`` (no side suffix for a
        whole-face unit)."""
        base = f"au{self.number:02d}_{self.name}"
        return f"{base}_{self.side}" if self.side else base

    @property
    def moving(self) -> tuple[int, ...]:
        """Landmarks the movement displaces (drawn on pictures)."""
        return tuple(sorted({i for ids, _ in self.movement for i in ids}))

    @property
    def label(self) -> str:
        """The short label drawn on pictures, e.g. ``AU12L`` (``AU12`` for a whole-face unit)."""
        return f"AU{self.number}" + (self.side.upper() if self.side else "")


# ----------------------------------------------------------------------------------------------
# Definitions, written for the subject's RIGHT side (x < 0) or for the whole face. A term is
# (weight, axis, landmarks): weight * mean of that coordinate over the landmarks. ``OUT`` is the
# lateral axis: away from the midline (-x on the right). The left side is derived by the mesh's
# mirror permutation with x negated, so left/right symmetry holds by construction.
DENOMINATORS = ("iod", "mouth_width", "lower_face", "canonical", "upper_face")
OUT = -1  # pseudo-axis: -x on the right side, +x on the left


@dataclass(frozen=True)
class _Spec:
    number: int
    name: str
    sided: bool
    terms: tuple  # ((weight, axis, (landmarks...)), ...)
    movement: tuple  # ((landmarks, (outwards, up, forwards)), ...) for the right side / whole face
    # "iod", "mouth_width", "lower_face" (nose base 2 to chin 152, vertical), "upper_face" (top of the
    # forehead 10 to nose base 2, vertical) or "canonical" (none: the canonical frame's centimetres, a
    # face size set by the pose fit over the whole face)
    denominator: str
    definition: str
    reliability: str
    note: str


_INNER_BROW = (107, 66, 55, 65)
_OUTER_BROW = (70, 63, 46, 53)
_MID_BROW = (105, 66, 107, 52, 65, 55)
_UPPER_LID = (159, 158, 160)
_LOWER_LID = (145, 144, 153)
_LOWER_LID_INNER = (153, 154, 155)  # towards the inner eye corner (133), away from the cheek
_CHEEK = (118, 100, 101, 50, 36)
_LOWER_NOSE = (98, 64, 327, 294, 1)  # nostril wings and the nose tip
_UPPER_LIP = (0, 37, 39, 267, 269)
_UPPER_LIP_INNER = (13, 82, 312)
_LOWER_LIP_INNER = (14, 87, 317)
_LOWER_LIP = (17, 84, 314)
_CHIN = (152, 175, 199)
_CHIN_BOSS = (18, 200, 199, 83, 313, 201, 421, 208, 428)  # between the lower lip's edge and the chin's tip
_CARRIED_BY_THE_JAW = tuple(dict.fromkeys(_CHIN + _CHIN_BOSS + _LOWER_LIP + _LOWER_LIP_INNER))  # moves when it drops
_CORNER = (61,)
_CORNER_L = (291,)
_CHEEK_BESIDE_CORNER = (212,)  # the nearest cheek point beside the lip corner, at its height
_NASION = (168,)
# The lip corners follow a third of the jaw's drop (slope of the corner's height below the nose base on
# the nose-to-chin lengthening, FERPlus Valid crowd-surprise faces: tools/action_unit_candidates.py).
# A point that share of the way from the nose base (2) to the chin (152) moves with the jaw as they do.
_JAW_SHARE = 1 / 3

_SPECS: tuple[_Spec, ...] = (
    _Spec(1, "inner_brow_raiser", True, ((1, Y, _INNER_BROW), (-1, Y, _NASION)), ((_INNER_BROW, (0, 1, 0)),),
          "upper_face",
          "height of the inner brow (107, 66, 55, 65) above the nasion (168), as a share of the upper face's "
          "height (top of the forehead 10 to base of the nose 2); up is positive",
          "good", "brow landmarks track well on frontal faces; AU1 and AU2 often co-occur"),
    _Spec(2, "outer_brow_raiser", True, ((1, Y, _OUTER_BROW), (-1, Y, _NASION)), ((_OUTER_BROW, (0, 1, 0)),),
          "upper_face",
          "height of the outer brow (70, 63, 46, 53) above the nasion (168), as a share of the upper face's "
          "height (10 to 2); up is positive",
          "good", "the outer brow lies near the edge of the mesh, where landmarks are less certain on turned heads"),
    _Spec(4, "brow_lowerer", True, ((-1, Y, _MID_BROW), (1, Y, (133,))),
          (((107, 55, 66, 65, 105, 52), (-0.5, -1, 0)),), "upper_face",
          "lowering of the inner and middle brow (105, 66, 107, 52, 65, 55) towards the inner eye corner (133), "
          "as a share of the upper face's height (10 to 2); down is positive",
          "fair", "the furrow between the brows is texture the mesh does not see, and the brows' drawing together "
                  "is not counted (on these meshes it did not separate the coders' AU4); only the brow's lowering "
                  "counts"),
    _Spec(5, "upper_lid_raiser", True, ((1, Y, _UPPER_LID), (-1, Y, _LOWER_LID)), ((_UPPER_LID, (0, 1, 0)),),
          "upper_face",
          "opening of the eye: height of the upper lid (159, 158, 160) above the lower lid (145, 144, 153), as a "
          "share of the upper face's height (10 to 2); wider is positive",
          "fair", "gaze direction moves the lids too, and a raised lower lid (AU7) narrows the opening; AU5 and "
                  "AU43 (upper lid lowered) cannot both be present"),
    _Spec(6, "cheek_raiser", True, ((1, Y, _CHEEK), (-1, Y, RIGHT_EYE)), ((_CHEEK, (0, 1, 0)),), "canonical",
          "height of the infraorbital cheek (118, 100, 101, 50, 36) relative to the line of the eye corners "
          "(33, 133); up is positive",
          "weak", "the cheek's rise is small and smooth, the mesh's cheek points are partly anchored by the pose fit, "
                  "and crow's-feet wrinkles are invisible to geometry"),
    _Spec(7, "lid_tightener", True, ((1, Y, _LOWER_LID_INNER), (-1, Y, (33,))), ((_LOWER_LID_INNER, (0, 1, 0)),),
          "canonical",
          "height of the inner half of the lower lid (153, 154, 155) relative to the outer eye corner (33); up is "
          "positive",
          "fair", "a raised cheek (AU6) also pushes the lower lid up, mostly its outer half, which is why the "
                  "inner half is measured"),
    _Spec(9, "nose_wrinkler", False, ((1, Y, _LOWER_NOSE), (-1, Y, _NASION)), ((_LOWER_NOSE, (0, 1, 0)),), "canonical",
          "height of the lower nose, nostril wings and tip (98, 64, 327, 294, 1), relative to the nasion (168): the "
          "skin of the nose drawn up towards its root; up is positive",
          "weak", "the wrinkles themselves are texture; the nose wings move little and the pose fit is anchored on "
                  "nearby landmarks (129, 358)"),
    _Spec(10, "upper_lip_raiser", False, ((1, Y, _UPPER_LIP), (-1, Y, (2,))), ((_UPPER_LIP, (0, 1, 0)),), "canonical",
          "height of the upper lip's outer edge (0, 37, 39, 267, 269) relative to the base of the nose (2); up is positive",
          "fair", "the upper lip also rises when the mouth opens wide"),
    _Spec(12, "lip_corner_puller", True, ((2, Y, _CORNER), (-(1 - _JAW_SHARE), Y, (2,)), (-_JAW_SHARE, Y, (152,)),
                                           (-0.5, Y, (0,)), (-0.5, Y, (17,))),
          ((_CORNER, (0, 1, 0)),), "canonical",
          "height of the lip corner (61) above the point a third of the way from the base of the nose (2) to the "
          "chin (152), plus its height above the lips' midline (halfway between 0 and 17); up is positive",
          "good", "the vertical part of the corner's oblique pull; the first reference follows the jaw as far as the "
                  "corners do (a third of its drop), so an open-mouthed smile stays a smile; an open mouth lowers "
                  "the lips' midline, so parted lips (AU25, AU27) read as a small part of AU12"),
    _Spec(14, "dimpler", True, ((-1, Y, (40, 39)), (1, Y, (91, 181)), (-1, Z, _CORNER), (1, Z, _CHEEK_BESIDE_CORNER)),
          (((40, 39), (0, -1, 0)), ((91, 181), (0, 1, 0)), (_CORNER, (0, 0, -1))), "canonical",
          "thinning of the lips beside the corner (minus the height from the lower (91, 181) to the upper lip's "
          "edge (40, 39) next to the lip corner) plus the corner's depth behind the cheek beside it (61 behind "
          "212): the corner tightened and pulled back into the cheek; thinner and deeper is positive",
          "weak", "the dimple itself is texture, and the corner's depth is inferred by the mesh from the image, "
                  "not measured"),
    _Spec(15, "lip_corner_depressor", True, ((-1, Y, _CORNER), (1, Y, (14,)), (0.5, OUT, _CORNER), (-0.5, OUT, (2,))),
          ((_CORNER, (0.5, -1, 0)),), "iod",
          "depth of the lip corner (61) below the middle of the lower lip's inner edge (14), where the lips meet, "
          "plus half its lateral distance from the midline (2): the lip line turned down at the corners, the "
          "lower lip stretched sideways; down and outwards is positive",
          "weak", "a chin raiser (AU17) pushes the lower lip up and so can read partly as AU15, parted lips lower "
                  "the reference and so hide part of it, and a lip stretcher (AU20) pulls the corners outwards, "
                  "which AU15 counts in part; AU15 and AU17 often come together"),
    _Spec(17, "chin_raiser", False, ((1, Y, _CHIN_BOSS), (-1, Y, (2,))), ((_CHIN_BOSS, (0, 1, 0)),),
          "lower_face",
          "rise of the chin boss (the points between the lower lip's edge and the tip of the chin: 18, 200, 199, "
          "83, 201, 208 and their mirror points) towards the base of the nose (2), as a share of the "
          "nose-to-chin height (2 to 152); up is positive",
          "weak", "the chin boss's bulge and wrinkling are texture and its points are inferred where the chin "
                  "leaves the picture; the chin raiser also pushes the lower lip up, which shortens the mouth "
                  "(AU23, AU24) and lifts the lower lip above the corners (AU15); resting faces differ in chin "
                  "height more than a chin raise moves it, so the threshold (set on resting faces) is seldom "
                  "crossed and `present` misses most chin raises that FACS coders mark: its intensity ranks them "
                  "better than its `present` flags them"),
    _Spec(20, "lip_stretcher", True, ((1, OUT, _CORNER), (-1, OUT, (2,)), (-1, Y, _CORNER), (1 - _JAW_SHARE, Y, (2,)),
                                      (_JAW_SHARE, Y, (152,))),
          ((_CORNER, (1, 0, 0)),), "iod",
          "lateral distance of the lip corner (61) from the midline (2) minus its height above the point a third "
          "of the way from the base of the nose (2) to the chin (152): a pull outwards and down; outwards and "
          "down is positive",
          "fair", "the upward part of a smile is subtracted, so a smile's widening does not read as AU20, and the "
                  "reference follows the jaw as far as the corners do, so an open mouth does not either; a corner "
                  "pulled straight down (AU15) reads partly as AU20"),
    _Spec(23, "lip_tightener", False, ((-1, Y, (0,)), (1, Y, (17,)), (-0.25, X, _CORNER_L), (0.25, X, _CORNER)),
          ((_CORNER + _CORNER_L, (-1, 0, 0)),), "iod",
          "narrowing of the mouth: minus the height of the lips' outer edges (0 to 17) minus a quarter of the "
          "width between the lip corners (61, 291); smaller is positive",
          "weak", "FACS AU23 also rolls the red of the lips, which geometry barely sees; AU23 and AU24 both make "
                  "the mouth smaller and are not separable in geometry"),
    _Spec(24, "lip_pressor", False, ((-1, Y, (0, 37, 267)), (1, Y, _LOWER_LIP)),
          (((0, 37, 267), (0, -1, 0)),), "canonical",
          "pressing of the lips: minus the height of the lips' outer edges (0, 37, 267 to 17, 84, 314); "
          "lower is positive",
          "weak", "pressing and tightening look alike in geometry; separating AU23 from AU24 needs texture"),
    _Spec(25, "lips_part", False, ((1, Y, _UPPER_LIP_INNER), (-1, Y, _LOWER_LIP_INNER)), ((_LOWER_LIP_INNER + _LOWER_LIP, (0, -1, 0)),), "canonical",
          "gap between the inner lips (13, 82, 312 to 14, 87, 317); apart is positive",
          "good", "the inner-lip landmarks follow the opening well on frontal faces"),
    _Spec(26, "jaw_drop", False, ((1, Y, (2,)), (-1, Y, _CHIN)), ((_CARRIED_BY_THE_JAW, (0, -1, 0)),), "canonical",
          "distance from the base of the nose (2) down to the chin (152, 175, 199); longer is positive",
          "good", "jaw drop usually parts the lips (AU25) too"),
    _Spec(27, "mouth_stretch", False, ((1, Y, _UPPER_LIP_INNER), (-1, Y, _LOWER_LIP_INNER)), ((_CARRIED_BY_THE_JAW, (0, -1, 0)),),
          "mouth_width",
          "height of the mouth opening (13, 82, 312 to 14, 87, 317) divided by the mouth width (61 to 291): "
          "a tall, stretched opening",
          "fair", "AU27 is a large vertical opening: it comes with AU25 and AU26 and is not separable from them "
                  "below its threshold"),
    _Spec(43, "eyes_closed", True, ((-1, Y, _UPPER_LID), (1, Y, RIGHT_EYE)), ((_UPPER_LID, (0, -1, 0)),), "upper_face",
          "lowering of the upper lid (159, 158, 160) towards the line of the eye corners (33, 133), as a share of "
          "the upper face's height (10 to 2); down is positive. In video a short closure is AU45 (blink)",
          "fair", "looking down lowers the upper lid as well; the mesh does not always close the lids completely"),
)


def _mirror_terms(terms, mirror):
    out = []
    for weight, axis, ids in terms:
        ids = tuple(int(mirror[i]) for i in ids)
        if axis == X:
            weight = -weight
        out.append((weight, axis, ids))
    return tuple(out)


def _term_matrix(terms, side_sign: float) -> np.ndarray:
    """(468, 3) weights such that measure numerator = sum(weights * points)."""
    w = np.zeros((LANDMARK_COUNT, 3))
    for weight, axis, ids in terms:
        if axis == OUT:
            weight, axis = weight * side_sign, X
        for i in ids:
            w[i, axis] += weight / len(ids)
    return w


@functools.cache
def _tables():
    mirror = canonical_face().mirror
    points = canonical_face().points
    units, numerators, denominators = [], [], []
    for s in _SPECS:
        if s.sided:
            left = tuple((tuple(int(mirror[i]) for i in ids), d) for ids, d in s.movement)
            sides = (("l", _mirror_terms(s.terms, mirror), 1.0, left), ("r", s.terms, -1.0, s.movement))
        else:
            sides = (("", s.terms, 1.0, s.movement),)
        for side, terms, sign, movement in sides:
            w = _term_matrix(terms, sign)
            if not s.sided:  # whole-face units: symmetrise so that a mirror image measures the same
                w = 0.5 * (w + _term_matrix(_mirror_terms(terms, mirror), sign))
            ids = tuple(sorted(int(i) for i in np.nonzero(np.abs(w).sum(1))[0]))
            # movement directions: "outwards" becomes +x or -x by the side each landmark is on
            moves = []
            for group, (o, u, f) in movement:
                for i in group:
                    lateral = np.sign(points[i, X]) if abs(points[i, X]) > 1e-6 else 0.0
                    moves.append(((int(i),), (float(o * lateral), float(u), float(f))))
            units.append(ActionUnit(s.number, s.name, side, ids, tuple(moves), s.definition, s.reliability, s.note))
            numerators.append(w.reshape(-1))
            denominators.append(DENOMINATORS.index(s.denominator))
    return tuple(units), _sparse_columns(np.stack(numerators, 1)), np.array(denominators)


def _sparse_columns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (P, K) matrix with few non-zeros per column as (K, L) row indices and weights (zero-padded),
    so that ``(np.take(x, index, axis=1) * weights).sum(2)`` is ``x @ matrix``: each row summed alike whatever the
    number of rows (BLAS sums a single row another way), and without the zeros."""
    per_column = [np.flatnonzero(column) for column in matrix.T]
    width = max(len(rows) for rows in per_column)
    index = np.zeros((len(per_column), width), np.intp)
    weights = np.zeros((len(per_column), width))
    for k, rows in enumerate(per_column):
        index[k, :len(rows)], weights[k, :len(rows)] = rows, matrix[rows, k]
    return index, weights


def movement(unit: ActionUnit | int | str) -> np.ndarray:
    """(468, 3) canonical-frame displacement field of one unit's movement, 1 cm per moving landmark
    (for tests, drawing and explanation). ``unit``: an ActionUnit, its index or its column name."""
    units = action_units()
    if isinstance(unit, str):
        unit = units[columns().index(unit)]
    elif not isinstance(unit, ActionUnit):
        unit = units[int(unit)]
    field = np.zeros((LANDMARK_COUNT, 3))
    for ids, d in unit.movement:
        field[list(ids)] += np.asarray(d) / np.linalg.norm(d)
    return field


def action_units() -> tuple[ActionUnit, ...]:
    """The measured columns, in output order."""
    return _tables()[0]


def columns() -> list[str]:
    """Every action-unit column, in table order (one per unit and side)."""
    return list(_column_names()[0])


@functools.cache
def _column_names() -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = tuple(u.column for u in action_units())
    return names, tuple(f"{n}_present" for n in names)


def _check_meshes(meshes) -> np.ndarray:
    m = np.asarray(meshes)
    return check_meshes(m[None] if m.ndim == 2 else m, "canonical-frame meshes").astype(np.float64, copy=False)


def measures(canonical_meshes: np.ndarray) -> np.ndarray:
    """Raw measures (N, K) of pose-removed meshes (N, 468, 3) in the canonical frame (see
    :func:`mien.geometry.to_canonical_frame`); column k is ``action_units()[k]``. Canonical
    centimetres or IOD units (AU1, AU2, AU4, AU5, AU17, AU27, AU43: ratios). A (468, 3) mesh is
    treated as a batch of one."""
    m = _check_meshes(canonical_meshes)
    _, (terms, weights), denominators = _tables()
    num = (np.take(m.reshape(len(m), LANDMARK_COUNT * 3), terms, axis=1) * weights).sum(2)  # take: C order, as summed
    iod = interocular_distance(m, dims=3)
    width = m[:, 291, X] - m[:, 61, X]
    lower_face = m[:, 2, Y] - m[:, 152, Y]
    upper_face = m[:, 10, Y] - m[:, 2, Y]
    sizes = np.stack([iod, width, lower_face, np.ones(len(m)), upper_face], 1)  # in DENOMINATORS order
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / sizes[:, denominators]


# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NeutralReference:
    """Population neutral: a canonical-frame mesh, its measures, and occurrence thresholds."""

    mesh: np.ndarray  # (468, 3) cm, mirror-symmetric
    raw: np.ndarray  # (K,) measures of the neutral mesh
    thresholds: np.ndarray  # (K,) occurrence thresholds on ``change``, in the measure's units
    percentile: float
    columns: tuple[str, ...]
    source: str


@functools.cache
def population_neutral() -> NeutralReference:
    """The neutral shipped in ``mien/data/neutral_face.npz`` (made by tools/make_neutral_face.py)."""
    data = verified_npz("data/neutral_face.npz")
    cols = tuple(str(c) for c in data["columns"])
    if list(cols) != columns():
        raise RuntimeError("neutral_face.npz does not match the action-unit table: rerun tools/make_neutral_face.py")
    mesh = data["mesh"].astype(np.float64)
    return NeutralReference(mesh, measures(mesh)[0], data["thresholds"].astype(np.float64),
                            float(data["percentile"]), cols, str(data["source"]))


# Units that cannot both be present on one side of a face: the muscles pull the same landmarks in
# opposite directions, or one keeps closed what the other opens. Sided units conflict with the
# same side only; a whole-face unit conflicts with either side.
EXCLUSIVE = ((12, 15), (5, 43), (17, 26), (24, 25), (24, 26), (24, 27))


@functools.cache
def exclusive_matrix() -> np.ndarray:
    """(K, K) bool: True where columns i and j cannot both be present (see ``EXCLUSIVE``)."""
    units = action_units()
    pairs = {frozenset(p) for p in EXCLUSIVE}
    out = np.zeros((len(units), len(units)), bool)
    for i, a in enumerate(units):
        for j, b in enumerate(units):
            same_side = not a.side or not b.side or a.side == b.side
            out[i, j] = same_side and frozenset((a.number, b.number)) in pairs
    return out


def resolve_exclusive(intensity: np.ndarray, over: np.ndarray) -> np.ndarray:
    """Occurrence without impossible combinations: among units over their threshold, the strongest
    is kept and every unit that cannot co-occur with a kept one is dropped, strongest first."""
    conflicts = exclusive_matrix()
    kept = over.copy()
    clash = np.nonzero((over @ conflicts.astype(np.int64) > 0) & over)[0]
    if not len(clash):
        return kept
    faces = np.unique(clash)
    sub_intensity, sub_over = intensity[faces], over[faces]
    order = np.argsort(-np.nan_to_num(sub_intensity, nan=-np.inf), axis=1, kind="stable")
    rows = np.arange(len(faces))
    sub_kept = np.zeros_like(sub_over)
    for k in order.T:  # k: (M,) the next-strongest column of each face
        blocked = (sub_kept & conflicts[k]).any(1)
        sub_kept[rows, k] = sub_over[rows, k] & ~blocked
    kept[faces] = sub_kept
    return kept


@dataclass(frozen=True)
class ActionUnitResult:
    """Action units of N faces; column k of every array is ``units[k]``."""

    raw: np.ndarray  # (N, K) measures
    change: np.ndarray  # (N, K) raw minus neutral, > 0 in the unit's direction
    intensity: np.ndarray  # (N, K) max(change, 0) / threshold; 1 = occurrence threshold
    present: np.ndarray  # (N, K) bool, intensity >= 1 and not overruled by a stronger incompatible unit
    baseline: str  # "population" or "person"
    units: tuple[ActionUnit, ...]

    def __len__(self) -> int:
        return len(self.raw)

    def take(self, index) -> "ActionUnitResult":
        """The faces at ``index`` (an integer array or a boolean mask)."""
        return ActionUnitResult(self.raw[index], self.change[index], self.intensity[index], self.present[index],
                                self.baseline, self.units)

    @staticmethod
    def concat(batches: list["ActionUnitResult"]) -> "ActionUnitResult":
        """The faces of several batches (of one unit table), in order; ``baseline`` is the first batch's."""
        arrays = (np.concatenate([getattr(b, name) for b in batches]) for name in ("raw", "change", "intensity", "present"))
        return ActionUnitResult(*arrays, batches[0].baseline, batches[0].units)

    @property
    def overruled(self) -> np.ndarray:
        """(N, K) bool: over the threshold, but dropped for a stronger unit it cannot co-occur with."""
        return (self.intensity >= 1.0) & ~self.present


def analyse(canonical_meshes: np.ndarray, baseline: np.ndarray | None = None,
            reference: NeutralReference | None = None) -> ActionUnitResult:
    """Action units of pose-removed meshes (N, 468, 3).

    ``baseline``: a per-person neutral, either raw measures (K,) / (N, K) or a canonical mesh
    (468, 3) / (N, 468, 3) of that person's neutral face (e.g. a running median in video). Without
    it the population neutral is used. Signs: ``change > 0`` is movement in the unit's direction.
    """
    if baseline is not None:
        b = np.asarray(baseline, np.float64)
        if b.shape[-2:] == (LANDMARK_COUNT, 3):
            b = measures(b)
            baseline = b[0] if b.shape[0] == 1 else b
    return analyse_measures(measures(canonical_meshes), baseline, reference)


def analyse_measures(raw: np.ndarray, baseline: np.ndarray | None = None,
                     reference: NeutralReference | None = None) -> ActionUnitResult:
    """Action units from raw measures (N, K) (see :func:`measures`); ``baseline``: measures of a
    per-person neutral, (K,) or (N, K), or None for the population neutral."""
    ref = reference or population_neutral()
    raw = np.asarray(raw, np.float64)
    if baseline is None:
        neutral, kind = ref.raw, "population"
    else:
        neutral, kind = np.asarray(baseline, np.float64), "person"
        if neutral.shape not in ((raw.shape[1],), raw.shape):
            raise InputError(f"baseline must be measures (K,) or (N, K) or meshes (468, 3) or (N, 468, 3); got {np.shape(baseline)}")
    change = raw - neutral
    intensity = np.maximum(change, 0.0) / ref.thresholds
    intensity = np.where(np.isfinite(intensity), intensity, np.nan)
    present = resolve_exclusive(intensity, intensity >= 1.0)
    return ActionUnitResult(raw, change, intensity, present, kind, action_units())


# ---------------------------------------------------------------------------------------------- validity
VALIDATED_AUC = 0.70  # a unit whose AUC against FACS coders is below this is experimental


@functools.cache
def validity() -> dict:
    """Figures of ``benchmarks/action_units.py`` shipped in ``mien/data/action_unit_validity.json``:
    ``{"ckplus48": {"AU12": {"auc": ..., "positives": ...}, ...}, ...}``."""
    return verified_json("data/action_unit_validity.json")


def coder_auc(number: int, coders: dict | None = None) -> float | None:
    """AUC of the unit's intensity (larger side) against certified FACS coders (crossval CK+), or
    None where the coders did not score it often enough to measure. ``coders``: the benchmark's
    ``ckplus48`` figures, by default the shipped ones."""
    row = (coders or validity()["ckplus48"])["units"].get(f"AU{number}")
    return None if row is None or row["auc"] is None else float(row["auc"])


def is_experimental(unit: ActionUnit, coders: dict | None = None) -> bool:
    """Marked experimental by definition, or measured below ``VALIDATED_AUC`` against FACS coders."""
    auc = coder_auc(unit.number, coders)
    return unit.reliability == "experimental" or (auc is not None and auc < VALIDATED_AUC)


def validated_columns(coders: dict | None = None) -> list[str]:
    """Intensity columns of units that are not experimental: the ones "present" summaries and video
    episodes report unless asked for every unit."""
    return [u.column for u in action_units() if not is_experimental(u, coders)]


def validity_note(unit: ActionUnit) -> str:
    """One line on how far ``unit`` can be trusted: its AUC against certified FACS coders (crossval
    CK+, 0.5 is chance, 1 perfect) or why there is none, and whether it is experimental."""
    auc = coder_auc(unit.number)
    measured = ("no AUC against FACS coders (crossval CK+ codes it on fewer than 10 faces)" if auc is None
                else f"AUC {auc:.2f} against FACS coders (crossval CK+)")
    return f"{measured}; experimental, do not rely on it" if is_experimental(unit) else measured


def column_table() -> list[tuple[str, str, str]]:
    """(column, dtype, meaning) for every schema column this module adds, in output order."""
    rows = []
    for u in action_units():
        side = {"l": "subject's left", "r": "subject's right", "": "whole face"}[u.side]
        rows.append((u.column, "float32", f"AU{u.number} {u.name.replace('_', ' ')} ({side}): intensity, "
                                          "change from neutral in multiples of the occurrence threshold, >= 0; "
                                          f"{validity_note(u)}"))
    for u in action_units():
        rows.append((f"{u.column}_present", "boolean", f"AU{u.number} occurrence: intensity >= 1, unless a stronger "
                                                       "unit it cannot co-occur with is present"))
    return rows
