"""The public API: what ``import mien`` gives, the README's snippet, option and input checks."""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mien

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_snippet_runs(tmp_path, monkeypatch, astronaut, shared_data):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    Image.fromarray(astronaut).save(tmp_path / "portrait.jpg", quality=95)
    shutil.copy(shared_data / "demo/openmpf/video_01.mp4", tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert len(scope["faces"]) == 1 and scope["table"]["track"].notna().all()
    assert scope["table"]["frame"].nunique() == 90


def test_every_exported_name_resolves():
    for name in mien.__all__:
        assert getattr(mien, name) is not None
    with pytest.raises(AttributeError):
        mien.no_such_thing


@pytest.mark.parametrize("field,value", [("max_faces", -1), ("max_faces", 0), ("min_detection_score", 1.5),
                                         ("detect_every", 0), ("perceived_hz", 0), ("au_baseline", "median"),
                                         ("mode", "live"), ("detector", "far"), ("num_threads", 2.5)])
def test_options_are_checked_on_construction(field, value):
    with pytest.raises(mien.OptionsError, match=field if field not in ("mode", "detector") else repr(value)):
        mien.Options(**{field: value})
    assert issubclass(mien.OptionsError, ValueError) and issubclass(mien.OptionsError, mien.MienError)


@pytest.mark.parametrize("pixels,says", [(np.zeros((64, 64, 3), np.float32), "float32"),
                                         (np.zeros((64, 64), np.uint8), r"\(64, 64\)"),
                                         (np.zeros((64, 64, 4), np.uint8), r"\(64, 64, 4\)"),
                                         ([[1, 2, 3]], "list")])
def test_pixels_are_checked_at_the_entry_point(analyzer, pixels, says):
    with pytest.raises(mien.InputError, match=says):
        analyzer.analyze(pixels)


def test_a_path_an_array_and_a_pil_image_give_the_same_faces(analyzer, astronaut, tmp_path):
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    by_path = analyzer.analyze(tmp_path / "a.png")
    by_array = analyzer.analyze(astronaut)
    by_pil = analyzer.analyze(Image.fromarray(astronaut))
    assert by_path.source == str(tmp_path / "a.png") and by_array.source == "<array>"
    for other in (by_array, by_pil):
        np.testing.assert_array_equal(by_path.boxes, other.boxes)
        np.testing.assert_array_equal(by_path.actions.intensity, other.actions.intensity)
    with pytest.raises(mien.ImageReadError, match="not found"):
        analyzer.analyze(tmp_path / "missing.png")
    assert analyzer.analyze_file(tmp_path / "missing.png").status == "error"


def test_a_mask_selects_faces_in_every_field(analyzer, astronaut):
    pair = np.concatenate([astronaut, astronaut], axis=1)
    faces = analyzer.analyze(pair)
    assert len(faces) == 2
    right = faces[faces.boxes[:, 0] > astronaut.shape[1]]
    assert len(right) == 1 and right.perceived.top == (faces.perceived.top[1],)
    np.testing.assert_array_equal(right.landmarks[0], faces.landmarks[1])
    np.testing.assert_array_equal(right.actions.present[0], faces.actions.present[1])
    none = faces[np.zeros(2, bool)]
    assert none.status == "no_face" and len(mien.to_frame(none)) == 1
    table = mien.to_frame([faces, right, mien.Faces.failed("broken.png", "bad bytes")])
    assert list(table["face"].astype(object).where(table["face"].notna(), None)) == [0, 1, 0, None]
    assert table["error"].iloc[-1] == "bad bytes" and table["status"].iloc[-1] == "error"


def test_video_mode_needs_time_in_order(astronaut):
    video = mien.Analyzer(mien.Options(mode=mien.Mode.VIDEO, iris=False, perceived=False))
    first = video.analyze(astronaut, time_s=1.0)
    assert first.track_ids.tolist() == [0] and first.frame == 0 and first.au_baseline == ("population",)
    assert video.analyze(astronaut, time_s=1.0).frame == 1  # the same time again is allowed
    with pytest.raises(mien.TimestampError, match="backwards"):
        video.analyze(astronaut, time_s=0.5)
    with pytest.raises(mien.InputError, match="time_s"):
        video.analyze(astronaut)
    video.reset()
    assert video.analyze(astronaut, time_s=0.0).track_ids.tolist() == [0]
    with pytest.raises(mien.InputError, match="video mode"):
        mien.Analyzer(mien.Options(iris=False, perceived=False)).analyze(astronaut, time_s=0.0)


def test_a_frame_that_failed_to_decode_is_an_error_row(astronaut):
    video = mien.Analyzer(mien.Options(mode=mien.Mode.VIDEO, iris=False, perceived=False))
    faces = video.analyze(mien.Frame(7, 0.25, None, "corrupt packet"))
    assert faces.status == "error" and faces.error == "corrupt packet" and faces.frame == 7 and faces.time_s == 0.25


def test_one_table_from_faces_measured_with_different_options(analyzer, astronaut):
    video = mien.Analyzer(mien.Options(mode=mien.Mode.VIDEO, iris=False, perceived=False))
    table = mien.to_frame([analyzer.analyze(astronaut), video.analyze(astronaut, time_s=0.5), analyzer.analyze(astronaut)])
    assert table["track"].isna().tolist() == [True, False, True]
    assert table["iris_left_x"].notna().tolist() == [True, False, True]
    assert table["perceived_top"].isna().tolist() == [False, True, False]
    assert table["time_s"].tolist()[1] == 0.5
    with pytest.raises(mien.InputError, match="same measures"):
        mien.Faces.concat([analyzer.analyze(astronaut), video.analyze(astronaut, time_s=1.0)])


def test_every_error_mien_raises_on_purpose_is_a_mien_error():
    import ast
    import importlib

    root = Path(mien.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        module = "mien." + ".".join(path.relative_to(root).with_suffix("").parts).replace(".__init__", "")
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.bases:
                cls = getattr(importlib.import_module(module.removesuffix(".__init__")), node.name)
                if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, Warning):
                    found.append(cls)
    assert len(found) >= 15
    assert [c.__name__ for c in found if not issubclass(c, mien.MienError)] == []
