"""training/quantize_perceived.py: which layers stay in float, how close the integer model stays, the sidecar it writes."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is in the test extra (pip install -e .[test])")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import quantize_perceived as Q  # noqa: E402


def small_float_model(path: Path) -> None:
    """A 48x48 grey face -> 8 logits network shaped like the shipped one: convolutions, pooling, one Gemm."""
    rng = np.random.default_rng(0)
    weights = {"w1": rng.normal(0, 0.3, (4, 1, 3, 3)), "b1": np.zeros(4), "w2": rng.normal(0, 0.3, (8, 4, 3, 3)),
               "b2": np.zeros(8), "fc.weight": rng.normal(0, 0.5, (8, 8)), "fc.bias": np.zeros(8)}
    nodes = [helper.make_node("Conv", ["face", "w1", "b1"], ["c1"], name="first", strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="second", strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["n", 1, 48, 48])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 8])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def quantized_inputs(path: Path) -> dict[str, bool]:
    """Per Conv/Gemm node: whether its weight comes through a DequantizeLinear (is stored in integers)."""
    graph = onnx.load(str(path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.name: n.input[1] in dequantized for n in graph.node if n.op_type in ("Conv", "Gemm")}


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return (np.random.default_rng(1).random((200, 1, 48, 48)) * 255).astype(np.float32)


def test_keeping_the_ends_leaves_the_first_convolution_and_the_logits_in_float(tmp_path, faces):
    small_float_model(tmp_path / "float.onnx")
    Q.quantize(tmp_path / "float.onnx", tmp_path / "int8.onnx", faces[:100], percentile=False, keep_ends=True)
    Q.quantize(tmp_path / "float.onnx", tmp_path / "all.onnx", faces[:100], percentile=False, keep_ends=False)
    assert quantized_inputs(tmp_path / "int8.onnx") == {"first": False, "second": True, "fc": False}
    assert all(quantized_inputs(tmp_path / "all.onnx").values())


def test_the_integer_model_stays_close_to_the_float_one(tmp_path, faces):
    small_float_model(tmp_path / "float.onnx")
    Q.quantize(tmp_path / "float.onnx", tmp_path / "int8.onnx", faces[:100], percentile=False, keep_ends=True)
    z_float, z_int = Q.logits(tmp_path / "float.onnx", faces[100:]), Q.logits(tmp_path / "int8.onnx", faces[100:])
    assert not np.array_equal(z_float, z_int)  # it really runs in integers
    assert np.abs(z_int - z_float).max() < 0.05 * np.abs(z_float).max()
    assert Q.FP.mean_kl(Q.PH.softmax(z_float), Q.PH.softmax(z_int)) < 1e-3


def test_card_calibration_reads_both_forms_of_the_sidecar():
    kind, matrix, bias = Q.card_calibration({"temperature": 2.0})
    assert kind == "temperature" and np.allclose(matrix, np.eye(8) / 2.0) and not bias.any()
    card = {"calibration": {"kind": "vector", "matrix": np.diag(np.arange(1.0, 9.0)).tolist(), "bias": [0.5] * 8}}
    kind, matrix, bias = Q.card_calibration(card)
    assert kind == "vector" and matrix[7, 7] == 8.0 and bias[0] == 0.5


def test_the_sidecar_carries_the_refitted_rules_and_the_recipe():
    card = {"sha256": "old", "bytes": 1, "temperature": 1.0, "abstain_threshold": 0.5, "ood_min_energy": 3.0}
    data = b"model bytes"
    new = Q.sidecar(card, data, "temperature", np.eye(8) / 0.8, np.zeros(8), 0.45, 2.5, "all layers")
    assert new["temperature"] == pytest.approx(0.8) and new["abstain_threshold"] == 0.45 and new["ood_min_energy"] == 2.5
    assert new["bytes"] == len(data) and new["sha256"] != "old" and new["quantization"]["recipe"] == "all layers"
    assert card["sha256"] == "old"  # the float card is left as it was
    json.dumps(new)


def test_the_shipped_sidecar_carries_the_rules_the_quantisation_record_refitted():
    from mien.perceived import model_card

    card, record = model_card(), json.loads(Q.RECORD.read_text())
    assert "quantize_perceived.py" in card["quantization"]["by"] and card["quantization"]["recipe"] == record["chosen"]
    assert (card["temperature"], card["abstain_threshold"], card["ood_min_energy"]) == (
        record["temperature"], record["abstain_threshold"], record["ood_min_energy"])



def test_the_card_marks_the_chosen_candidate_and_sets_float_beside_shipped():
    import model_card

    figures = {"accuracy": 0.87, "uar": 0.72, "nll_votes": 0.62, "ece_votes": 0.01}
    row = lambda kl: figures | {"kl_from_float": kl, "same_top_as_float": 0.99, "bytes": 1_300_000,  # noqa: E731
                                "latency_ms": {"candidate_median": 1.5, "base_median": 2.5}}
    record = {"float": {"sha256": "e3f871166964" + "0" * 52, "valid": figures}, "selection": "closest to float",
              "candidates": {"all layers": row(0.002), "ends in float": row(0.0007)}, "chosen": "ends in float",
              "float_card": {"temperature": 0.975, "abstain_threshold": 0.49, "ood_min_energy": 3.88},
              "temperature": 0.972, "abstain_threshold": 0.492, "ood_min_energy": 3.87, "valid": figures,
              "float_crossval": {"jaffe": {"n": 42, "no_face": 0, "accuracy": 0.5, "uar": 0.5, "ece": 0.4}}}
    crossval = {"sets": {"jaffe": {"n": 42, "no_face": 0, "accuracy": 0.476, "uar": 0.476, "ece": 0.39}}}
    text = "\n".join(model_card.quantize_section(record, crossval))
    assert "| ends in float (chosen) |" in text and "| all layers |" in text
    assert "temperature 0.9750 → 0.9720" in text and "threshold 0.4900 → 0.4920" in text
    assert "| jaffe | 50.0% / 50.0% / 0.400 | 47.6% / 47.6% / 0.390 |" in text


def test_the_card_does_not_set_float_beside_shipped_when_the_pipeline_found_other_faces():
    """The float figures come from training/perceived_quantize.json, the shipped ones from the latest crossval run: once
    the pipeline finds faces in other images, the two rows no longer score the same crops."""
    import model_card

    figures = {"accuracy": 0.87, "uar": 0.72, "nll_votes": 0.62, "ece_votes": 0.01}
    record = {"float": {"sha256": "0" * 64, "valid": figures}, "selection": "closest to float", "candidates": {},
              "chosen": "none", "float_card": {"abstain_threshold": 0.49, "ood_min_energy": 3.88}, "abstain_threshold": 0.49,
              "ood_min_energy": 3.88, "valid": figures,
              "float_crossval": {"ferplus_test_pipeline": {"n": 3136, "no_face": 75, "accuracy": 0.85, "uar": 0.66, "ece": 0.084}}}
    crossval = {"sets": {"ferplus_test_pipeline": {"n": 3136, "no_face": 24, "accuracy": 0.862, "uar": 0.67, "ece": 0.082}}}
    text = "\n".join(model_card.quantize_section(record, crossval))
    assert "| ferplus_test_pipeline | not comparable: scored on an earlier pipeline (75 of 3136 without a face, now 24) | " \
           "86.2% / 67.0% / 0.082 |" in text
    assert "85.0%" not in text
