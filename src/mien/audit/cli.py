"""The ``mien audit`` subcommand (wired into :func:`mien.cli.build_parser` by ``add_audit_parser``)."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

DESCRIPTION = """Score an expression model against crowd labels and write a validity card (HTML, Markdown,
JSON): agreement with the crowd majority next to a single annotator's, calibration, robustness and
the face conditions where it breaks. Agreement with observers is not knowledge of what anyone feels.
With several datasets, each gets its own card in its own folder, and every card (and comparison.html)
shows how the model holds across them."""


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``audit`` sub-command and its options to ``subparsers``; returns its parser."""
    au = subparsers.add_parser("audit", help="validity card for an expression model", description=DESCRIPTION)
    au.add_argument("datasets", nargs="+", metavar="DATASET", help="a FERPlus split folder (images + label.csv), a "
                    "folder with one sub-folder per class, a folder holding labels.csv (image paths relative to it or "
                    "to its images/ folder), or a CSV manifest (path + label, or path + vote counts)")
    au.add_argument("--model", default="mien", metavar="MODEL", help="'mien' (default: mien's perceived-expression "
                    "model), an ONNX model config (.json), or a predictions table (.csv, .parquet) from another tool or "
                    "from `mien analyze` (images without a prediction count as wrong and are reported as coverage)")
    au.add_argument("--layout", choices=["ferplus", "folders", "csv"], help="dataset layout (default: detected)")
    au.add_argument("--label-column", metavar="NAME", help="a manifest's label column, when more than one column holds "
                    "class names (by default the one column whose values are all class names or synonyms is used)")
    au.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="folder for card.html, card.md, card.json "
                    "and predictions.csv (with several datasets: one sub-folder per dataset, and comparison.html)")
    au.add_argument("--no-robustness", action="store_true", help="skip the runs on changed images")
    au.add_argument("--no-strata", action="store_true", help="skip mien's face measurements (yaw, pitch, size, exposure)")
    au.add_argument("--limit", type=int, metavar="N", help="score a seeded random sample of N images per dataset "
                    "(among those with a label)")
    au.add_argument("--seed", type=int, default=0, help="seed for sampling, perturbations and the bootstrap (default 0)")
    au.add_argument("--bootstrap", type=int, default=1000, metavar="B", help="bootstrap resamples (default 1000)")
    au.set_defaults(func=run_audit_command)
    return au


def card_folders(names: list[str]) -> list[str]:
    """One safe, distinct folder name per dataset name."""
    out: list[str] = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"
        folder, n = base, 2
        while folder in out:
            folder, n = f"{base}_{n}", n + 1
        out.append(folder)
    return out


def _sample(ds, limit: int, seed: int):
    import numpy as np

    from .datasets import DatasetError

    if limit < 1:
        raise DatasetError("--limit must be at least 1")
    labelled = np.nonzero(ds.labels >= 0)[0]  # sample among the images that can be scored
    if limit >= len(labelled):
        return ds
    rng = np.random.default_rng(seed)
    sample = ds.subset(np.sort(rng.choice(labelled, limit, replace=False)))
    sample.notes.append(f"a seeded random sample of {limit} images with a label (--limit, seed {seed})")
    return sample


def run_audit_command(args: argparse.Namespace) -> int:
    """Run ``mien audit`` for parsed ``args``: score the model on each dataset and write the cards
    (and, for several datasets, the comparison). Returns the exit status: 0 when the cards were
    written, 2 when a dataset, model or output folder cannot be used (the message is on stderr)."""
    from ..runtime import ModelFileError
    from .card import summary, write_card, write_comparison
    from .datasets import DatasetError, load_dataset
    from .models import ModelError, load_model
    from .run import run_audit, with_comparison

    from ..progress import StageLog

    log = StageLog("mien audit")  # each message with the time since the start, flushed (for logs under nohup)

    try:
        datasets = [load_dataset(p, args.layout, args.label_column) for p in args.datasets]
        if args.limit is not None:
            datasets = [_sample(ds, args.limit, args.seed) for ds in datasets]
        model = load_model(args.model)
        results = []
        for ds in datasets:
            log(f"{ds.name}: {len(ds)} images ({ds.layout} layout); model: {model.description}")
            results.append(run_audit(ds, model, robustness=not args.no_robustness, strata=not args.no_strata,
                                     seed=args.seed, samples=args.bootstrap, log=log))
    except (DatasetError, ModelError, ModelFileError) as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output_dir)
    try:
        if len(results) == 1:
            paths = write_card(results[0], out)
            log(summary(results[0]))
            log(f"card: {paths['html']} (also {paths['md'].name}, {paths['json'].name}, {paths['predictions'].name}); "
                f"{results[0].timing['total_s']:.1f} s")
            return 0
        folders = card_folders([r.dataset.name for r in results])
        for result, folder in zip(with_comparison(results), folders):
            write_card(result, out / folder)
            log(f"{result.dataset.name}: {summary(result)} card: {out / folder / 'card.html'}")
        paths = write_comparison(results, out, folders)
    except OSError as exc:
        print(f"mien: error: cannot write the cards into {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    log(f"comparison: {paths['html']} (also {paths['md'].name}, {paths['json'].name})")
    return 0
