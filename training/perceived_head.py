"""A new head, calibration and out-of-distribution rule on top of the shipped CNN (one thread, numpy).

    .venv-train/bin/python training/perceived_head.py --out training/runs/head       # try every idea, write the report
    .venv-train/bin/python training/perceived_head.py --out training/runs/head --install   # and install the chosen one
    .venv-train/bin/python training/perceived_head.py --base training/runs/capture/plain.onnx --out training/runs/head-capture \
        --record "capture-aug fine-tune"   # another CNN: its chosen head goes into training/perceived_cnn.json

The CNN's 256 pooled features are read from the shipped ``perceived.onnx`` (its last Gemm's input).
Ideas (each one's FERPlus Valid figures are written to ``<out>/ideas.json``; the crossval figures of
each, for comparing candidates only, to ``<out>/ideas_crossval.json`` when the pipeline cache of
``benchmarks/perceived_crossval.py`` exists):

- ``shipped``: the current head; ``flip``: mean logits of the face and its mirror image;
- ``adjusted(tau)``: post-hoc logit adjustment, logits - tau * log(Train class prior) (Menon et al. 2021);
- ``balanced(beta)``: a new linear head trained on Train features (face and mirror) against the crowd
  distribution, each image weighted by (its majority class's Train count) ** -beta.

The candidate is chosen on Valid only: the highest UAR among those whose accuracy is at least the
shipped head's (majority protocol). For the
chosen logits, temperature scaling, vector scaling and Dirichlet calibration (Kull et al. 2019) are
fitted on Valid against the full vote distribution and compared by NLL and ECE against votes and the
majority label. The abstention threshold is the lowest top share at which Valid accuracy on the
answered faces reaches 90%; the out-of-distribution rule marks a face ``uncertain`` when the
log-sum-exp of its logits (energy score, Liu et al. 2020) is below its 5th percentile on Train.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "training"))
import ferplus as FP  # noqa: E402
from mien.perceived import energy_score as energy, log_softmax  # noqa: E402  (the rule mien applies at run time)

MODELS = ROOT / "src" / "mien" / "models"
SIDECAR = MODELS / "perceived.json"
BASE = ROOT / "training" / "runs" / "main" / "plain.onnx"  # the CNN as train_perceived.py exports it
CACHE = ROOT / "cache" / "perceived"
CNN_RECORD = ROOT / "training" / "perceived_cnn.json"  # one row per CNN tried, with its head chosen on Valid
FEATURE = "/ReduceMean_3_output_0"
K = 8
ECE_BINS = 15
TAUS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
BETAS = (0.0, 0.25, 0.5, 0.75)
OOD_QUANTILE = 0.05
VALID_ACCURACY_TARGET = 0.90


# ---- features -------------------------------------------------------------------------------------------

def feature_session(model_path: Path, feature: str = FEATURE):
    """An onnxruntime session that returns (logits, the tensor named ``feature``: pooled features by default)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(model_path))
    m.graph.output.append(onnx.helper.make_tensor_value_info(feature, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def features(session, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, 256) pooled features of (N, 48, 48) uint8 faces."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].astype(np.float32)[:, None]
        out.append(session.run([FEATURE], {"face": x})[0])
    return np.concatenate(out) if out else np.zeros((0, 256), np.float32)


def gemm_weights(model_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The last layer (fc) of the CNN."""
    import onnx
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(model_path)).graph.initializer}
    return inits["fc.weight"].astype(np.float64), inits["fc.bias"].astype(np.float64)


# ---- metrics ---------------------------------------------------------------------------------------------

def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def vote_ece(probs: np.ndarray, crowd: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE against votes: per bin of top share, |mean top share - mean crowd share of the top class|."""
    conf = probs.max(1)
    agree = crowd[np.arange(len(probs)), probs.argmax(1)]
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    return float(sum(abs(conf[idx == b].mean() - agree[idx == b].mean()) * (idx == b).sum()
                     for b in range(bins) if (idx == b).any()) / len(probs))


def figures(probs: np.ndarray, labels: np.ndarray, crowd: np.ndarray) -> dict:
    """Majority-protocol and vote figures of (N, 8) probabilities; labels -1 are left out of the first."""
    m = labels >= 0
    cm = FP.classification_metrics(probs[m], labels[m])
    c = crowd.sum(1) > 0
    return {"accuracy": cm["accuracy"], "uar": cm["unweighted_average_recall"],
            "per_class_recall": cm["per_class_recall"],
            "ece": FP.ece(probs[m], labels[m]), "nll": FP.nll(probs[m], labels[m]),
            "nll_votes": float(-(crowd[c] * np.log(np.clip(probs[c], 1e-12, 1))).sum(1).mean()),
            "ece_votes": vote_ece(probs[c], crowd[c]), "kl_votes": FP.mean_kl(crowd[c], probs[c])}


def choose(ideas: dict) -> str:
    """The idea with the highest Valid UAR among those whose Valid accuracy is at least the shipped head's."""
    floor = ideas["shipped"]["accuracy"]
    return max((k for k, f in ideas.items() if f["accuracy"] >= floor), key=lambda k: ideas[k]["uar"])


# ---- heads ------------------------------------------------------------------------------------------------

def adam_step(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, lr: float) -> None:
    """One Adam update in place (betas 0.9, 0.999)."""
    m *= 0.9
    m += 0.1 * grad
    v *= 0.999
    v += 0.001 * grad * grad
    param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)


def train_linear_head(x: np.ndarray, targets: np.ndarray, weights: np.ndarray, w0: np.ndarray, b0: np.ndarray,
                      steps: int = 300, lr: float = 0.01, decay: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch Adam on weighted soft-label cross-entropy, started from the shipped head (float32 for speed)."""
    x, targets = x.astype(np.float32), targets.astype(np.float32)
    w, b = w0.astype(np.float32), b0.astype(np.float32)
    mw, vw, mb, vb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    sw = (weights / weights.sum()).astype(np.float32)
    for t in range(1, steps + 1):
        p = softmax(x @ w.T + b)
        g = ((p - targets) * sw[:, None]).astype(np.float32)
        gw, gb = g.T @ x + decay * w, g.sum(0)
        for param, grad, m, v in ((w, gw, mw, vw), (b, gb, mb, vb)):
            adam_step(param, grad, m, v, t, lr)
    return w.astype(np.float64), b.astype(np.float64)


# ---- calibration ---------------------------------------------------------------------------------------------

def fit_calibration(logits: np.ndarray, crowd: np.ndarray, kind: str, steps: int = 1500, lr: float = 0.01,
                    off_diagonal_decay: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, bias) minimising cross-entropy to the crowd distribution of softmax(matrix @ log_softmax + bias).

    kind: "temperature" (matrix = I / T), "vector" (diagonal + bias) or "dirichlet" (full + bias,
    off-diagonal entries L2-penalised)."""
    q = log_softmax(logits.astype(np.float64))
    a, bias = np.eye(K), np.zeros(K)
    state = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in (("a", a), ("b", bias))}
    off = 1 - np.eye(K)
    for t in range(1, steps + 1):
        p = softmax(q @ a.T + bias)
        g = (p - crowd) / len(q)
        ga, gb = g.T @ q, g.sum(0)
        if kind == "temperature":
            ga, gb = np.eye(K) * np.trace(ga) / K, np.zeros(K)
        elif kind == "vector":
            ga = np.diag(np.diag(ga))
        else:
            ga = ga + off_diagonal_decay * a * off
        for name, param, grad in (("a", a, ga), ("b", bias, gb)):
            adam_step(param, grad, *state[name], t, lr)
    return a, bias


def calibrate(logits: np.ndarray, matrix: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return softmax(log_softmax(logits.astype(np.float64)) @ matrix.T + bias)


# ---- data ------------------------------------------------------------------------------------------------------

def cached_features(key: str, base: Path, session, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features of the faces and of their mirror images, cached under cache/perceived/ by model and key."""
    digest = hashlib.sha256(base.read_bytes()).hexdigest()[:12]
    path = CACHE / f"features-{digest}-{key}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["x"].astype(np.float64), z["x_flip"].astype(np.float64)
    x, x_flip = features(session, images), features(session, images[:, :, ::-1].copy())
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x=x, x_flip=x_flip)
    tmp.replace(path)
    return x.astype(np.float64), x_flip.astype(np.float64)


def split(name: str, base: Path, session) -> dict:
    names, votes = FP.read_votes(name)
    images = FP.read_images(name, names)
    crowd_all, usable = FP.soft_targets(votes)
    x, x_flip = cached_features(f"ferplus-{name}", base, session, images)
    return {"labels": FP.majority_labels(votes), "crowd": FP.crowd_distribution(votes).astype(np.float64),
            "targets": crowd_all.astype(np.float64), "usable": usable, "x": x, "x_flip": x_flip}


def crossval_sets(base: Path, session) -> dict:
    """Features of the cached pipeline crops of benchmarks/perceived_crossval.py (found faces only)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import perceived_crossval as CV

    out = {}
    for name, s in CV.cached_sets().items():
        x, x_flip = cached_features(f"{name}-{CV.pipeline_key()}", base, session, s["crops"])
        out[name] = {"labels": s["labels"], "found": s["found"], "x": x, "x_flip": x_flip}
    return out


def crossval_figures(probs: np.ndarray, s: dict) -> dict:
    """accuracy / UAR (no face = wrong) and ECE over found faces."""
    y, found = s["labels"], s["found"]
    pred = np.where(found, probs.argmax(1), -1)
    recall = [float((pred[y == k] == k).mean()) for k in sorted(set(y.tolist()))]
    return {"accuracy": float((pred == y).mean()), "uar": float(np.mean(recall)),
            "ece": FP.ece(probs[found], y[found])}


# ---- export ------------------------------------------------------------------------------------------------

def export_onnx(base: Path, path: Path, w: np.ndarray, b: np.ndarray, flip: bool) -> None:
    """The shipped graph with the new head; with ``flip``, the pooled features of the face and of its
    mirror image are averaged before the head (same as averaging the logits of a linear head)."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(base))
    g = m.graph
    for t in g.initializer:
        if t.name == "fc.weight":
            t.CopyFrom(numpy_helper.from_array(w.astype(np.float32), "fc.weight"))
        elif t.name == "fc.bias":
            t.CopyFrom(numpy_helper.from_array(b.astype(np.float32), "fc.bias"))
    if flip:
        face = g.input[0].name
        for node in g.node:
            node.input[:] = ["face_both" if i == face else i for i in node.input]
        gemm = next(n for n in g.node if n.op_type == "Gemm")
        pooled = gemm.input[0]
        gemm.input[0] = "pooled_mean"
        const = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
        g.initializer.extend([const("flip_starts", [-1]), const("flip_ends", [-(2 ** 62)]), const("flip_axes", [3]),
                              const("flip_steps", [-1]), const("two_by", [2, -1, 256])])
        pre = [helper.make_node("Slice", [face, "flip_starts", "flip_ends", "flip_axes", "flip_steps"], ["face_flipped"]),
               helper.make_node("Concat", [face, "face_flipped"], ["face_both"], axis=0)]
        post = [helper.make_node("Reshape", [pooled, "two_by"], ["pooled_pair"]),
                helper.make_node("ReduceMean", ["pooled_pair"], ["pooled_mean"], axes=[0], keepdims=0)]
        at = list(g.node).index(gemm)
        nodes = pre + list(g.node)[:at] + post + list(g.node)[at:]
        del g.node[:]
        g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def interleaved_latency(base: Path, candidate: Path, repeats: int = 400) -> dict:
    """ms per face (batch 1, one thread) of the base CNN and the candidate, timed alternately so that
    other jobs on a shared machine slow both alike; min and median of each."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sessions = {name: ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                for name, path in (("base", base), ("candidate", candidate))}
    face = (np.random.default_rng(0).random((1, 1, 48, 48)) * 255).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, session in sessions.items():
            t = time.perf_counter()
            session.run(None, {"face": face})
            times[name].append((time.perf_counter() - t) * 1e3)
    return {f"{name}_{stat}": float(f(v)) for name, v in times.items() for stat, f in (("min", np.min), ("median", np.median))}


def write_candidate(base: Path, out: Path, w, b, flip: bool, kind: str, matrix, bias, threshold: float, min_energy: float,
                    report: dict) -> None:
    """<out>/perceived.onnx and perceived.json, in the layout mien.perceived reads."""
    onnx_path = out / "perceived.onnx"
    export_onnx(base, onnx_path, w, b, flip)
    card = json.loads(SIDECAR.read_text())
    data = onnx_path.read_bytes()
    card.update({"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "test_time_flip": flip,
                 "output": "logits: (N,8); probabilities = softmax(matrix @ log_softmax(logits) + bias) (calibration)",
                 "calibration": {"kind": kind, "matrix": matrix.tolist(), "bias": bias.tolist(),
                                 "fitted": "FERPlus Valid, cross-entropy to the crowd vote distribution"},
                 "abstain_threshold": threshold, "ood_min_energy": min_energy,
                 "ood_rule": f"uncertain when logsumexp(logits) < ood_min_energy, its {OOD_QUANTILE:.0%} quantile on Train",
                 "source": "CNN: training/train_perceived.py (seed 0); head: training/perceived_head.py",
                 "head": {"recipe": report["chosen"], "trained_by": "training/perceived_head.py (numpy, 1 thread)",
                          "wall_seconds": report["wall_seconds"]}})
    if kind == "temperature":  # the plain form older readers understand
        card["temperature"] = float(1.0 / matrix[0, 0])
        card["output"] = "logits: (N,8); probabilities = softmax(logits / temperature), temperature fitted to Valid votes"
        del card["calibration"]
    else:
        card.pop("temperature", None)
    (out / "perceived.json").write_text(json.dumps(card, indent=1) + "\n")


def install(out: Path) -> None:
    """Copy the candidate into src/mien/models and update the manifest's sha256 and size."""
    models = MODELS
    data = (out / "perceived.onnx").read_bytes()
    (models / "perceived.onnx").write_bytes(data)
    (models / "perceived.json").write_text((out / "perceived.json").read_text())
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["models"]["perceived.onnx"].update(
        sha256=hashlib.sha256(data).hexdigest(), bytes=len(data),
        source="trained by mien: training/train_perceived.py (PyTorch 2.13.0+cpu) on FERPlus label.csv (2016) votes over "
               "FER2013 Train, head adjusted by training/perceived_head.py; calibration, abstention threshold and "
               "out-of-distribution rule fitted on Train/Valid (perceived.json)")
    (models / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (ROOT / "training" / "perceived_head.json").write_text((out / "head.json").read_text())
    print(f"installed {out} into {models} (figures in training/perceived_head.json)")


# ---- the record of CNNs tried ------------------------------------------------------------------------------------

def convolutions(model_path: Path) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    return [numpy_helper.to_array(t) for t in onnx.load(str(model_path)).graph.initializer if len(t.dims) == 4]


def same_cnn(a: Path, b: Path) -> bool:
    """Whether two exports share every convolution (they may differ in the head and test-time flip)."""
    ca, cb = convolutions(a), convolutions(b)
    return len(ca) == len(cb) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(ca, cb))


def training_summary(base: Path) -> dict | None:
    """How the CNN was trained, from the calibration.json train_perceived.py writes beside it (None when absent)."""
    path = base.parent / "calibration.json"
    if not path.exists():
        return None
    t = json.loads(path.read_text())["training"]
    keep = ("epochs", "lr", "batch", "seed", "threads", "init_onnx", "capture_aug", "teacher_weight", "device", "wall_seconds")
    return {k: t.get(k) for k in keep} | {"median_epoch_seconds": float(np.median([h["seconds"] for h in t["history"]])),
                                          "last_epoch_valid_accuracy": t["history"][-1]["valid_accuracy"]}


CNN_SELECTION = ("per CNN, the head chosen on Valid by perceived_head.py (its temperature fitted on Valid); a CNN ships "
                 "when its candidate beats the shipped one on Valid (accuracy at least, UAR higher) and is worse on no "
                 "crossval set, where candidates are only scored and compared (issue 11 allows choosing there), never fitted")


def record_cnn(record: dict, name: str, report: dict, base: Path, training: dict | None, shipped: bool) -> dict:
    """``record`` with this CNN's chosen head under ``name``: its Valid and crossval figures (the rows of
    ``ideas_table``), the CNN's sha256 and training; ``shipped`` makes it the record's ``chosen``."""
    chosen = report["chosen"]
    return {"selection": CNN_SELECTION,
           "chosen": name if shipped else record.get("chosen"),
           "ideas": record.get("ideas", {}) | {name: report["ideas"][chosen]},
           "ideas_crossval": record.get("ideas_crossval", {}) | {name: report["ideas_crossval"][chosen]},
           "cnns": record.get("cnns", {}) | {name: {"head": chosen, "sha256": hashlib.sha256(base.read_bytes()).hexdigest(),
                                                      "training": training}}}


# ---- main ------------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--base", type=Path, default=BASE, help="the CNN without test-time flip (default: %(default)s)")
    ap.add_argument("--install", action="store_true", help="install the chosen head into src/mien/models")
    ap.add_argument("--record", metavar="NAME", help="add this CNN and its chosen head to training/perceived_cnn.json "
                    "(the model card's CNNs tried) under NAME")
    a = ap.parse_args(argv)
    import os
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    np.random.seed(0)
    t0 = time.time()
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.base.exists():
        raise SystemExit(f"{a.base} is missing: train the CNN first (training/README.md, step 2), or take the shipped "
                         f"CNN of commit f62f65f: git show f62f65f:src/mien/models/perceived.onnx > {a.base}")
    session = feature_session(a.base)
    tr, va = split("Train", a.base, session), split("Valid", a.base, session)
    cv = crossval_sets(a.base, session)
    w0, b0 = gemm_weights(a.base)
    prior = FP.train_prior()

    heads = {"shipped": (w0, b0)}
    x_train = np.concatenate([tr["x"][tr["usable"]], tr["x_flip"][tr["usable"]]])
    t_train = np.concatenate([tr["targets"][tr["usable"]]] * 2)
    major = t_train.argmax(1)
    counts = np.bincount(major, minlength=K).astype(np.float64)
    saved = a.out / "heads.npz"  # trained heads are kept, so a rerun only re-scores them
    known = dict(np.load(saved)) if saved.exists() else {}
    for beta in BETAS:
        if f"w{beta}" not in known:
            known[f"w{beta}"], known[f"b{beta}"] = train_linear_head(x_train, t_train, counts[major] ** -beta, w0, b0)
            np.savez(saved, **known)
        heads[f"balanced({beta})"] = (known[f"w{beta}"], known[f"b{beta}"])

    def logits_of(head, x, x_flip, flip: bool, tau: float):
        w, b = head
        z = x @ w.T + b
        if flip:
            z = 0.5 * (z + x_flip @ w.T + b)
        return z - tau * np.log(prior)

    ideas, ideas_cv, recipes = {}, {}, {}
    for hname, head in heads.items():
        for flip in (False, True):
            for tau in (TAUS if hname == "shipped" else (0.0,)):
                key = f"{hname}{' + flip' if flip else ''}{f' adjusted({tau})' if tau else ''}"
                recipes[key] = (hname, flip, tau)
                zv = logits_of(head, va["x"], va["x_flip"], flip, tau)
                t = FP.fit_temperature(zv[va["labels"] >= 0], va["labels"][va["labels"] >= 0])
                ideas[key] = figures(softmax(zv / t), va["labels"], va["crowd"]) | {"temperature": t}
                ideas_cv[key] = {n: crossval_figures(softmax(logits_of(head, s["x"], s["x_flip"], flip, tau) / t), s)
                                 for n, s in cv.items()}
                print(f"{key:34s} Valid acc {ideas[key]['accuracy']:.4f} UAR {ideas[key]['uar']:.4f} | " +
                      " ".join(f"{n} {r['accuracy']:.3f}/{r['uar']:.3f}" for n, r in ideas_cv[key].items()), flush=True)
    chosen = choose(ideas)
    print(f"chosen on Valid: {chosen}")
    (a.out / "ideas.json").write_text(json.dumps(ideas, indent=1) + "\n")
    (a.out / "ideas_crossval.json").write_text(json.dumps(ideas_cv, indent=1) + "\n")
    hname, flip, tau = recipes[chosen]
    head = heads[hname]
    w, b = head[0], head[1] - tau * np.log(prior)  # logit adjustment folded into the bias

    def chosen_logits(s):
        z = s["x"] @ w.T + b
        return 0.5 * (z + s["x_flip"] @ w.T + b) if flip else z

    te = split("Test", a.base, session)
    zv, zt, ztr = chosen_logits(va), chosen_logits(te), chosen_logits(tr)
    calibrations = compare_calibrations(zv, va, zt, te, cv, chosen_logits)
    kind = min(calibrations["held_out_valid"], key=lambda k: calibrations["held_out_valid"][k]["ece_votes"])
    matrix, bias = fit_calibration(zv, va["crowd"], kind)
    pv = calibrate(zv, matrix, bias)
    keep = va["labels"] >= 0
    threshold = FP.threshold_for_accuracy(pv[keep], va["labels"][keep], VALID_ACCURACY_TARGET)
    min_energy = float(np.quantile(energy(ztr[tr["usable"]]), OOD_QUANTILE))
    report = {"chosen": chosen, "selection": "highest FERPlus Valid UAR among the ideas whose Valid accuracy is at least the shipped head's",
              "calibration_kind": kind, "calibrations": calibrations, "abstain_threshold": threshold,
              "ood_min_energy": min_energy, "ood_rule": ood_report(min_energy, threshold, matrix, bias, va, te, cv, chosen_logits),
              "valid": figures(pv, va["labels"], va["crowd"]), "test": figures(calibrate(zt, matrix, bias), te["labels"], te["crowd"]),
              "wall_seconds": time.time() - t0, "threads": 1}
    report |= {"ideas": ideas, "ideas_crossval": ideas_cv}
    write_candidate(a.base, a.out, w, b, flip, kind, matrix, bias, threshold, min_energy, report)
    report["latency_ms"] = interleaved_latency(a.base, a.out / "perceived.onnx")
    (a.out / "head.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("chosen", "calibration_kind", "abstain_threshold", "ood_min_energy")}))
    print("Valid", {k: round(v, 4) for k, v in report["valid"].items() if not isinstance(v, dict)})
    print("Test", {k: round(v, 4) for k, v in report["test"].items() if not isinstance(v, dict)})
    if a.install:
        install(a.out)
    if a.record:
        old = json.loads(CNN_RECORD.read_text()) if CNN_RECORD.exists() else {}
        record = record_cnn(old, a.record, report, a.base, training_summary(a.base), same_cnn(a.base, MODELS / "perceived.onnx"))
        tmp = CNN_RECORD.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(CNN_RECORD)
        print(f"recorded {a.record} in {CNN_RECORD}")
    return 0


def compare_calibrations(zv, va, zt, te, cv, logits_of) -> dict:
    """Temperature vs vector vs Dirichlet: held-out on Valid (2-fold), then fitted on all Valid and
    reported on Test and crossval (reporting only)."""
    rng = np.random.default_rng(0)
    fold = rng.permutation(len(zv)) % 2
    out = {"held_out_valid": {}, "test": {}, "crossval": {}}
    for kind in ("temperature", "vector", "dirichlet"):
        held = np.zeros((len(zv), K))
        for f in (0, 1):
            m, bb = fit_calibration(zv[fold != f], va["crowd"][fold != f], kind)
            held[fold == f] = calibrate(zv[fold == f], m, bb)
        out["held_out_valid"][kind] = figures(held, va["labels"], va["crowd"])
        m, bb = fit_calibration(zv, va["crowd"], kind)
        out["test"][kind] = figures(calibrate(zt, m, bb), te["labels"], te["crowd"])
        out["crossval"][kind] = {n: crossval_figures(calibrate(logits_of(s), m, bb), s) for n, s in cv.items()}
    t = FP.fit_temperature(zv[va["labels"] >= 0], va["labels"][va["labels"] >= 0])
    out["test"]["temperature_majority_nll"] = figures(softmax(zt / t), te["labels"], te["crowd"]) | {"temperature": t}
    return out


def ood_report(min_energy, threshold, matrix, bias, va, te, cv, logits_of) -> dict:
    """Share of faces the energy rule flags, and coverage / accuracy at the threshold with and without it."""
    out = {}
    for name, s in [("valid", va), ("test", te)] + list(cv.items()):
        z = logits_of(s)
        p = calibrate(z, matrix, bias)
        y = s["labels"]
        found = s.get("found", np.ones(len(y), bool)) & (y >= 0) if "found" in s else y >= 0
        correct = (p.argmax(1) == y) & found
        flagged = energy(z) < min_energy
        confident = p.max(1) >= threshold
        n = int((y >= 0).sum()) if "found" not in s else len(y)
        row = {"flagged": float(flagged[found].mean())}
        for rule, answered in (("threshold", confident & found), ("threshold_and_ood", confident & ~flagged & found)):
            row[rule] = {"coverage": float(answered.sum() / n),
                         "accuracy_answered": float(correct[answered].mean()) if answered.any() else float("nan")}
        out[name] = row
    return out


if __name__ == "__main__":
    sys.exit(main())
