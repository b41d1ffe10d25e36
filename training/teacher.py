"""Train a larger teacher ensemble on FERPlus crowd votes and keep its outputs as training data for the student.

    python training/teacher.py --out training/runs/teacher --device cuda      # on a GPU machine (minutes)

What it does, with fixed seeds:
1. trains ``--members`` TeacherNets (training/net.py, 11.2 M parameters each) at once, one process each, on the
   crowd vote distribution of FERPlus Train with the student's augmentation (train_perceived.augment); members
   with an odd index also mix pairs of faces and their targets (mixup, Beta(0.2, 0.2)). Each member measures its
   first steps and takes as many epochs as fit ``--budget-s`` seconds (between 8 and ``--max-epochs``), under a
   one-cycle schedule; bf16 autocast on a GPU;
2. writes <out>/teacher_views.npz: the members' mean logits on ``--views`` fixed augmentations of every Train face
   (train_perceived.view_augmentation). ``train_perceived.py --teacher`` distils from them on a CPU: the teacher's
   outputs are the training data, so the student needs no GPU;
3. writes <out>/teacher_eval.npz: each member's logits on FERPlus Valid and on the crossval pipeline crops carried
   by ``training/device_data.py`` (each face and its mirror image), for scoring only: nothing is fitted on crossval.
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ferplus as FP  # noqa: E402
from net import TeacherNet  # noqa: E402
from train_perceived import augment, pick, predict_logits, sample_augmentation, seed_everything, view_augmentation  # noqa: E402

log = logging.getLogger("teacher")
MIXUP_ALPHA = 0.2


class Member:
    """One teacher's training state; ``step`` runs one batch."""

    def __init__(self, index: int, a: argparse.Namespace, device: torch.device):
        self.mixup = index % 2 == 1
        self.device, self.batch = device, a.batch
        self.net = TeacherNet().to(device).to(memory_format=torch.channels_last)
        self.g = torch.Generator().manual_seed(a.seed + index)
        self.opt = self.optimiser(self.net, a.lr, a.wd)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    @staticmethod
    def optimiser(net: torch.nn.Module, lr: float, wd: float) -> torch.optim.Optimizer:
        decay = [p for p in net.parameters() if p.ndim > 1]
        no_decay = [p for p in net.parameters() if p.ndim <= 1]
        return torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0}],
                               lr=lr, momentum=0.9, nesterov=True)

    def loss(self, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = augment(x, pick(sample_augmentation(len(x), self.g), slice(None), self.device))
        if self.mixup:
            lam = float(torch.distributions.Beta(MIXUP_ALPHA, MIXUP_ALPHA).sample())
            partner = torch.randperm(len(x), generator=self.g).to(self.device)
            x, y = lam * x + (1 - lam) * x[partner], lam * y + (1 - lam) * y[partner]
        with self.autocast:
            logits = net(x.contiguous(memory_format=torch.channels_last))
        return -(y * torch.log_softmax(logits.float(), 1)).sum(1).mean()

    def seconds_per_step(self, X: torch.Tensor, Y: torch.Tensor, warm: int = 5, timed: int = 20) -> float:
        """Measured on a throwaway copy, so that the member's weights start untouched (its random stream moves on)."""
        probe = copy.deepcopy(self.net)
        opt = self.optimiser(probe, 1e-3, 0.0)
        for i in range(warm + timed):
            if i == warm:
                sync(self.device)
                t = time.perf_counter()
            idx = torch.randint(0, len(X), (self.batch,), generator=self.g).to(self.device)
            opt.zero_grad(set_to_none=True)
            self.loss(probe, X[idx], Y[idx]).backward()
            opt.step()
        sync(self.device)
        return (time.perf_counter() - t) / timed


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_member(index: int, a: argparse.Namespace) -> None:
    seed_everything(a.seed + index)
    device = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    names, dist, images, _ = FP.training_faces(a.subset)
    _, va_lab, va_img = FP.valid_faces()
    if a.subset:
        va_lab, va_img = va_lab[:a.subset], va_img[:a.subset]
    keep = va_lab >= 0
    X = torch.from_numpy(images).float().unsqueeze(1).to(device)
    Y = torch.from_numpy(dist).to(device)
    m = Member(index, a, device)
    steps_per_epoch = len(X) // a.batch
    per_step = m.seconds_per_step(X, Y)
    epochs = int(min(a.max_epochs, max(8, a.budget_s / (per_step * steps_per_epoch))))
    log.info("member %d (mixup %s): %.1f ms a step, %d epochs", index, m.mixup, 1000 * per_step, epochs)
    sched = torch.optim.lr_scheduler.OneCycleLR(m.opt, max_lr=a.lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.2, div_factor=20, final_div_factor=200)
    history, t0 = [], time.time()
    for ep in range(epochs):
        m.net.train()
        perm = torch.randperm(len(X), generator=m.g).to(device)
        for b in range(steps_per_epoch):
            idx = perm[b * a.batch:(b + 1) * a.batch]
            m.opt.zero_grad(set_to_none=True)
            m.loss(m.net, X[idx], Y[idx]).backward()
            m.opt.step()
            sched.step()
        if (ep + 1) % 5 == 0 or ep + 1 == epochs:
            acc = float((predict_logits(m.net, va_img[keep]).argmax(1) == va_lab[keep]).mean())
            history.append({"epoch": ep + 1, "valid_accuracy": acc, "seconds": time.time() - t0})
            log.info("member %d epoch %d/%d valid acc %.4f (%.0f s)", index, ep + 1, epochs, acc, time.time() - t0)
    torch.save(m.net.state_dict(), a.out / f"member-{index}.pt")
    record = {"index": index, "mixup": m.mixup, "epochs": epochs, "ms_per_step": 1000 * per_step,
              "train_seconds": time.time() - t0, "history": history}
    (a.out / f"member-{index}.json").write_text(json.dumps(record, indent=1))


@torch.no_grad()
def member_logits(nets: list[torch.nn.Module], faces: torch.Tensor, batch: int = 1024) -> np.ndarray:
    """(members, N, 8) float32 logits of faces (N,1,48,48) on the nets' device."""
    out = []
    for net in nets:
        net.eval()
        chunks = []
        for i in range(0, len(faces), batch):
            with torch.autocast(faces.device.type, dtype=torch.bfloat16, enabled=faces.device.type == "cuda"):
                chunks.append(net(faces[i:i + batch].contiguous(memory_format=torch.channels_last)).float().cpu())
        out.append(torch.cat(chunks).numpy())
    return np.stack(out)


def with_mirror(faces: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(faces).float().unsqueeze(1).to(device)
    return x, torch.flip(x, dims=[3])


def write_outputs(a: argparse.Namespace, members: list[dict]) -> None:
    device = torch.device(a.device)
    nets = []
    for k in range(a.members):
        net = TeacherNet().to(device).to(memory_format=torch.channels_last)
        net.load_state_dict(torch.load(a.out / f"member-{k}.pt", map_location=device))
        nets.append(net)
    names, _, images, _ = FP.training_faces(a.subset)
    X = torch.from_numpy(images).float().unsqueeze(1).to(device)
    every = torch.arange(len(X))
    views = np.stack([member_logits(nets, augment(X, pick(view_augmentation(len(X), v), every, device))).mean(0)
                      for v in range(a.views)]).astype(np.float16)
    record = {"members": members, "views": a.views, "torch": torch.__version__,
              "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "parameters_per_member": sum(p.numel() for p in nets[0].parameters())}
    np.savez(a.out / "teacher_views.npz", names=names, logits=views, record=json.dumps(record))
    va_names, _, va_img = FP.valid_faces()
    scored = {"valid_names": va_names}
    carried = sorted(a.crossval_crops.glob("crossval-*.npz"))
    if not carried:
        raise SystemExit(f"no crossval-<set>.npz in {a.crossval_crops}: carry training/device_data.py's pack")
    keys = {str(np.load(p)["pipeline_key"]) for p in carried}
    if len(keys) != 1:
        raise SystemExit(f"{a.crossval_crops}: crossval crops of several pipelines ({sorted(keys)})")
    scored["crossval_pipeline_key"] = keys.pop()
    sets = [("valid", va_img)] + [(p.stem.removeprefix("crossval-"), np.load(p)["crops"]) for p in carried]
    for key, faces in sets:
        if a.subset:
            faces = faces[:a.subset]
        x, x_flip = with_mirror(faces, device)
        scored[key], scored[f"{key}_flip"] = member_logits(nets, x), member_logits(nets, x_flip)
    np.savez_compressed(a.out / "teacher_eval.npz", record=json.dumps(record), **scored)
    log.info("wrote %s and %s", a.out / "teacher_views.npz", a.out / "teacher_eval.npz")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE / "runs" / "teacher")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=240.0, help="training seconds each member aims at")
    ap.add_argument("--max-epochs", type=int, default=120)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--views", type=int, default=24)
    ap.add_argument("--crossval-crops", type=Path, default=HERE.parent / "packed",
                    help="folder of crossval-<set>.npz crops (training/device_data.py pack)")
    ap.add_argument("--subset", type=int, default=0, help="only the first N faces of each set (smoke test)")
    ap.add_argument("--member", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(a.out / ("log.txt" if a.member is None else f"member-{a.member}.log"),
                                                      mode="w"), logging.StreamHandler()])
    if a.member is not None:
        train_member(a.member, a)
        return 0
    log.info("args %s", vars(a))
    forwarded = [arg for arg in (argv if argv is not None else sys.argv[1:])]
    procs = [subprocess.Popen([sys.executable, __file__, *forwarded, "--member", str(k)]) for k in range(a.members)]
    failed = [k for k, p in enumerate(procs) if p.wait() != 0]
    if failed:
        raise SystemExit(f"teacher members {failed} failed: see {a.out}/member-<k>.log")
    members = [json.loads((a.out / f"member-{k}.json").read_text()) for k in range(a.members)]
    write_outputs(a, members)
    return 0


if __name__ == "__main__":
    sys.exit(main())
