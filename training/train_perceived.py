"""Train mien's perceived-expression model on FERPlus crowd votes and ship it as ONNX.

One command (training venv, see training/README.md):

    .venv-train/bin/python training/train_perceived.py --out training/runs/main --epochs 42 --install

What it does, in order, with fixed seeds (numpy, torch, python: --seed, default 0):
1. reads FERPlus Train/Valid votes from label.csv (2016), targets = crowd vote distribution over
   the 8 expressions (single votes dropped, unknown/NF removed, renormalised; images whose most-voted
   column is unknown/NF are dropped) and the 48x48 grey images;
2. trains PerceivedNet (training/net.py) with soft-label cross-entropy, SGD + nesterov, one-cycle LR,
   augmentation (random shift/scale/rotation, horizontal flip, brightness/contrast, small erasing); with
   --capture-aug also capture_augment (other capture conditions); with --init-onnx it fine-tunes an earlier export
   instead of starting from scratch (e.g. --epochs 12 --lr 0.01 --threads 1, training/README.md step 5b);
3. exports ONNX (with and without test-time flip averaging; flip is kept only if it is better on
   Valid and its one-thread latency stays under 1.3 ms), fits the temperature on Valid (NLL of the
   majority labels) and the abstention threshold on Valid (accuracy on answered faces >= 90%);
4. writes run_dir/{log.txt, history.json, perceived.onnx, calibration.json}; with --install also
   src/mien/models/perceived.onnx + perceived.json (sha256, provenance, temperature, threshold),
   then runs the Test evaluation (benchmarks/perceived_eval.py --skip-pipeline) which writes
   training/perceived_metrics.json and docs/perceived.md.
Nothing is tuned on Test.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as TF

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import ferplus as FP  # noqa: E402
from net import FlipAveraged, PerceivedNet  # noqa: E402

log = logging.getLogger("train_perceived")
ABSTAIN_TARGET = 0.90  # Valid accuracy on answered faces that fixes the abstention threshold
MAX_FLIP_LATENCY_MS = 1.3
VIEW_SEED = 1000  # distillation view v is augmented with torch seed VIEW_SEED + v


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sample_augmentation(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Parameters of ``augment`` for n faces: shift ±10%, scale 0.9-1.1, rotation ±12°, horizontal flip, contrast
    0.7-1.3, brightness ±25, and on 25% of faces an 8-16 px square erased to one random grey."""
    r = lambda lo, hi: torch.rand(n, generator=g) * (hi - lo) + lo  # noqa: E731
    return {"angle": r(-12, 12) * math.pi / 180, "scale": r(0.9, 1.1),
            "flip": torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0),
            "shift_x": r(-0.2, 0.2), "shift_y": r(-0.2, 0.2), "contrast": r(0.7, 1.3), "brightness": r(-25, 25),
            "erase": torch.rand(n, generator=g) < 0.25, "erase_size": torch.randint(8, 17, (n,), generator=g),
            "erase_x": torch.rand(n, generator=g), "erase_y": torch.rand(n, generator=g),
            "erase_grey": torch.rand(n, generator=g) * 255}


def view_augmentation(n: int, view: int) -> dict[str, torch.Tensor]:
    """The fixed augmentation of distillation view ``view`` for the n Train faces: the teacher's outputs on these
    views are kept as training data (training/teacher.py), so the student sees exactly the faces they describe."""
    return sample_augmentation(n, torch.Generator().manual_seed(VIEW_SEED + view))


def pick(params: dict[str, torch.Tensor], idx: torch.Tensor, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    return {k: v[idx].to(device) for k, v in params.items()}


def augment(x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """x: (B,1,H,W) float 0..255 augmented with the parameters ``p`` of ``sample_augmentation`` (on x's device)."""
    b, _, h, w = x.shape
    cos, sin = torch.cos(p["angle"]) / p["scale"], torch.sin(p["angle"]) / p["scale"]
    theta = torch.stack([torch.stack([cos * p["flip"], -sin, p["shift_x"]], 1),
                         torch.stack([sin * p["flip"], cos, p["shift_y"]], 1)], 1)
    grid = TF.affine_grid(theta, list(x.shape), align_corners=False)
    x = TF.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - m) * p["contrast"].view(b, 1, 1, 1) + m + p["brightness"].view(b, 1, 1, 1)).clamp(0, 255)
    size = p["erase_size"].view(b, 1, 1)
    top = torch.floor(p["erase_y"].view(b, 1, 1) * (h - size))
    left = torch.floor(p["erase_x"].view(b, 1, 1) * (w - size))
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    erased = (p["erase"].view(b, 1, 1) & (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size))
    return torch.where(erased.unsqueeze(1), p["erase_grey"].view(b, 1, 1, 1), x)


def per_face_blur(x: torch.Tensor, sigma_long: torch.Tensor, sigma_short: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Blur each face of x (B,1,H,W) with its own 7x7 anisotropic Gaussian: equal sigmas give defocus blur,
    a long and a short sigma along ``angle`` (radians) give motion blur."""
    b = x.shape[0]
    t = torch.arange(-3, 4, dtype=x.dtype)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    cos, sin = torch.cos(angle).view(b, 1, 1), torch.sin(angle).view(b, 1, 1)
    along, across = xx * cos + yy * sin, -xx * sin + yy * cos
    k = torch.exp(-0.5 * ((along / sigma_long.view(b, 1, 1)) ** 2 + (across / sigma_short.view(b, 1, 1)) ** 2))
    k = (k / k.sum(dim=(1, 2), keepdim=True)).unsqueeze(1)
    padded = TF.pad(x.reshape(1, b, *x.shape[2:]), (3, 3, 3, 3), mode="replicate")
    return TF.conv2d(padded, k, groups=b).reshape(x.shape)


def jpeg_reencode(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Each face of x (B,1,H,W, 0..255) encoded and decoded as JPEG at its own quality."""
    import cv2

    faces = x.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()
    out = [cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, int(q)])[1], cv2.IMREAD_GRAYSCALE)
           for f, q in zip(faces, quality.tolist())]
    return torch.from_numpy(np.stack(out)).to(x.dtype).unsqueeze(1)


def capture_augment(x: torch.Tensor, g: torch.Generator, p: float = 0.2) -> torch.Tensor:
    """Imitate other capture conditions on x (B,1,48,48) float 0..255; each step hits a face with probability p:
    an occluding rectangle (10-24 x 10-30 px), a lighting gradient across the face (gain 1 ± 0.2-0.6 along a random
    direction), gamma 0.6-1.6, defocus (sigma 0.4-1.4 px) or motion blur (sigma 0.8-2.2 px along a random angle),
    a lower resolution (down to 16-36 px and back up), sensor noise (sigma 2-10) and JPEG re-encoding (quality 15-80).
    Alignment jitter, small rotations and flips are augment's."""
    b, _, h, w = x.shape
    r = lambda lo, hi: torch.rand(b, generator=g) * (hi - lo) + lo  # noqa: E731
    hit = lambda: torch.rand(b, generator=g) < p  # noqa: E731
    x = x.clone()
    for i in torch.nonzero(hit()).flatten().tolist():
        rh, rw = (int(v) for v in (torch.randint(10, 25, (1,), generator=g), torch.randint(10, 31, (1,), generator=g)))
        y0, x0 = int(torch.randint(0, h - rh + 1, (1,), generator=g)), int(torch.randint(0, w - rw + 1, (1,), generator=g))
        x[i, :, y0:y0 + rh, x0:x0 + rw] = float(torch.rand(1, generator=g) * 255)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    direction = r(0, 2 * math.pi)
    ramp = torch.cos(direction).view(b, 1, 1, 1) * xs + torch.sin(direction).view(b, 1, 1, 1) * ys
    gain = torch.where(hit(), r(0.2, 0.6), torch.zeros(b)).view(b, 1, 1, 1)
    x = (x * (1 + gain * ramp)).clamp(0, 255)
    gamma = torch.where(hit(), torch.exp(r(math.log(0.6), math.log(1.6))), torch.ones(b)).view(b, 1, 1, 1)
    x = 255 * (x / 255).clamp_min(1e-6) ** gamma
    blur, motion = hit(), torch.rand(b, generator=g) < 0.5
    if blur.any():
        sigma = r(0.4, 1.4)
        long, short = torch.where(motion, r(0.8, 2.2), sigma), torch.where(motion, torch.full((b,), 0.3), sigma)
        x[blur] = per_face_blur(x[blur], long[blur], short[blur], r(0, math.pi)[blur])
    sizes = torch.randint(16, 37, (b,), generator=g)
    for i in torch.nonzero(hit()).flatten().tolist():
        small = TF.interpolate(x[i:i + 1], size=int(sizes[i]), mode="area")
        x[i:i + 1] = TF.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    noise = torch.where(hit(), r(2, 10), torch.zeros(b)).view(b, 1, 1, 1)
    x = (x + noise * torch.randn(x.shape, generator=g)).clamp(0, 255)
    jpeg, quality = hit(), torch.randint(15, 81, (b,), generator=g)
    if jpeg.any():
        x[jpeg] = jpeg_reencode(x[jpeg], quality[jpeg])
    return x


def load_folded_onnx(net: PerceivedNet, path: Path, images: np.ndarray) -> None:
    """Start ``net`` from an ONNX export of PerceivedNet whose BatchNorms were folded into the convolutions.

    Each convolution takes the folded weight; its BatchNorm gets the mean and variance of the convolution's output
    on ``images`` as running statistics, and the scale and shift that undo them and add the folded bias. Eval mode
    then reproduces the export, and train mode (batch statistics) starts close to it."""
    import onnx
    from onnx import numpy_helper

    init = [(t.name, numpy_helper.to_array(t)) for t in onnx.load(str(path)).graph.initializer]
    named = dict(init)
    convs = [(name, v) for name, v in init if v.ndim == 4]
    biases = [v for name, v in init if v.ndim == 1 and name.startswith("onnx::Conv")]
    modules = list(net.modules())
    pairs = [(m, modules[i + 1]) for i, m in enumerate(modules) if isinstance(m, torch.nn.Conv2d)]
    each_conv_normalised = all(isinstance(bn, torch.nn.BatchNorm2d) for _, bn in pairs)
    if not each_conv_normalised or len(pairs) != len(convs) or len(biases) != len(convs) or any(
            conv.weight.shape != tuple(w.shape) for (conv, _), (_, w) in zip(pairs, convs)):
        raise ValueError(f"{path} is not an export of PerceivedNet{tuple(net.fc.weight.shape)}: "
                         f"{len(convs)} convolutions, shapes {[tuple(w.shape) for _, w in convs]}")
    moments = {bn: torch.zeros(3, bn.num_features, dtype=torch.float64) for _, bn in pairs}  # count, sum, sum of squares

    def accumulate(bn, inputs, _output):
        out = inputs[0].transpose(0, 1).flatten(1).double()
        moments[bn] += torch.stack([torch.full_like(out[:, 0], out.shape[1]), out.sum(1), (out * out).sum(1)])

    hooks = [bn.register_forward_hook(accumulate) for _, bn in pairs]
    with torch.no_grad():
        for (conv, bn), (_, w), bias in zip(pairs, convs, biases):
            conv.weight.copy_(torch.from_numpy(w.copy()))
            bn.running_mean.zero_(), bn.running_var.fill_(1 - bn.eps), bn.weight.fill_(1), bn.bias.copy_(torch.from_numpy(bias.copy()))
        net.fc.weight.copy_(torch.from_numpy(named["fc.weight"].copy()))
        net.fc.bias.copy_(torch.from_numpy(named["fc.bias"].copy()))
        predict_logits(net, images)
        for h in hooks:
            h.remove()
        for conv, bn in pairs:
            count, total, squares = moments[bn]
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0).float()
            bn.running_mean.copy_(mean.float()), bn.running_var.copy_(var)
            bn.bias.add_(mean.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps))


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i:i + batch]).float().unsqueeze(1).to(device)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out)


def ort_latency_ms(path: Path, repeats: int = 300) -> float:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    a = (np.random.default_rng(0).random((1, 1, 48, 48)) * 255).astype(np.float32)
    name = s.get_inputs()[0].name
    for _ in range(30):
        s.run(None, {name: a})
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        s.run(None, {name: a})
        ts.append(time.perf_counter() - t)
    return float(np.median(ts) * 1000)


def ort_logits(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: images[i:i + 512, None].astype(np.float32)})[0]
                           for i in range(0, len(images), 512)])


def teacher_targets(path: Path, names: np.ndarray) -> tuple[torch.Tensor, list[dict]]:
    """The teacher's shares (V, N, 8) on the V kept views of the Train faces ``names``, and each view's
    augmentation parameters (drawn for all the faces the teacher kept, so that each face gets its own view)."""
    with np.load(path) as z:
        kept_names, logits = z["names"], z["logits"]
    position = {name: i for i, name in enumerate(kept_names)}
    missing = [name for name in names if name not in position]
    if missing:
        raise SystemExit(f"{path}: no teacher outputs for {len(missing)} of this run's Train faces (e.g. {missing[0]})")
    rows = np.array([position[name] for name in names])
    views = [pick(view_augmentation(len(kept_names), view), torch.from_numpy(rows)) for view in range(len(logits))]
    return torch.softmax(torch.from_numpy(logits[:, rows].astype(np.float32)), -1), views


def distillation_batch(X: torch.Tensor, Y: torch.Tensor, idx: torch.Tensor, views: list[dict],
                       teacher_shares: torch.Tensor, view: int, weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The faces ``idx`` (on the CPU) as distillation view ``view`` shows them, and their targets:
    (1 - weight) * the crowd's votes + weight * the teacher's shares on that same view."""
    on_device = idx.to(X.device)
    x = augment(X[on_device], pick(views[view], idx, X.device))
    return x, (1 - weight) * Y[on_device] + weight * teacher_shares[view][on_device]


def teacher_record(path: Path) -> dict:
    with np.load(path) as z:
        return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "views": int(z["logits"].shape[0]),
                "teacher": json.loads(str(z["record"]))}


def export(model: torch.nn.Module, path: Path) -> None:
    model.eval()
    torch.onnx.export(model, torch.zeros(1, 1, 48, 48), str(path), input_names=["face"], output_names=["logits"],
                      dynamic_axes={"face": {0: "n"}, "logits": {0: "n"}}, opset_version=17, dynamo=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "runs" / "main")
    ap.add_argument("--epochs", type=int, default=42)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--widths", default="32,64,128,256")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init-onnx", type=Path, help="fine-tune from this export of the same network (BatchNorms "
                    "folded, e.g. training/runs/main/plain.onnx) instead of training from scratch")
    ap.add_argument("--capture-aug", action="store_true", help="add augmentations that imitate other capture "
                    "conditions (capture_augment: occlusion, lighting gradient, gamma, blur, resolution, noise, JPEG)")
    ap.add_argument("--teacher", type=Path, help="distil from a teacher's outputs kept as training data "
                    "(training/teacher.py's teacher_views.npz): epoch e trains on the Train faces of view e mod V")
    ap.add_argument("--teacher-weight", type=float, default=0.5, help="target = (1 - w) * crowd votes + "
                    "w * the teacher's shares on the same view")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, or cuda on a GPU machine)")
    ap.add_argument("--subset", type=int, default=0, help="use only the first N Train images (smoke test)")
    ap.add_argument("--install", action="store_true", help="copy the model into src/mien/models and evaluate on Test")
    a = ap.parse_args(argv)

    a.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(a.out / "log.txt", mode="w"), logging.StreamHandler()])
    log.info("args %s", vars(a))
    seed_everything(a.seed)
    torch.set_num_threads(a.threads)

    t0 = time.time()
    tr_names, tr_dist, tr_img, dropped = FP.training_faces(a.subset)
    _, va_lab, va_img = FP.valid_faces()
    vk = va_lab >= 0
    log.info("Train usable %d images (%d dropped as unknown or not a face); Valid majority-protocol %d; read in %.1f s",
             len(tr_names), dropped, int(vk.sum()), time.time() - t0)

    widths = tuple(int(w) for w in a.widths.split(","))
    net = PerceivedNet(widths)
    n_params = sum(p.numel() for p in net.parameters())
    log.info("PerceivedNet widths=%s params=%d", widths, n_params)
    if a.init_onnx:
        load_folded_onnx(net, a.init_onnx, tr_img[:4096])
        gap = float(np.abs(predict_logits(net, va_img[:512]) - ort_logits(a.init_onnx, va_img[:512])).max())
        log.info("started from %s: largest logit difference to it on 512 Valid faces %.2e", a.init_onnx, gap)
        if gap > 1e-3:
            raise SystemExit(f"{a.init_onnx}: the network loaded from it differs from it (logits up to {gap:.2e} apart)")
    decay = [p for n, p in net.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in net.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    steps = a.epochs * (len(tr_names) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.2,
                                                div_factor=20, final_div_factor=200)
    g = torch.Generator().manual_seed(a.seed)
    device = torch.device(a.device)
    net.to(device)
    X = torch.from_numpy(tr_img).float().unsqueeze(1).to(device)
    Y = torch.from_numpy(tr_dist).to(device)
    teacher_shares, views = None, []
    if a.teacher:
        teacher_shares, views = teacher_targets(a.teacher, tr_names)
        teacher_shares = teacher_shares.to(device)
        log.info("distilling from %s: %d views, weight %.2f", a.teacher, len(views), a.teacher_weight)
    history = []
    for ep in range(a.epochs):
        net.train()
        te = time.time()
        perm = torch.randperm(len(X), generator=g)
        tot = 0.0
        nb = len(X) // a.batch
        for bi in range(nb):
            idx = perm[bi * a.batch:(bi + 1) * a.batch]
            if views:
                x, target = distillation_batch(X, Y, idx, views, teacher_shares, ep % len(views), a.teacher_weight)
            else:
                on_device = idx.to(device)
                x = augment(X[on_device], pick(sample_augmentation(len(idx), g), slice(None), device))
                target = Y[on_device]
            if a.capture_aug:
                x = capture_augment(x.cpu(), g).to(device)
            loss = -(target * torch.log_softmax(net(x), 1)).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        vl = predict_logits(net, va_img[vk])
        acc = float((vl.argmax(1) == va_lab[vk]).mean())
        history.append({"epoch": ep + 1, "train_loss": tot / nb, "valid_accuracy": acc, "seconds": time.time() - te})
        log.info("epoch %d/%d loss %.4f valid acc %.4f (%.0f s)", ep + 1, a.epochs, tot / nb, acc, time.time() - te)
    (a.out / "history.json").write_text(json.dumps(history, indent=1))
    net.eval().cpu()
    torch.save(net.state_dict(), a.out / "weights.pt")

    # ---- export, flip decision, calibration, threshold (Valid only) ----
    plain, flip = a.out / "plain.onnx", a.out / "flip.onnx"
    export(net, plain)
    export(FlipAveraged(net), flip)
    choice = {}
    for name, path in (("plain", plain), ("flip", flip)):
        lg = ort_logits(path, va_img[vk])
        choice[name] = {"valid_accuracy": float((lg.argmax(1) == va_lab[vk]).mean()), "latency_ms": ort_latency_ms(path)}
    use_flip = (choice["flip"]["valid_accuracy"] > choice["plain"]["valid_accuracy"]
                and choice["flip"]["latency_ms"] <= MAX_FLIP_LATENCY_MS)
    log.info("export choice %s -> %s", choice, "flip" if use_flip else "plain")
    model_path = a.out / "perceived.onnx"
    model_path.write_bytes((flip if use_flip else plain).read_bytes())

    va_logits = ort_logits(model_path, va_img[vk])
    T = FP.fit_temperature(va_logits, va_lab[vk])
    p1, pT = FP.softmax(va_logits), FP.softmax(va_logits, T)
    thr = FP.threshold_for_accuracy(pT, va_lab[vk], ABSTAIN_TARGET)
    answered = pT.max(1) >= thr
    cal = {
        "temperature": T, "abstain_threshold": thr, "abstain_target_valid_accuracy": ABSTAIN_TARGET,
        "test_time_flip": use_flip, "export_choice": choice,
        "valid": {"n": int(vk.sum()), "accuracy": float((p1.argmax(1) == va_lab[vk]).mean()),
                  "nll_before": FP.nll(p1, va_lab[vk]), "nll_after": FP.nll(pT, va_lab[vk]),
                  "ece_before": FP.ece(p1, va_lab[vk]), "ece_after": FP.ece(pT, va_lab[vk]),
                  "coverage_at_threshold": float(answered.mean()),
                  "accuracy_answered_at_threshold": float((pT.argmax(1) == va_lab[vk])[answered].mean())},
    }
    log.info("calibration %s", json.dumps(cal))
    training = {"params": n_params, "widths": list(widths), "epochs": a.epochs, "batch": a.batch, "lr": a.lr,
                "weight_decay": a.wd, "seed": a.seed,
                "init_onnx": str(a.init_onnx) if a.init_onnx else None, "capture_aug": a.capture_aug,
                "teacher": teacher_record(a.teacher) if a.teacher else None,
                "teacher_weight": a.teacher_weight if a.teacher else None, "device": a.device, "threads": a.threads, "train_images": int(len(tr_names)),
                "train_images_dropped_unknown_nf": dropped, "subset": a.subset,
                "torch": torch.__version__, "wall_seconds": time.time() - t0, "history": history}
    (a.out / "calibration.json").write_text(json.dumps({**cal, "training": training}, indent=1))

    if a.install:
        dst = ROOT / "src" / "mien" / "models" / "perceived.onnx"
        data = model_path.read_bytes()
        dst.write_bytes(data)
        sidecar = {
            "file": "perceived.onnx", "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "classes": list(FP.CLASSES), "input": "face: (N,1,48,48) float32 grey 0..255, FER2013 framing",
            "output": "logits: (N,8); probabilities = softmax(logits / temperature)",
            "temperature": T, "abstain_threshold": thr, "abstain_rule": f"top probability < threshold, "
            f"threshold = lowest at which Valid accuracy on answered faces >= {ABSTAIN_TARGET:.0%}",
            "test_time_flip": use_flip,
            "source": "trained by mien: training/train_perceived.py (seed %d)" % a.seed,
            "training_data": "FERPlus label.csv (2016) votes on FER2013 Train; Valid for calibration",
            "licence": "model weights: same licence as mien; trained on FER2013 pixels (no stated licence, "
                       "not redistributed) and FERPlus votes (MIT, Microsoft)",
            "training": {k: v for k, v in training.items() if k != "history"},
        }
        (dst.parent / "perceived.json").write_text(json.dumps(sidecar, indent=1) + "\n")
        (HERE / "perceived_training.json").write_text(json.dumps({**cal, "training": training}, indent=1) + "\n")
        subprocess.run([sys.executable, str(ROOT / "tools" / "refresh_manifest.py")], check=True)
        log.info("installed %s sha256 %s", dst, sidecar["sha256"])
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "perceived_eval.py"), "--skip-pipeline"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
