"""Per-track neutral in video (mien.video.baseline): a steady expression is not taken for rest,
a face that rests differently from the population's is, and the estimate is plain data."""
import io
import json

import numpy as np
import pytest

from mien import actions
from mien.mesh import interocular_distance
from mien.video.baseline import POPULATION, TRACK, BaselineRule, TrackBaselines, looks_neutral

COLS = actions.columns()
REF = actions.population_neutral()
AU12 = [COLS.index("au12_lip_corner_puller_l"), COLS.index("au12_lip_corner_puller_r")]


def corners_up(times_threshold: float, noise: float = 0.0, frames: int = 1, seed: int = 0) -> np.ndarray:
    """Raw measures (frames, K) of the population neutral with both lip corners raised by
    ``times_threshold`` thresholds, plus measurement noise (in thresholds) on every unit."""
    raw = np.tile(REF.raw, (frames, 1))
    raw[:, AU12] += times_threshold * REF.thresholds[AU12]
    return raw + np.random.default_rng(seed).normal(0, noise, raw.shape) * REF.thresholds


def run_track(raw: np.ndarray, perceived_neutral, rule=BaselineRule()):
    """Feed one track frame by frame, as a video session does; returns each frame's result and baseline."""
    baselines = TrackBaselines(rule)
    results, kinds, built = [], [], []
    for i, row in enumerate(raw):
        neutral, kind, frames = baselines.baselines([7])
        results.append(actions.analyse_measures(row[None], neutral))
        kinds.append(kind[0])
        built.append(frames[0])
        share = None if perceived_neutral is None else np.array([perceived_neutral[i]])
        baselines.update([7], row[None], share, np.array([True]))
    present = np.concatenate([r.present for r in results])
    return present, kinds, built, baselines


def test_a_constant_smile_keeps_au12():
    grin = corners_up(3.0, noise=0.2, frames=300)
    for perceived in (np.full(300, 0.05), None):  # the crowd model says "not neutral", or did not run
        present, kinds, built, _ = run_track(grin, perceived)
        assert present[:, AU12].all(), "a grin held through the clip must not become the track's neutral"
        assert set(kinds) == {POPULATION} and set(built) == {0}


def laughing_grin(frames: int, corners_up_iod: float, jaw_drop_iod: float) -> np.ndarray:
    """Raw measures (frames, K) of the population neutral mesh grinning (both lip corners raised by
    ``corners_up_iod``) while the jaw opens and closes up to ``jaw_drop_iod``, as in laughing or
    talking: the lower lip and chin drop with the jaw, the corners by a third of it (as on FERPlus
    crowd-surprise faces, tools/action_unit_candidates.py)."""
    mesh = REF.mesh.astype(np.float64)
    iod = interocular_distance(mesh[None], dims=3)[0]
    corners = [61, 291]
    below_mouth = mesh[:, 1] < mesh[corners, 1].min() - 0.05 * iod
    drop = 0.5 * jaw_drop_iod * iod * (1 - np.cos(np.linspace(0, 6 * np.pi, frames)))
    meshes = np.repeat(mesh[None], frames, axis=0)
    meshes[:, corners, 1] += corners_up_iod * iod - drop[:, None] / 3
    meshes[:, below_mouth, 1] -= drop[:, None]
    return actions.measures(meshes)


def test_an_open_mouthed_grin_held_through_a_clip_keeps_au12():
    # a grin at 1.3 thresholds, the jaw opening by up to twice AU26's threshold: when AU12 was the
    # corner's height above the nose base (and the lips' midline), the widest openings took it below
    # the threshold (18% of these frames); measured from a point that follows the jaw as the corners
    # do, the grin stays a grin
    threshold = REF.thresholds[AU12[0]]
    grin = laughing_grin(90, 0.65 * threshold, 2 * REF.thresholds[COLS.index("au26_jaw_drop")])
    assert actions.analyse_measures(grin).present[:, COLS.index("au26_jaw_drop")].any()
    present, kinds, _, _ = run_track(grin, np.full(90, 0.05))
    assert present[:, AU12].all()
    assert set(kinds) == {POPULATION}


def test_corners_that_rest_high_do_not_read_as_au12_once_the_track_knows_them():
    rest = corners_up(1.5, noise=0.2, frames=300, seed=1)
    rule = BaselineRule()
    present, kinds, built, baselines = run_track(rest, np.full(300, 0.8), rule)
    assert present[: rule.min_frames, AU12].any()  # against the population neutral they look raised
    assert kinds[: rule.min_frames] == [POPULATION] * rule.min_frames
    assert set(kinds[rule.min_frames:]) == {TRACK} and built[rule.min_frames] == rule.min_frames
    assert not present[rule.min_frames:, AU12].any()
    # the same person smiling is measured from their own rest
    neutral, kind, _ = baselines.baselines([7])
    smile = actions.analyse_measures(corners_up(4.0), neutral)
    assert kind == [TRACK] and smile.present[0, AU12].all()


def test_expressive_frames_do_not_enter_the_estimate():
    rule = BaselineRule(min_frames=5)
    rest, grin = corners_up(0.0, frames=10), corners_up(5.0, frames=10)
    assert looks_neutral(rest, np.full(10, 0.9), rule).all()
    assert not looks_neutral(grin, np.full(10, 0.9), rule).any()  # moved too far from any rest
    assert not looks_neutral(rest, np.full(10, 0.2), rule).any()  # the crowd model sees an expression
    assert looks_neutral(rest, np.full(10, np.nan), rule).all()  # model not run on these frames
    mixed = np.concatenate([grin, rest])
    _, kinds, built, baselines = run_track(mixed, np.full(20, 0.9), rule)
    assert kinds[:15] == [POPULATION] * 15 and built[-1] == 5
    np.testing.assert_allclose(baselines.state[7].neutral, REF.raw, atol=1e-12)


def test_the_estimate_is_plain_data():
    _, _, _, baselines = run_track(corners_up(1.0, noise=0.1, frames=40), np.full(40, 0.9))
    arrays = baselines.to_arrays()
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{t}/{k}": v for t, r in arrays.items() for k, v in r.items()})
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as stored:
        loaded = {}
        for key in stored.files:
            t, k = key.split("/")
            loaded.setdefault(t, {})[k] = stored[key]
    again = TrackBaselines()
    again.load_arrays(json.loads(json.dumps({t: {k: np.asarray(v).tolist() for k, v in r.items()}
                                             for t, r in loaded.items()})))
    restored = again.state[7]
    assert restored.added == baselines.state[7].added == 40 and restored.built_from == 30
    np.testing.assert_array_equal(restored.neutral, baselines.state[7].neutral)
    assert again.baselines([7, 8])[1:] == ([TRACK, POPULATION], [30, 0])
    again.forget({8})
    assert not again.state


def test_bad_rule():
    with pytest.raises(ValueError, match="min_frames"):
        BaselineRule(min_frames=0)
