"""Video frames analysed in batches (``Analyzer.analyze_batch``) give what frame-by-frame analysis gives, exactly."""
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mien import Analyzer, Frame, Mode, Options, TimestampError, VideoOptions, to_frame
from mien.video.analysis import frame_batches, read_video

# 17 s with frames of no face, one face and two; a second face comes and goes
CLIP = "demo/openmpf/new_face_video-90.mp4"


def one_by_one(analyzer: Analyzer, frames: list[Frame]) -> list:
    analyzer.reset()
    return [analyzer.analyze(frame, source="clip") for frame in frames]


def in_batches(analyzer: Analyzer, frames: list[Frame], size: int) -> list:
    analyzer.reset()
    return [faces for batch in frame_batches(frames, size) for faces in analyzer.analyze_batch(batch, source="clip")]


def assert_same_faces(expected: list, actual: list) -> None:
    """The same tables, and the same float64 measures behind them (which a table rounds to float32)."""
    pd.testing.assert_frame_equal(to_frame(expected, landmarks=True), to_frame(actual, landmarks=True), check_exact=True)
    for a, b in zip(expected, actual):
        if len(a):
            assert np.array_equal(a.pose.rotation, b.pose.rotation)
            assert np.array_equal(a.actions.raw, b.actions.raw) and np.array_equal(a.actions.change, b.actions.change)
            assert np.array_equal(a.perceived.probabilities, b.perceived.probabilities)


@pytest.fixture(scope="module")
def clip_frames(shared_data) -> list[Frame]:
    return list(read_video(shared_data / CLIP))


# Batches of 7 frames start on every phase of the perceived model's every-3rd-frame sampling and of
# the detector's every-10th-frame schedule; the iris model is on by default.
@pytest.mark.parametrize("options", [{}, {"smooth": False}, {"perceived_hz": None, "iris": False}],
                         ids=["default", "unsmoothed", "perceived-every-frame"])
def test_frames_analysed_in_batches_give_the_frame_by_frame_results_exactly(clip_frames, options):
    analyzer = Analyzer(Options(mode=Mode.VIDEO, **options))
    expected = one_by_one(analyzer, clip_frames)
    assert {len(f) for f in expected} == {0, 1, 2}
    assert {k for f in expected if len(f) for k in f.au_baseline} == {"population", "track"}
    assert_same_faces(expected, in_batches(analyzer, clip_frames, 7))


def test_a_frame_that_failed_to_decode_gives_its_error_row_and_leaves_the_others_alone(clip_frames):
    frames = clip_frames[:60]
    broken = frames[:20] + [replace(frames[20], rgb=None, error="frame could not be decoded")] + frames[21:]
    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    expected = one_by_one(analyzer, broken)
    actual = in_batches(analyzer, broken, 16)
    assert actual[20].status == "error" and actual[20].error == "frame could not be decoded"
    assert (actual[20].frame, actual[20].time_s) == (frames[20].index, frames[20].time_s)
    assert_same_faces(expected, actual)


def test_a_batch_whose_time_goes_backwards_is_refused_before_any_frame_is_analysed(clip_frames):
    analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
    analyzer.analyze_batch(clip_frames[:3])
    with pytest.raises(TimestampError, match="time went backwards"):
        analyzer.analyze_batch([clip_frames[3], clip_frames[5], clip_frames[4]])
    assert analyzer.video_state.frames_seen == 3



def test_a_batch_is_let_go_of_before_the_next_one_is_read():
    import gc
    import weakref

    first: list[weakref.ref] = []
    alive_when_reading_the_next: list[bool] = []

    def frames():
        for i in range(6):
            if i == 3:
                gc.collect()
                alive_when_reading_the_next.append(any(r() is not None for r in first))
            rgb = np.zeros((4, 4, 3), np.uint8)
            if i < 3:
                first.append(weakref.ref(rgb))
            yield Frame(i, i / 30, rgb)
            del rgb

    for batch in frame_batches(frames(), 3):  # the caller keeps nothing of a batch it is done with
        del batch
    assert alive_when_reading_the_next == [False]
