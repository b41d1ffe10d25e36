"""mien audit: dataset layouts, model kinds, malformed inputs, metrics, the card and its escaping."""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mien.audit import metrics as M
from mien.audit.card import to_html, to_markdown, write_card
from mien.audit.cli import add_audit_parser
from mien.audit.datasets import DatasetError, load_dataset, load_images
from mien.audit.models import ModelError, OnnxConfigModel, PredictionsModel, load_model
from mien.audit.run import run_audit

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FER_TEST = DATA / "ferplus" / "data" / "FER2013Test"
HOSTILE = "<script>alert(1)</script>.png"  # the "/" makes "<script>alert(1)<" a folder: same relative path


# ---- helpers ---------------------------------------------------------------------------------------

def face_png(path: Path, level: int, seed: int = 0) -> None:
    """A 48x48 grey image of roughly the given mean level (synthetic; no real faces needed)."""
    rng = np.random.default_rng(seed)
    img = np.clip(level + rng.normal(0, 8, (48, 48)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def _varint(n: int) -> bytes:
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    if isinstance(value, str):
        value = value.encode()
    return _varint((num << 3) | 2) + _varint(len(value)) + value


def _tensor(name: str, arr: np.ndarray) -> bytes:
    a = np.ascontiguousarray(arr, np.float32)
    return b"".join(_field(1, int(d)) for d in a.shape) + _field(2, 1) + _field(8, name) + _field(9, a.tobytes())


def _value_info(name: str, dims) -> bytes:
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, 1) + _field(2, shape)))


def _node(op: str, inputs, outputs, **ints) -> bytes:
    attrs = b"".join(_field(5, _field(1, k) + _field(3, v) + _field(20, 2)) for k, v in ints.items())
    return b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs) + _field(4, op) + attrs


def tiny_onnx(path: Path, weights: np.ndarray, bias: np.ndarray, side: int = 8, channels: int = 1,
              softmax: bool = True, nhwc: bool = False) -> None:
    """A linear classifier x (N, C, side, side) -> Flatten -> MatMul W -> Add b [-> Softmax], written as
    ONNX protobuf bytes by hand, so the test needs no `onnx` package."""
    nodes = [_node("Flatten", ["x"], ["f"], axis=1), _node("MatMul", ["f", "W"], ["m"]),
             _node("Add", ["m", "b"], ["z" if softmax else "y"])]
    if softmax:
        nodes.append(_node("Softmax", ["z"], ["y"], axis=1))
    graph = (b"".join(_field(1, n) for n in nodes) + _field(2, "tiny") + _field(5, _tensor("W", weights))
             + _field(5, _tensor("b", bias)) + _field(11, _value_info("x", ["N", side, side, channels] if nhwc else ["N", channels, side, side]))
             + _field(12, _value_info("y", ["N", weights.shape[1]])))
    model = _field(1, 8) + _field(2, "mien-test") + _field(7, graph) + _field(8, _field(2, 13))
    path.write_bytes(model)


FER7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def brightness_model(tmp: Path, **cfg) -> Path:
    """7-class model: bright faces -> happy, dark faces -> sad (input scaled to [-1, 1])."""
    w = np.zeros((64, 7), np.float32)
    w[:, 3], w[:, 4] = 10 / 64, -10 / 64
    tiny_onnx(tmp / "tiny.onnx", w, np.zeros(7, np.float32))
    config = {"name": "tiny <b>model</b>", "onnx": "tiny.onnx", "input_size": [8, 8], "color": "grey",
              "scale": 1 / 255, "mean": [0.5], "std": [0.5], "output": "probabilities", "classes": FER7}
    config.update(cfg)
    path = tmp / "tiny.json"
    path.write_text(json.dumps(config))
    return path


def folders_dataset(root: Path) -> Path:
    for i in range(4):
        face_png(root / "happy" / f"h{i}.png", 220, i)
        face_png(root / "sadness" / f"s{i}.png", 30, 10 + i)
    face_png(root / "sad" / HOSTILE, 200, 99)  # bright: the model calls it happy, so it is listed as an error
    face_png(root / "anger" / "<img src=x onerror=alert(2)>.png", 210, 98)
    (root / "happy" / "notes.txt").write_text("not an image")
    return root


def ferplus_dataset(root: Path) -> Path:
    """A FERPlus-shaped tree: <root>/data/FER2013Test/{label.csv, *.png} and <root>/extras/."""
    split = root / "data" / "FER2013Test"
    rows = [("fer0000001.png", 220, [0, 9, 1, 0, 0, 0, 0, 0, 0, 0]),
            ("fer0000002.png", 30, [0, 0, 0, 8, 2, 0, 0, 0, 0, 0]),
            ("fer0000003.png", 210, [3, 6, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("fer0000004.png", 40, [2, 0, 0, 7, 0, 0, 1, 0, 0, 0]),
            ("fer0000005.png", 128, [4, 4, 0, 0, 0, 0, 0, 0, 2, 0]),  # no majority: left out
            ("fer0000006.png", 225, [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),
            ("fer0033120.png", 128, [5, 0, 0, 0, 0, 0, 0, 0, 3, 2])]  # excluded by name
    split.mkdir(parents=True)
    with open(split / "label.csv", "w", newline="") as f:
        w = csv.writer(f)
        for i, (name, level, votes) in enumerate(rows):
            face_png(split / name, level, i)
            w.writerow([name, "(0, 0, 48, 48)", *votes])
    (root / "extras").mkdir(parents=True, exist_ok=True)
    with open(root / "extras" / "ferplus_to_fer2013.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ferplus_name", "ferplus_split", "pixel_identical_group_id"])
        w.writerows([["fer0000001.png", "Test", "7"], ["fer0000999.png", "Train", "7"],
                     ["fer0000003.png", "Test", "8"], ["fer0000006.png", "Test", "8"],
                     ["fer0000002.png", "Test", "9"]])
    return split


# ---- metrics on hand-made arrays -----------------------------------------------------------------------

def onehot(idx, p=1.0):
    out = np.full((len(idx), 8), (1 - p) / 7)
    out[np.arange(len(idx)), idx] = p
    return out


def test_majority_protocol():
    votes = np.array([[0, 9, 1, 0, 0, 0, 0, 0, 0, 0],   # happiness
                      [4, 4, 0, 0, 0, 0, 0, 0, 2, 0],   # tie: not kept
                      [1, 0, 0, 0, 0, 0, 0, 0, 6, 3],   # unknown on top: not kept
                      [5, 1, 1, 1, 1, 1, 0, 0, 0, 0],   # single votes dropped: 5 of 5 -> neutral
                      [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]])  # no votes
    assert M.majority_labels(votes).tolist() == [1, -1, -1, 0, -1]


def test_accuracy_recall_uar_confusion():
    y = np.array([0, 0, 0, 1, 2, 2])
    p = onehot([0, 0, 1, 1, 2, 0], 0.9)
    assert M.accuracy(p, y) == pytest.approx(4 / 6)
    r = M.per_class_recall(p, y)
    assert r[:3].tolist() == pytest.approx([2 / 3, 1.0, 0.5]) and np.isnan(r[3:]).all()
    assert M.uar(p, y) == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert M.uar(p, y, classes=[0, 1]) == pytest.approx((2 / 3 + 1) / 2)
    cm = M.confusion_matrix(p, y)
    assert cm[0, 0] == 2 and cm[0, 1] == 1 and cm[2, 0] == 1 and cm.sum() == 6
    assert M.accuracy(p, np.array([0, -1, -1, 1, -1, -1])) == 1.0  # -1: no label, left out


def test_ece_by_hand():
    # 4 images at confidence 0.9 (3 right), 2 at 0.6 (both wrong): ECE = 4/6*|0.75-0.9| + 2/6*|0-0.6|
    y = np.array([0, 0, 0, 0, 1, 1])
    p = onehot([0, 0, 0, 1, 0, 0], 0.9)
    p[4:] = onehot([0, 0], 0.6)
    assert M.ece(p, y) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.6)
    bins = M.reliability_bins(p, y)
    assert bins[8]["count"] == 4 and bins[5]["count"] == 2  # (0.8, 0.9] and (0.5, 0.6]
    assert M.ece(onehot([0, 1], 1.0), np.array([0, 1])) == 0.0


def test_kl_by_hand():
    crowd = np.zeros((2, 8))
    crowd[0, :2] = [0.5, 0.5]
    crowd[1, 0] = 1.0
    probs = np.zeros((2, 8))
    probs[0, :2] = [0.25, 0.75]
    probs[1, :2] = [0.5, 0.5]
    expected0 = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    kl = M.kl_per_image(crowd, probs)
    assert kl[0] == pytest.approx(expected0, abs=1e-5) and kl[1] == pytest.approx(np.log(2), abs=1e-5)
    # a class the model cannot output costs a large, finite penalty (floor 1e-6)
    assert np.isfinite(M.kl_per_image(crowd[1:], probs[:1][:, ::-1] * 0 + onehot([1]))).all()


def test_single_annotator_leave_one_out_with_ties():
    votes = np.zeros((3, 10), int)
    votes[0, :2] = [9, 1]          # 9 neutral votes: others' top neutral (1 each); the happy vote: others 9 neutral -> 0
    votes[1, :2] = [6, 4]          # neutral vote: others 5 vs 4 -> right; happy vote: others 6 vs 3 -> wrong
    votes[2, :3] = [5, 4, 1]       # neutral: others 4-4 tie -> 1/2; happy: 5-3 -> 0; surprise: 5-4 -> 0
    s = M.single_annotator_scores(votes)
    assert s[0] == pytest.approx(0.9) and s[1] == pytest.approx(0.6) and s[2] == pytest.approx(5 * 0.5 / 10)
    base = M.single_annotator_baseline(votes)
    assert base["images"] == 3 and base["accuracy"] == pytest.approx((0.9 + 0.6 + 0.25) / 3)
    assert base["accuracy_ties_wrong"] == pytest.approx((0.9 + 0.6 + 0) / 3)
    assert base["accuracy_ties_right"] == pytest.approx((0.9 + 0.6 + 0.5) / 3)
    assert base["per_class_recall"]["neutral"] == pytest.approx(base["accuracy"])


def test_risk_coverage_and_bootstrap():
    y = np.array([0, 0, 0, 0])
    p = onehot([0, 0, 1, 1], 0.5)
    p[0] = onehot([0], 0.99)[0]
    p[2] = onehot([1], 0.9)[0]
    rc = M.risk_coverage(p, y)
    assert rc["coverage"] == [0.25, 0.5, 1.0]  # the two 0.5 answers go together
    assert rc["risk"] == pytest.approx([0.0, 0.5, 0.5])
    assert rc["aurc"] == pytest.approx(0.25 * 0 + 0.25 * 0.5 + 0.5 * 0.5)
    lo, hi = M.bootstrap_mean_ci(np.r_[np.ones(70), np.zeros(30)], samples=500)
    assert lo < 0.7 < hi and hi - lo < 0.25
    lo, hi = M.wilson_interval(7, 10)
    assert lo == pytest.approx(0.3968, abs=1e-3) and hi == pytest.approx(0.8922, abs=1e-3)


def test_missing_predictions_count_as_wrong_and_leave_calibration():
    y = np.array([0, 0, 1, 1])
    p = onehot([0, 0, 1, 0], 0.9)
    p[1] = np.nan  # no prediction
    assert M.top_classes(p).tolist() == [0, -1, 1, 0] and M.answered(p).tolist() == [True, False, True, True]
    assert M.accuracy(p, y) == pytest.approx(2 / 4)
    assert M.per_class_recall(p, y)[:2].tolist() == pytest.approx([0.5, 0.5])
    assert M.confusion_matrix(p, y).sum() == 3 and M.no_prediction_counts(p, y)[0] == 1
    assert M.ece(p, y) == pytest.approx(abs(2 / 3 - 0.9))  # over the three answered images
    h = M.headline(p, y, samples=20)
    assert h["coverage"] == 0.75 and h["no_prediction_per_class"]["neutral"] == 1 and h["accuracy"] == 0.5
    assert h["risk_coverage"]["coverage"][-1] == 1.0  # the curve is over the answered images


# ---- datasets ----------------------------------------------------------------------------------------

def test_ferplus_layout_with_duplicates(tmp_path):
    split = ferplus_dataset(tmp_path / "ferplus")
    ds = load_dataset(split)
    assert ds.layout == "ferplus" and ds.framing == "fer2013"
    assert "fer0033120.png" not in ds.names and len(ds) == 6
    assert ds.labels.tolist() == [1, 3, 1, 3, -1, 1]
    assert ds.duplicate.tolist() == [True, False, False, False, False, False]  # a copy in Train
    assert ds.groups.tolist()[:3] == ["7", "9", "8"]
    assert load_dataset(tmp_path / "ferplus").root == split  # the FERPlus root means Test
    assert load_images(ds)[0].shape == (48, 48, 3)


def test_folders_layout(tmp_path):
    ds = load_dataset(folders_dataset(tmp_path / "faces"))
    assert ds.layout == "folders" and not ds.has_votes and len(ds) == 10
    assert "sad/" + HOSTILE in ds.names
    assert sorted(set(ds.labels.tolist())) == [1, 3, 4]
    assert any("without an image suffix" in n for n in ds.notes)


def test_csv_layouts(tmp_path):
    for i, level in enumerate((220, 30, 200)):
        face_png(tmp_path / "img" / f"{i}.png", level, i)
    (tmp_path / "labels.csv").write_text("path,label,duplicate_group,duplicate\nimg/0.png,happy,a,true\n"
                                         "img/1.png,Sadness,a,false\nimg/2.png,happiness,,0\n")
    ds = load_dataset(tmp_path / "labels.csv")
    assert ds.layout == "csv" and ds.labels.tolist() == [1, 3, 1] and ds.duplicate.tolist() == [True, False, False]
    (tmp_path / "votes.csv").write_text("file,neutral,happy,sad,unknown\nimg/0.png,1,8,0,1\nimg/1.png,2,0,7,1\n"
                                        "img/2.png,4,4,0,2\n")
    ds = load_dataset(tmp_path / "votes.csv")
    assert ds.has_votes and ds.labels.tolist() == [1, 3, -1] and ds.votes.shape == (3, 9)


def labels_folder(root: Path, label_column: str = "posed_as") -> Path:
    """A crossval-shaped dataset: <root>/labels.csv naming files in <root>/images/, no neutral, no contempt."""
    rows = [("a.png", "happy", 220), ("b.png", "sadness", 30), ("c.png", "surprised", 200), ("d.png", "sad", 40)]
    for i, (name, _, level) in enumerate(rows):
        face_png(root / "images" / name, level, i)
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", label_column, "subject", "AU12"])
        w.writerows([(name, label, "S1", 0) for name, label, _ in rows])
    return root


def test_labels_csv_folder_like_crossval(tmp_path):
    ds = load_dataset(labels_folder(tmp_path / "ckplus_like"))
    assert ds.layout == "csv" and ds.name == "ckplus_like" and not ds.has_votes
    assert ds.labels.tolist() == [1, 3, 2, 3] and ds.paths[0] == tmp_path / "ckplus_like" / "images" / "a.png"
    result = run_audit(ds, OnnxConfigModel(brightness_model(tmp_path)), robustness=False, strata=False, samples=20)
    assert result.dataset.classes_absent == ["neutral", "anger", "disgust", "fear", "contempt"]
    assert result.headline.uar == pytest.approx((1 + 0 + 1) / 3)  # over happiness, surprise, sadness only
    assert "No scored image is labelled neutral, anger" in to_markdown(result)
    assert any("No image is labelled neutral" in b for b in result.breaks)
    jaffe_like = labels_folder(tmp_path / "jaffe_like", "posed_expression")
    assert load_dataset(jaffe_like).labels.tolist() == [1, 3, 2, 3]
    (jaffe_like / "labels.csv").write_text("image,posed,label\na.png,happy,sad\n")
    with pytest.raises(DatasetError, match="several columns hold class names"):
        load_dataset(jaffe_like)
    assert load_dataset(jaffe_like, label_column="label").labels.tolist() == [3]
    with pytest.raises(DatasetError, match="no column 'mood'"):
        load_dataset(jaffe_like, label_column="mood")


@pytest.mark.parametrize("case, content, message", [
    ("missing image", "path,label\nimg/0.png,happy\nimg/nope.png,sad\n", "row 3: image"),
    ("unknown class", "path,label\nimg/0.png,happy\nimg/1.png,joyful\n", "row 3: label 'joyful'"),
    ("bad row", "path,label\nimg/0.png,happy\nimg/1.png,sad,extra\n", "row 3: expected 2 fields"),
    ("bad vote", "path,neutral,happy\nimg/0.png,1,x\n", "row 2: column 'happy'"),
    ("negative vote", "path,neutral,happy\nimg/0.png,1,-2\n", "row 2: column 'happy': negative"),
    ("no path", "picture,label\nimg/0.png,happy\n", "row 1 (header): no path column"),
    ("twice", "path,label\nimg/0.png,happy\nimg/0.png,sad\n", "row 3: 'img/0.png' is listed twice"),
])
def test_csv_malformed(tmp_path, case, content, message):
    for i in range(2):
        face_png(tmp_path / "img" / f"{i}.png", 100, i)
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    with pytest.raises(DatasetError) as err:
        load_dataset(manifest)
    assert str(manifest) in str(err.value) and message in str(err.value), case


@pytest.mark.parametrize("case, row, message", [
    ("wrong vote count", ["fer0000001.png", "(0, 0, 48, 48)", 0, 9, 1, 0, 0, 0, 0, 0, 0], "row 8: expected 12 fields"),
    ("not a number", ["fer0000001.png", "(0, 0, 48, 48)", 0, 9, 1, 0, 0, 0, 0, 0, 0, "x"], "row 8: vote counts"),
    ("missing image", ["fer0009999.png", "(0, 0, 48, 48)", 0, 9, 1, 0, 0, 0, 0, 0, 0, 0], "row 8: image"),
])
def test_ferplus_malformed(tmp_path, case, row, message):
    split = ferplus_dataset(tmp_path / "ferplus")
    with open(split / "label.csv", "a", newline="") as f:
        csv.writer(f).writerow(row)
    with pytest.raises(DatasetError) as err:
        load_dataset(split)
    assert "label.csv" in str(err.value) and message in str(err.value), case


def test_folders_unknown_class_and_empty(tmp_path):
    face_png(tmp_path / "a" / "joyful" / "0.png", 100)
    with pytest.raises(DatasetError, match="joyful"):
        load_dataset(tmp_path / "a")
    (tmp_path / "b" / "happy").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images"):
        load_dataset(tmp_path / "b")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "c" / "happy").mkdir(parents=True)
    (tmp_path / "c" / "happy" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png: not an image file"):
        load_images(load_dataset(tmp_path / "c"))
    cv2.imwrite(str(tmp_path / "c" / "happy" / "broken.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(DatasetError, match=r"broken\.png: image is 10x10 pixels"):  # mien's one reader, its limits
        load_images(load_dataset(tmp_path / "c"))


# ---- models ---------------------------------------------------------------------------------------------

def test_mien_model_gives_distributions(tmp_path):
    ds = load_dataset(folders_dataset(tmp_path / "faces"))
    model = load_model("mien")
    p = model.predict(load_images(ds), ds.names)
    assert p.shape == (len(ds), 8) and np.allclose(p.sum(1), 1, atol=1e-5)
    big = [cv2.resize(im, (96, 96)) for im in load_images(ds)[:2]]  # other sizes are resized to 48x48
    assert model.predict(big, ds.names[:2]).shape == (2, 8)


def test_onnx_config_model(tmp_path):
    cfg = brightness_model(tmp_path)
    model = OnnxConfigModel(cfg)
    assert model.classes_out == (0, 1, 2, 3, 4, 5, 6)  # no contempt output
    bright = np.full((48, 48, 3), 230, np.uint8)
    dark = np.full((48, 48, 3), 20, np.uint8)
    p = model.predict([bright, dark], ["a", "b"])
    assert p.argmax(1).tolist() == [1, 3] and np.allclose(p.sum(1), 1) and (p[:, 7] == 0).all()
    # logits output, colour input (NHWC) and a class mapped to null (dropped, rest renormalised)
    w = np.zeros((8 * 8 * 3, 7), np.float32)
    w[:, 0] = 1.0
    tiny_onnx(tmp_path / "rgb.onnx", w, np.zeros(7, np.float32), channels=3, softmax=False, nhwc=True)
    cfg2 = tmp_path / "rgb.json"
    cfg2.write_text(json.dumps({"onnx": "rgb.onnx", "input_size": [8, 8], "color": "bgr", "layout": "NHWC",
                                "output": "logits", "classes": ["joy", *FER7[1:]], "mapping": {"joy": None}}))
    m2 = OnnxConfigModel(cfg2)
    assert 4 not in m2.classes_out and any("joy" in n for n in m2.notes)  # nothing maps to anger
    p = m2.predict([bright], ["a"])
    assert p[0, 4] == 0 and np.allclose(p[0, [0, 1, 2, 3, 5, 6]], 1 / 6)


@pytest.mark.parametrize("edit, message", [
    ({"classes": ["joyful", *FER7[1:]]}, "'joyful' is not one of mien's classes"),
    ({"classes": FER7[:6]}, "7 outputs but 6 classes"),
    ({"color": "hsv"}, "color must be"),
    ({"onnx": "missing.onnx"}, "cannot load"),
    ({"mapping": {"angry": "rage"}}, "'rage' is not one of"),
])
def test_onnx_config_malformed(tmp_path, edit, message):
    cfg = brightness_model(tmp_path, **edit)
    with pytest.raises(ModelError) as err:
        OnnxConfigModel(cfg)
    assert str(cfg) in str(err.value) and message in str(err.value)


def test_predictions_csv_model(tmp_path):
    preds = tmp_path / "preds.csv"
    preds.write_text("path,angry,happy,sad,box_x\nhappy/h0.png,0.1,0.8,0.1,3\nsad/x.png,0.2,0.2,0.6,4\n")
    m = PredictionsModel(preds)
    assert not m.can_run and m.classes_out == (1, 3, 4) and any("box_x" in n for n in m.notes)
    p = m.predict([], ["happy/h0.png", "x.png"])  # matched by relative path, then by unique file name
    assert p.argmax(1).tolist() == [1, 3]
    p = m.predict([], ["happy/h0.png", "other.png"])  # a skipped image has no prediction: a row of NaN
    assert p[0].argmax() == 1 and np.isnan(p[1]).all() and M.top_classes(p).tolist() == [1, -1]
    with pytest.raises(ModelError, match=r"no prediction for any of the 2 dataset images .* 'a\.png'"):
        m.predict([], ["a.png", "b.png"])  # nothing matches: most likely the wrong file
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\na.png,happiness\nb.png,surprised\n")
    m = PredictionsModel(labels)
    assert m.hard_labels and m.predict([], ["a.png", "b.png"]).argmax(1).tolist() == [1, 2]


@pytest.mark.parametrize("content, message", [
    ("path,label\na.png,joyful\n", "row 2: label 'joyful'"),
    ("path,happy,sad\na.png,0.5,x\n", "row 2: probabilities must be numbers"),
    ("path,happy,sad\na.png,0,0\n", "row 2: probabilities must be finite"),
    ("path,happy,sad\na.png,0.5,0.5\na.png,0.5,0.5\n", "row 3: 'a.png' has a second"),
    ("path,score\na.png,0.5\n", "row 1 (header): needs probability columns"),
    ("path,happy,sad\na.png,0.5\n", "row 2: expected 3 fields"),
])
def test_predictions_csv_malformed(tmp_path, content, message):
    preds = tmp_path / "p.csv"
    preds.write_text(content)
    with pytest.raises(ModelError) as err:
        PredictionsModel(preds)
    assert str(preds) in str(err.value) and message in str(err.value)


def analyze_table(path: Path, root: Path) -> Path:
    """A table shaped like `mien analyze` writes: one row per face, a no_face and an error row."""
    cols = ["source", "frame", "face", "status", "error", "x", "y", "w", "h", "score", "AU12_l",
            *[f"perceived_{c}" for c in M.CLASSES], "perceived_top", "perceived_top_p"]
    def row(src, face, status, w, top):
        probs = [""] * 8 if top is None else [0.93 if k == top else 0.01 for k in range(8)]
        return [str(root / src), 0, face, status, "", 1, 1, w, w, 0.9, 0.1, *probs,
                "" if top is None else M.CLASSES[top], "" if top is None else 0.93]
    rows = [row("happy/h0.png", 0, "ok", 40, 3), row("happy/h0.png", 1, "ok", 80, 1),  # the larger face: happiness
            row("happy/h1.png", "", "no_face", "", None), row("happy/h2.png", "", "error", "", None),
            row("sadness/s0.png", 0, "ok", 50, 3)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerows(rows)
    return path


def test_mien_analyze_table_as_predictions(tmp_path):
    root = folders_dataset(tmp_path / "faces")
    ds = load_dataset(root)
    model = PredictionsModel(analyze_table(tmp_path / "faces.csv", root))
    assert "2 images with a prediction, 2 without" in model.description
    assert model.notes == ["columns ignored: frame, face, error, x, y, score, AU12_l, perceived_top, perceived_top_p"]
    p = model.predict([], ds.names, ds.paths)
    found = {n: M.top_classes(p[i:i + 1])[0] for i, n in enumerate(ds.names)}
    assert found["happy/h0.png"] == 1 and found["sadness/s0.png"] == 3
    assert found["happy/h1.png"] == -1 and found["happy/h2.png"] == -1 and found["happy/h3.png"] == -1
    result = run_audit(ds, model, robustness=True, strata=False, samples=20)
    h = result.headline
    assert h.coverage == pytest.approx(2 / 10) and h.accuracy == pytest.approx(2 / 10)
    assert h.no_prediction_per_class["happiness"] == 3 and h.images_without_prediction == 8
    assert result.robustness.skipped and "coverage 20.0%" in " ".join(result.breaks)
    assert "with a prediction for 20.0% of the images" in to_markdown(result)
    table = pd.read_csv(tmp_path / "faces.csv")
    table.to_parquet(tmp_path / "faces.parquet")  # `mien analyze -o faces.parquet` is read the same way
    from_parquet = load_model(str(tmp_path / "faces.parquet")).predict([], ds.names, ds.paths)
    assert np.array_equal(from_parquet, p, equal_nan=True)
    two = tmp_path / "two.csv"
    two.write_text("path,happy,sad\na.png,0.5,0.5\na.png,0.9,0.1\n")
    with pytest.raises(ModelError, match="several faces per image need box columns"):
        PredictionsModel(two)


def test_load_model_rejects_other_files(tmp_path):
    with pytest.raises(ModelError, match="--model is"):
        load_model(str(tmp_path / "model.onnx"))


# ---- the whole audit, the card, the command ---------------------------------------------------------------

def test_audit_ferplus_layout_end_to_end(tmp_path):
    ds = load_dataset(ferplus_dataset(tmp_path / "ferplus"))
    result = run_audit(ds, OnnxConfigModel(brightness_model(tmp_path)), strata=False, samples=50)
    h = result.headline
    assert h.images == 5 and h.accuracy == 1.0 and result.dataset.left_out_no_majority == 1
    assert h.single_annotator.images == 5 and h.kl is not None and h.coverage == 1.0
    assert result.model.classes_missing == ["contempt"]
    assert result.subsets["without_duplicates"].images == 4
    assert result.subsets["one_per_duplicate_group"].images == 4
    assert [r.key for r in result.robustness.rows][:2] == ["flip", "rotate_plus10"]
    paths = write_card(result, tmp_path / "card")
    data = json.loads(paths["json"].read_text())
    assert data == json.loads(json.dumps(result.to_dict()))
    assert data["headline"]["accuracy"] == 1.0 and "per_image" not in data and "other_datasets" not in data
    assert data["robustness"]["rows"][0]["key"] == "flip" and set(data["strata"]) == {"skipped"}
    assert len(pd.read_csv(paths["predictions"])) == 5
    first = paths["md"].read_text().split("\n\n")[1]
    assert "cannot show what anyone in the pictures felt" in first


def test_audit_steps_run_on_their_own(tmp_path):
    from mien.audit.result import json_value
    from mien.audit.run import measure_robustness, score

    ds = load_dataset(ferplus_dataset(tmp_path / "ferplus"))
    model = OnnxConfigModel(brightness_model(tmp_path))
    scored = score(ds, model, read_images=False, samples=20)
    whole = run_audit(ds, model, strata=False, samples=20)
    assert json_value(scored.headline) == json_value(whole.headline) and scored.correct.all()  # NaN-safe
    assert measure_robustness(scored, model, samples=20) == whole.robustness


def test_card_escapes_hostile_names(tmp_path):
    root = folders_dataset(tmp_path / "<i>x&y")
    ds = load_dataset(root)
    result = run_audit(ds, OnnxConfigModel(brightness_model(tmp_path)), robustness=False, strata=False, samples=20)
    page = to_html(result)
    assert "<script" not in page and "<img" not in page and "<i>" not in page and "<b>model" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "Content-Security-Policy" in page
    md = to_markdown(result)
    assert "<script" not in md and "&lt;script&gt;" in md


def test_audit_predictions_csv_and_strata(tmp_path):
    ds = load_dataset(folders_dataset(tmp_path / "faces"))
    preds = tmp_path / "p.csv"
    with open(preds, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for n in ds.names:
            w.writerow([n, "happy"])
    result = run_audit(ds, load_model(str(preds)), strata=True, samples=20)
    assert result.robustness.skipped and result.robustness.rows is None and result.headline.calibration_note
    groups = result.strata.groups
    assert sum(r.images for r in groups["mien quality check"]) == len(ds)
    assert result.headline.accuracy == pytest.approx(4 / 10)


def test_predictions_csv_with_changed_images_matches_running_the_model(tmp_path):
    from mien.audit.robustness import PERTURBATIONS, perturb

    ds = load_dataset(folders_dataset(tmp_path / "faces"))
    model = OnnxConfigModel(brightness_model(tmp_path))
    direct = run_audit(ds, model, strata=False, samples=20, seed=3)
    images = load_images(ds)
    preds = tmp_path / "tool.csv"
    with open(preds, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "perturbation", *M.CLASSES])
        for key, ims in [("", images)] + [(p.key, perturb(images, ds.names, p, 3)) for p in PERTURBATIONS]:
            for n, row in zip(ds.names, model.predict(ims, ds.names)):
                w.writerow([n, key, *row])
    (tmp_path / "tool.json").write_text(json.dumps({"name": "tool", "perturbation_seed": 3}))
    via_csv = run_audit(ds, load_model(str(preds)), strata=False, samples=20, seed=3)
    assert via_csv.robustness.rows == direct.robustness.rows
    assert "seed 3" in via_csv.robustness.note and via_csv.model.name == "tool"
    other_seed = run_audit(ds, load_model(str(preds)), strata=False, samples=20, seed=0)
    assert "seed" in other_seed.robustness.skipped
    bad = tmp_path / "bad.csv"
    bad.write_text("path,perturbation,happy\na.png,,1\na.png,twirl,1\n")
    with pytest.raises(ModelError, match=r"bad\.csv, row 3: perturbation 'twirl'"):
        PredictionsModel(bad)


def run_cli(argv) -> int:
    parser = argparse.ArgumentParser(prog="mien")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli(tmp_path, capsys):
    root = folders_dataset(tmp_path / "faces")
    out = tmp_path / "out"
    code = run_cli(["audit", str(root), "--model", str(brightness_model(tmp_path)), "-o", str(out), "--no-strata",
                    "--bootstrap", "20", "--limit", "6", "--seed", "1"])
    assert code == 0
    assert {p.name for p in out.iterdir()} == {"card.html", "card.md", "card.json", "predictions.csv"}
    assert json.loads((out / "card.json").read_text())["headline"]["images"] == 6
    again = run_cli(["audit", str(root), "--model", str(out / "predictions.csv"), "-o", str(tmp_path / "o2"),
                     "--no-strata", "--bootstrap", "20"])  # the audit's own predictions.csv, for 6 of 10 images
    card = json.loads((tmp_path / "o2" / "card.json").read_text())
    assert again == 0 and card["headline"]["coverage"] == pytest.approx(0.6)
    assert sum(card["headline"]["no_prediction_per_class"].values()) == 4
    (tmp_path / "bad.csv").write_text("path,label\nnope.png,happy\n")
    assert run_cli(["audit", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "o3")]) == 2
    assert "bad.csv, row 2: image" in capsys.readouterr().err


def test_cli_several_datasets_compares_them(tmp_path, capsys):
    first = folders_dataset(tmp_path / "faces")
    second = labels_folder(tmp_path / "posed")
    third = labels_folder(tmp_path / "other" / "posed")  # same name: its own folder
    out = tmp_path / "out"
    code = run_cli(["audit", str(first), str(second), str(third), "--model", str(brightness_model(tmp_path)),
                    "-o", str(out), "--no-strata", "--no-robustness", "--bootstrap", "20"])
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} == {"faces", "posed", "posed_2", "comparison.html", "comparison.md",
                                              "comparison.json"}
    card = json.loads((out / "posed" / "card.json").read_text())
    names = [r["dataset"] for r in card["other_datasets"]]
    assert names == ["faces", "posed", "posed"] and card["other_datasets"][1]["classes_absent"][0] == "neutral"
    assert "How it holds on other datasets" in (out / "faces" / "card.md").read_text()
    comparison = json.loads((out / "comparison.json").read_text())
    assert [r["accuracy"] for r in comparison["datasets"]] == [r["accuracy"] for r in card["other_datasets"]]
    assert 'href="posed_2/card.html"' in (out / "comparison.html").read_text()


def _chromium() -> str | None:
    return next((shutil.which(c) for c in ("chromium", "chromium-browser", "google-chrome") if shutil.which(c)), None)


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_card_renders_in_headless_chromium(tmp_path):
    root = folders_dataset(tmp_path / "faces")
    result = run_audit(load_dataset(root), OnnxConfigModel(brightness_model(tmp_path)), strata=False, samples=20)
    html_path = write_card(result, tmp_path / "card")["html"]
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "card.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,2000", html_path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = cv2.imread(str(shot))
    assert img is not None and img.shape[:2] == (2000, 1200) and img.std() > 10
    dom = subprocess.run(flags + ["--dump-dom", html_path.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert "<svg" in dom and "<script" not in dom and "&lt;script&gt;alert(1)" in dom


# ---- FERPlus Test (skipped without ../shared/data) --------------------------------------------------------

@pytest.mark.skipif(not (FER_TEST / "label.csv").is_file(), reason="../shared/data/ferplus is not available")
def test_single_annotator_baseline_on_ferplus_test():
    ds = load_dataset(FER_TEST)
    base = M.single_annotator_baseline(ds.votes)
    assert base["images"] == 3136
    assert round(100 * base["accuracy"], 1) == 77.3
    assert int(ds.duplicate.sum()) == 288


def test_mien_cli_has_audit(tmp_path):
    from mien import cli

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "audit" not in sub.choices:
        pytest.skip("`audit` is not wired into mien.cli.build_parser yet (add_audit_parser(sub))")
    root = folders_dataset(tmp_path / "faces")
    assert cli.main(["audit", str(root), "--model", str(brightness_model(tmp_path)), "-o", str(tmp_path / "out"),
                     "--no-strata", "--no-robustness", "--bootstrap", "20"]) == 0
    assert (tmp_path / "out" / "card.html").is_file()
