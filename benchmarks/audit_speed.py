"""Time a full `mien audit` of FERPlus Test (robustness and strata included) on one CPU core.

    python benchmarks/audit_speed.py                 # mien's model
    python benchmarks/audit_speed.py --model cfg.json

The process is pinned to one core (sched_setaffinity) and every library runs one thread. Nothing is
cached between runs: images are read, mien's face measurements are made and the 12 perturbations are
run from scratch. Prints the wall time of each stage and the total, including writing the card.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from one_core import pin_to_one_core  # noqa: E402
from mien.audit import load_dataset, load_model, run_audit, write_card  # noqa: E402

FER_TEST = ROOT.parent / "shared" / "data" / "ferplus" / "data" / "FER2013Test"
BUDGET_S = 180.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="mien")
    ap.add_argument("--dataset", default=str(FER_TEST))
    args = ap.parse_args(argv)
    pin_to_one_core()
    t0 = time.perf_counter()
    ds = load_dataset(args.dataset)
    model = load_model(args.model, num_threads=1)
    t_load = time.perf_counter() - t0
    result = run_audit(ds, model, robustness=True, strata=True, seed=0, samples=1000)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_card(result, tmp)
        t_card = time.perf_counter() - t
    total = time.perf_counter() - t0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, pinned to {cores} core; "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print(f"dataset: {len(ds)} images listed, {result.headline.images} scored; model: {model.description}")
    for k, v in result.timing.items():
        print(f"  {k:>16}: {v:7.2f} s")
    print(f"  {'load + card':>16}: {t_load + t_card:7.2f} s")
    print(f"audit with robustness (12 changes) and strata, one core: {total:.1f} s "
          f"({'within' if total <= BUDGET_S else 'OVER'} the {BUDGET_S:.0f} s budget)")
    return 0 if total <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
