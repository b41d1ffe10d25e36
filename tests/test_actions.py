"""Action units: schema, each unit responds to its own movement, pose invariance, mirror symmetry,
per-person baseline, and (with ../shared/data) a small check on real FERPlus faces."""
import re
from pathlib import Path

import numpy as np
import pytest

from mien import actions
from mien.perceived import CLASSES
from mien.geometry import canonical_face, from_canonical_frame, head_pose, rotation_from_euler, to_canonical_frame

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UNITS = actions.action_units()
COLS = actions.columns()
REF = actions.population_neutral()
NEUTRAL = REF.mesh
# Documented companions (docs/action_units.md): AU27 (a tall mouth opening relative to its width)
# rises with the lips parting or the mouth narrowing; a mouth stretched open parts the lips and
# drops the jaw; the jaw carries the lower lip, so a jaw drop parts the lips; an open mouth lowers
# (and a lip pressed down moves) the lips' midline that AU12 is measured from; AU20 counts the
# corner's downward part; AU23 and AU24 both make the mouth smaller; a chin raiser pushes the lower
# lip up, which shortens the mouth (AU23, AU24); AU15 counts half of the corner's lateral pull, so a
# lip stretcher (AU20) reads partly as AU15: geometry cannot tell these apart.
OPEN_MOUTH = {"au12_lip_corner_puller_l", "au12_lip_corner_puller_r"}
COMPANIONS = {"au25_lips_part": {"au27_mouth_stretch"} | OPEN_MOUTH,
              "au26_jaw_drop": {"au25_lips_part", "au27_mouth_stretch"} | OPEN_MOUTH,
              "au27_mouth_stretch": {"au25_lips_part", "au26_jaw_drop"} | OPEN_MOUTH,
              "au15_lip_corner_depressor_l": {"au20_lip_stretcher_l"},
              "au15_lip_corner_depressor_r": {"au20_lip_stretcher_r"},
              "au20_lip_stretcher_l": {"au15_lip_corner_depressor_l"},
              "au20_lip_stretcher_r": {"au15_lip_corner_depressor_r"},
              "au23_lip_tightener": {"au27_mouth_stretch"},
              "au17_chin_raiser": {"au23_lip_tightener", "au24_lip_pressor"},
              "au24_lip_pressor": {"au23_lip_tightener"} | OPEN_MOUTH}
POSE_TOLERANCE = 0.05  # intensity units (fraction of the occurrence threshold), at yaw/pitch up to 20 degrees
# A pinhole camera 60 cm away adds perspective, which a similarity pose fit cannot remove: the
# nose-to-chin distance (AU17/AU26) then changes by up to ~0.4 thresholds at pitch 20 degrees.
PERSPECTIVE_TOLERANCE = 0.5


def deform(mesh: np.ndarray, column: str, times_threshold: float) -> np.ndarray:
    """Move ``mesh`` along one unit's movement until its change is ``times_threshold`` thresholds."""
    k = COLS.index(column)
    field = actions.movement(column)
    eps = 1e-3
    slope = (actions.measures(mesh + eps * field)[0, k] - actions.measures(mesh)[0, k]) / eps
    assert slope > 0, f"{column}: its own movement must increase its measure"
    return mesh + times_threshold * REF.thresholds[k] / slope * field


def to_image(canonical: np.ndarray, yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    return from_canonical_frame(canonical, yaw, pitch, roll, 30.0, (320.0, 240.0))


def mirror_image(image_mesh: np.ndarray, width: float = 640.0) -> np.ndarray:
    """The mesh of the mirrored image: x flipped, landmarks renumbered by the mirror permutation."""
    flipped = image_mesh.copy()
    flipped[..., 0] = width - flipped[..., 0]
    return flipped[..., canonical_face().mirror, :]


def analyse_image(image_meshes: np.ndarray, **kw) -> actions.ActionUnitResult:
    image_meshes = np.asarray(image_meshes, np.float64).reshape(-1, 468, 3)
    return actions.analyse(to_canonical_frame(image_meshes, head_pose(image_meshes)), **kw)


# ---------------------------------------------------------------------------------------------- schema
def test_table_and_columns():
    assert len(UNITS) == len(set(COLS)) == 30
    for u in UNITS:
        assert re.fullmatch(r"au\d\d_[a-z_]+?(_[lr])?", u.column), u.column
        assert u.reliability in {"good", "fair", "weak", "experimental"}
        assert u.definition and u.note and u.landmarks and u.moving
        crowd_labels = [c for c in CLASSES if c in (u.definition + u.note).lower()]
        assert not crowd_labels, f"{u.column} describes a movement, not what it may look like to observers: {crowd_labels}"
    numbers = {u.number for u in UNITS}
    assert {1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 27, 43} <= numbers
    for n in (1, 2, 4, 5, 7, 12, 15, 43):  # FACS codes these per side
        assert {u.side for u in UNITS if u.number == n} == {"l", "r"}
    table = actions.column_table()
    assert [c for c, _, _ in table] == COLS + [f"{c}_present" for c in COLS]


def test_shapes_dtypes_and_bad_input():
    raw = actions.measures(np.stack([NEUTRAL, canonical_face().points]))
    assert raw.shape == (2, 30) and raw.dtype == np.float64
    assert actions.measures(NEUTRAL.astype(np.float32)).shape == (1, 30)
    with pytest.raises(ValueError, match="468"):
        actions.measures(np.zeros((2, 400, 3)))
    res = actions.analyse(np.stack([NEUTRAL] * 3))
    assert res.intensity.shape == res.change.shape == res.present.shape == (3, 30)
    assert res.present.dtype == bool and len(res) == 3 and res.baseline == "population"
    picked = res.take(np.array([True, False, True]))
    assert picked.intensity.shape == (2, 30) and picked.units == res.units


def test_neutral_reference():
    assert REF.columns == tuple(COLS)
    assert np.all(REF.thresholds > 0) and "FERPlus" in REF.source
    res = actions.analyse(NEUTRAL)
    np.testing.assert_allclose(res.change, 0, atol=1e-9)
    assert not res.present.any()
    mirrored = NEUTRAL[canonical_face().mirror] * [-1, 1, 1]
    np.testing.assert_allclose(mirrored, NEUTRAL, atol=1e-5)  # shipped neutral is symmetric
    for u, t in zip(UNITS, REF.thresholds):  # both sides share a threshold
        twin = [s for s, v in zip(REF.thresholds, UNITS) if v.number == u.number]
        assert np.allclose(twin, t)


# ---------------------------------------------------------------------------------------------- response
@pytest.mark.parametrize("column", COLS)
def test_each_unit_responds_to_its_own_movement(column):
    k = COLS.index(column)
    res = actions.analyse(deform(NEUTRAL, column, 2.0))
    assert res.intensity[0, k] == pytest.approx(2.0, abs=1e-6)
    assert res.present[0, k]
    allowed = COMPANIONS.get(column, set())
    others = {c: float(res.intensity[0, j]) for j, c in enumerate(COLS) if j != k and c not in allowed}
    loud = {c: v for c, v in others.items() if v > 0.25}
    assert not loud, f"{column} also moved {loud}"


# ---------------------------------------------------------------------------------------------- pose
def smile(times: float = 2.0) -> np.ndarray:
    mesh = deform(NEUTRAL, "au12_lip_corner_puller_l", times)
    return deform(mesh, "au12_lip_corner_puller_r", times)


def test_pose_invariance_of_a_smile():
    face = smile()
    frontal = analyse_image(to_image(face)).intensity[0]
    assert frontal[COLS.index("au12_lip_corner_puller_l")] == pytest.approx(2.0, abs=0.05)
    posed = np.stack([to_image(face, yaw, pitch, roll)
                      for yaw in (-20, 0, 20) for pitch in (-20, 0, 20) for roll in (0, 15)])
    res = analyse_image(posed)
    worst = np.abs(res.intensity - frontal).max()
    assert worst <= POSE_TOLERANCE, f"a head turn changed an intensity by {worst:.3f}"
    assert res.present[:, COLS.index("au12_lip_corner_puller_r")].all()
    # and the distance to the camera does not matter
    far = from_canonical_frame(face, 10, 5, 0, 8.0, (100, 100))
    np.testing.assert_allclose(analyse_image(far).intensity[0], frontal, atol=1e-6)


def perspective_image(canonical: np.ndarray, yaw: float, pitch: float, roll: float, distance_cm: float) -> np.ndarray:
    """Pinhole projection of a canonical-frame face whose centre is ``distance_cm`` from the camera
    (30 px per cm at that distance); depth kept in the mesh's style (pixels, into the scene)."""
    cam = canonical @ rotation_from_euler(yaw, pitch, roll).T
    focal = 30.0 * distance_cm
    depth = distance_cm - cam[:, 2]
    return np.stack([320 + focal * cam[:, 0] / depth, 240 - focal * cam[:, 1] / depth, -30.0 * cam[:, 2]], 1)


def test_pose_invariance_under_perspective():
    face = smile()
    frontal = analyse_image(perspective_image(face, 0, 0, 0, 60.0))
    posed = np.stack([perspective_image(face, yaw, pitch, 0, 60.0) for yaw in (-20, 0, 20) for pitch in (-20, 0, 20)])
    res = analyse_image(posed)
    worst = np.abs(res.intensity - frontal.intensity).max()
    assert worst <= PERSPECTIVE_TOLERANCE, f"a head turn changed an intensity by {worst:.3f}"
    assert (res.present == frontal.present).all()


# ---------------------------------------------------------------------------------------------- face size
# Heights only (docs/action_units.md, "Size removed"): those above the eyes are shares of the upper
# face's height (top of the forehead 10 to nose base 2), the others stay in the canonical frame's
# centimetres, where the pose fit has already scaled the whole face; AU15, AU20 and AU23 have a
# lateral part and use the IOD.
ABOVE_THE_EYES = {1, 2, 4, 5, 43}
VERTICAL_UNITS = ABOVE_THE_EYES | {6, 7, 9, 10, 12, 14, 24, 25, 26}


def test_eye_spacing_does_not_move_vertical_units():
    wide = NEUTRAL.copy()
    eyes = [33, 133, 263, 362]
    wide[eyes, 0] += 0.3 * np.sign(wide[eyes, 0])  # eye centres 0.6 cm (about 10%) further apart, heights kept
    change = actions.analyse(wide).change[0]
    vertical = [k for k, u in enumerate(UNITS) if u.number in VERTICAL_UNITS]
    np.testing.assert_allclose(change[vertical], 0, atol=1e-9)
    lateral = [k for k, u in enumerate(UNITS) if u.number in (20, 23)]  # widths measured against the IOD
    assert (np.abs(change[lateral]) > 1e-3).all()


def test_a_taller_upper_face_does_not_move_the_brows_or_lids():
    tall = NEUTRAL.copy()
    above = tall[:, 1] > tall[2, 1]  # everything above the nose base, 10% taller: same face, other proportions
    tall[above, 1] = tall[2, 1] + 1.1 * (tall[above, 1] - tall[2, 1])
    change = actions.analyse(tall).change[0]
    brows_and_lids = [k for k, u in enumerate(UNITS) if u.number in ABOVE_THE_EYES]
    np.testing.assert_allclose(change[brows_and_lids], 0, atol=1e-9)


def test_a_cheek_pushing_up_the_outer_lower_lid_is_not_a_lid_tightener():
    k = [COLS.index("au07_lid_tightener_l"), COLS.index("au07_lid_tightener_r")]
    cheek, lid = NEUTRAL.copy(), NEUTRAL.copy()
    mirror = canonical_face().mirror
    outer_half, inner_half = [7, 163, 144, 145], [153, 154, 155]
    rise = 3 * REF.thresholds[k[0]]  # cm: AU7 stays in the canonical frame's centimetres
    cheek[outer_half + [int(mirror[i]) for i in outer_half], 1] += rise
    lid[inner_half + [int(mirror[i]) for i in inner_half], 1] += rise
    assert not actions.analyse(cheek).present[0, k].any()
    assert actions.analyse(lid).present[0, k].all()


def test_the_lower_lip_bulging_up_is_not_a_lip_corner_depressor():
    # a chin raiser pushes the lower lip's outer edge up; AU15 is read against the line where the lips meet
    bulge = NEUTRAL.copy()
    bulge[[17, 84, 314, 181, 405], 1] += 0.3
    k = [COLS.index("au15_lip_corner_depressor_l"), COLS.index("au15_lip_corner_depressor_r")]
    assert actions.analyse(bulge).intensity[0, k].max() == 0


def test_the_chin_boss_pushed_up_is_a_chin_raiser():
    k = COLS.index("au17_chin_raiser")
    boss = [18, 200, 199, 83, 313, 201, 421, 208, 428]  # between the lower lip's edge and the chin's tip
    nose_to_chin = NEUTRAL[2, 1] - NEUTRAL[152, 1]  # AU17 is a share of this height
    raised = NEUTRAL.copy()
    raised[boss, 1] += 2 * REF.thresholds[k] * nose_to_chin  # the lower lip stays where it was
    assert actions.analyse(raised).intensity[0, k] == pytest.approx(2.0, abs=1e-6)


def test_a_lip_corner_pulled_back_into_the_cheek_is_a_dimpler():
    k = [COLS.index("au14_dimpler_l"), COLS.index("au14_dimpler_r")]
    depth = 2 * REF.thresholds[k[0]]  # cm: AU14 stays in the canonical frame's centimetres
    dimpled, pushed_back = NEUTRAL.copy(), NEUTRAL.copy()
    dimpled[[61, 291], 2] -= depth  # the corners sink behind the cheek beside them
    cheek = [212, int(canonical_face().mirror[212])]
    pushed_back[[61, 291] + cheek, 2] -= depth  # corner and cheek move back together: no dimple
    np.testing.assert_allclose(actions.analyse(dimpled).intensity[0, k], 2.0, atol=1e-6)
    assert actions.analyse(pushed_back).intensity[0, k].max() == 0


def test_the_nose_tip_drawn_up_is_part_of_the_nose_wrinkle():
    k = COLS.index("au09_nose_wrinkler")
    wings_and_tip = [98, 64, 327, 294, 1]
    lifted, tip_only = NEUTRAL.copy(), NEUTRAL.copy()
    lifted[wings_and_tip, 1] += 2 * REF.thresholds[k]
    tip_only[1, 1] += 2 * REF.thresholds[k]
    assert actions.analyse(lifted).intensity[0, k] == pytest.approx(2.0, abs=1e-6)
    assert actions.analyse(tip_only).intensity[0, k] == pytest.approx(2.0 / len(wings_and_tip), abs=1e-6)

# ---------------------------------------------------------------------------------------------- mirror
def test_mirror_image_swaps_left_and_right():
    face = deform(deform(deform(NEUTRAL, "au12_lip_corner_puller_l", 2.5), "au02_outer_brow_raiser_r", 1.5),
                  "au43_eyes_closed_l", 3.0)
    image = to_image(face, yaw=12, pitch=-6, roll=4)
    original = analyse_image(image)
    mirrored = analyse_image(mirror_image(image))
    swap = [COLS.index(re.sub(r"_([lr])$", lambda m: "_r" if m[1] == "l" else "_l", c)) for c in COLS]
    # the canonical face is mirror-symmetric to ~1e-5 cm, so the pose fits agree to ~1e-7
    np.testing.assert_allclose(mirrored.raw[0], original.raw[0][swap], atol=1e-5)
    assert mirrored.present[0, COLS.index("au12_lip_corner_puller_r")]
    assert not mirrored.present[0, COLS.index("au12_lip_corner_puller_l")]
    assert mirrored.present[0, COLS.index("au43_eyes_closed_r")]


# ---------------------------------------------------------------------------------------------- baseline
def test_per_person_baseline():
    person = deform(deform(NEUTRAL, "au12_lip_corner_puller_l", 1.5), "au12_lip_corner_puller_r", 1.5)
    k = COLS.index("au12_lip_corner_puller_l")
    # at rest, this person's corners sit high: the population neutral calls that a smile, their own does not
    assert actions.analyse(person).present[0, k]
    own = actions.analyse(person, baseline=person)
    assert own.baseline == "person" and not own.present.any()
    # a movement away from their own neutral is measured as the movement itself
    moving = deform(person, "au25_lips_part", 2.0)
    k25 = COLS.index("au25_lips_part")
    assert actions.analyse(moving, baseline=person).intensity[0, k25] == pytest.approx(2.0, abs=0.05)
    # measures (K,), per-face (N, K) and meshes (N, 468, 3) are all accepted
    base_raw = actions.measures(person)[0]
    batch = np.stack([moving, person])
    a = actions.analyse(batch, baseline=base_raw)
    b = actions.analyse(batch, baseline=np.stack([base_raw, base_raw]))
    c = actions.analyse(batch, baseline=np.stack([person, person]))
    np.testing.assert_allclose(a.change, b.change, atol=1e-12)
    np.testing.assert_allclose(a.change, c.change, atol=1e-12)
    with pytest.raises(ValueError, match="baseline"):
        actions.analyse(batch, baseline=np.zeros(7))


# ---------------------------------------------------------------------------------------------- pictures
def test_pictures():
    from mien import actions_plot
    image = to_image(smile(3.0))
    res = analyse_image(image)
    rgb = np.full((480, 640, 3), 90, np.uint8)
    out = actions_plot.draw_units(rgb, image, res.units, res.intensity[0])
    assert out.shape == rgb.shape and out.dtype == np.uint8 and (out != rgb).any()
    assert (rgb == 90).all()  # input untouched
    assert (actions_plot.draw_units(rgb, image, res.units, np.zeros(len(res.units))) == rgb).all()  # nothing present
    chart = actions_plot.intensity_chart(res.units, res.intensity[0], res.present[0], title=("a.png, face 0",))
    assert chart.ndim == 3 and chart.shape[2] == 3 and chart.dtype == np.uint8


# ---------------------------------------------------------------------------------------------- real faces
def test_smiling_ferplus_faces_move_their_lip_corners():
    folder = DATA / "ferplus" / "data" / "FER2013Valid"
    if not (folder / "label.csv").exists():
        pytest.skip(f"FERPlus data not found at {folder} (../shared/data relative to the repository)")
    import cv2
    from oracle_inputs import upscale_with_border
    from mien.analyzer import Analyzer, Options

    rows = [line.split(",") for line in (folder / "label.csv").read_text().splitlines()]
    votes = {r[0]: [int(v) for v in r[-10:]] for r in rows}  # neutral, happiness, ... (box is quoted)
    happy = [name for name, v in votes.items() if v[1] >= 9][:12]
    neutral = [name for name, v in votes.items() if v[0] >= 9][:12]
    analyzer = Analyzer(Options(detector="short", iris=False))

    def au12(names):
        meshes = []
        for name in names:
            batch = analyzer.analyze(upscale_with_border(cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)))
            if len(batch.scores):
                meshes.append(batch.landmarks[0])
        res = analyse_image(np.stack(meshes))
        cols = [COLS.index("au12_lip_corner_puller_l"), COLS.index("au12_lip_corner_puller_r")]
        return res.change[:, cols].mean(1)

    h, n = au12(happy), au12(neutral)
    threshold = REF.thresholds[COLS.index("au12_lip_corner_puller_l")]
    assert np.median(h) > np.median(n) + 0.4 * threshold


# ---------------------------------------------------------------------------------------------- impossible pairs
def column_intensities(**values) -> np.ndarray:
    row = np.zeros((1, len(COLS)))
    for column, v in values.items():
        row[0, COLS.index(column)] = v
    return row


def resolved(**values) -> set[str]:
    intensity = column_intensities(**values)
    present = actions.resolve_exclusive(intensity, intensity >= 1)
    return {c for c, p in zip(COLS, present[0]) if p}


def test_incompatible_units_resolve_to_the_stronger():
    assert resolved(au12_lip_corner_puller_l=2.0, au15_lip_corner_depressor_l=1.5) == {"au12_lip_corner_puller_l"}
    assert resolved(au12_lip_corner_puller_l=1.2, au15_lip_corner_depressor_l=1.5) == {"au15_lip_corner_depressor_l"}
    assert resolved(au05_upper_lid_raiser_r=1.1, au43_eyes_closed_r=3.0) == {"au43_eyes_closed_r"}
    assert resolved(au17_chin_raiser=1.4, au26_jaw_drop=1.2) == {"au17_chin_raiser"}
    for opening in ("au25_lips_part", "au26_jaw_drop", "au27_mouth_stretch"):
        assert resolved(au24_lip_pressor=1.3, **{opening: 2.0}) == {opening}
        assert resolved(au24_lip_pressor=2.3, **{opening: 2.0}) == {"au24_lip_pressor"}


def test_sides_are_resolved_separately_and_compatible_units_kept():
    # a corner up on one side and down on the other is an asymmetric face, not a contradiction
    both = {"au12_lip_corner_puller_l", "au15_lip_corner_depressor_r"}
    assert resolved(au12_lip_corner_puller_l=2.0, au15_lip_corner_depressor_r=1.5) == both
    assert resolved(au25_lips_part=2.0, au26_jaw_drop=1.5, au27_mouth_stretch=1.2) == {
        "au25_lips_part", "au26_jaw_drop", "au27_mouth_stretch"}


def test_resolution_keeps_what_the_strongest_allows():
    # AU25 beats AU24, so AU24 no longer blocks the weaker AU26: the answer does not depend on order
    assert resolved(au25_lips_part=3.0, au24_lip_pressor=2.0, au26_jaw_drop=1.5) == {"au25_lips_part", "au26_jaw_drop"}
    # below the threshold nothing is present, and nothing below it blocks anything
    assert resolved(au24_lip_pressor=0.9, au25_lips_part=1.1) == {"au25_lips_part"}


def test_analyse_never_reports_an_impossible_pair():
    pressed_and_open = deform(deform(NEUTRAL, "au24_lip_pressor", 4.0), "au25_lips_part", 1.5)
    res = actions.analyse(pressed_and_open)
    k24, k25 = COLS.index("au24_lip_pressor"), COLS.index("au25_lips_part")
    assert res.intensity[0, k24] >= 1 and res.intensity[0, k25] >= 1
    assert res.present[0, k24] and not res.present[0, k25]
    assert res.overruled[0, k25] and not res.overruled[0, k24]
    conflicts = actions.exclusive_matrix()
    assert conflicts.T.tolist() == conflicts.tolist() and not conflicts.diagonal().any()


def test_sample_photo_shows_no_contradictory_pair(astronaut):
    from mien.analyzer import Analyzer
    present = Analyzer().analyze(astronaut).actions.present
    assert len(present) and present[0].any()
    assert not (actions.exclusive_matrix() & present[0][:, None] & present[0][None, :]).any()


# ---------------------------------------------------------------------------------------------- validity
def test_each_description_carries_the_measured_coder_auc():
    shipped = actions.validity()["ckplus48"]["units"]
    meanings = {c: m for c, _, m in actions.column_table()}
    for u in UNITS:
        row = shipped.get(f"AU{u.number}")
        meaning = meanings[u.column]
        if row is not None and row["auc"] is not None:
            assert f"AUC {row['auc']:.2f} against FACS coders" in meaning
            assert actions.is_experimental(u) == (row["auc"] < actions.VALIDATED_AUC or u.reliability == "experimental")
        assert ("experimental" in meaning) == actions.is_experimental(u)
        assert (u.column in actions.validated_columns()) == (not actions.is_experimental(u))


def test_a_unit_below_the_bar_is_experimental_and_left_out():
    coders = {"units": {"AU12": {"auc": 0.95}, "AU15": {"auc": 0.62}, "AU43": {"auc": None}}}
    by_column = {u.column: u for u in UNITS}
    assert actions.is_experimental(by_column["au15_lip_corner_depressor_l"], coders)
    assert not actions.is_experimental(by_column["au12_lip_corner_puller_l"], coders)
    assert not actions.is_experimental(by_column["au43_eyes_closed_l"], coders)  # not measured: not marked
    kept = actions.validated_columns(coders)
    assert "au12_lip_corner_puller_r" in kept and "au15_lip_corner_depressor_r" not in kept


def test_annotated_video_labels_leave_experimental_units_out():
    from mien.annotate import video_labels
    from mien.faces import Faces
    from dataclasses import replace

    from mien.perceived import Perceived
    experimental = [c for c in COLS if c not in actions.validated_columns()]
    assert experimental, "the shipped figures mark at least one unit experimental"
    present = np.zeros((1, len(COLS)), bool)
    present[0, [COLS.index(experimental[0]), COLS.index("au12_lip_corner_puller_l")]] = True
    units = actions.analyse(np.zeros((1, 468, 3)))
    faces = Faces(boxes=np.zeros((1, 4), np.float32), scores=np.ones(1, np.float32), track_ids=np.array([3]),
                  actions=replace(units, present=present),
                  perceived=Perceived(np.eye(8, dtype=np.float32)[[1]], ("happiness",), np.ones(1), np.zeros(1), ("",)))
    assert video_labels(faces) == ["track 3 AU12 | seen as happiness"]
