"""The ``mien audit`` subcommand (wired into :func:`mien.cli.build_parser` by ``add_audit_parser``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """Score an expression model against crowd labels and write a validity card (HTML, Markdown,
JSON): agreement with the crowd majority next to a single annotator's, calibration, robustness and
the face conditions where it breaks. Agreement with observers is not knowledge of what anyone feels."""


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    au = subparsers.add_parser("audit", help="validity card for an expression model", description=DESCRIPTION)
    au.add_argument("dataset", metavar="DATASET", help="a FERPlus split folder (images + label.csv), a folder with "
                    "one sub-folder per class, or a CSV manifest (path + label, or path + vote counts)")
    au.add_argument("--model", default="mien", metavar="MODEL", help="'mien' (default: mien's perceived-expression "
                    "model), an ONNX model config (.json) or a predictions file from another tool (.csv)")
    au.add_argument("--layout", choices=["ferplus", "folders", "csv"], help="dataset layout (default: detected)")
    au.add_argument("-o", "--output-dir", required=True, metavar="DIR", help="folder for card.html, card.md, card.json "
                    "and predictions.csv")
    au.add_argument("--no-robustness", action="store_true", help="skip the runs on changed images")
    au.add_argument("--no-strata", action="store_true", help="skip mien's face measurements (yaw, pitch, size, exposure)")
    au.add_argument("--limit", type=int, metavar="N", help="score a seeded random sample of N images (among those with a majority label)")
    au.add_argument("--seed", type=int, default=0, help="seed for sampling, perturbations and the bootstrap (default 0)")
    au.add_argument("--bootstrap", type=int, default=1000, metavar="B", help="bootstrap resamples (default 1000)")
    au.set_defaults(func=run_audit_command)
    return au


def run_audit_command(args: argparse.Namespace) -> int:
    import numpy as np

    from .card import summary, write_card
    from .datasets import DatasetError, load_dataset
    from .models import ModelError, load_model
    from ..runtime import ModelFileError
    from .run import run_audit

    def log(msg):
        print(f"mien audit: {msg}", file=sys.stderr)

    try:
        ds = load_dataset(args.dataset, args.layout)
        if args.limit is not None:
            if args.limit < 1:
                raise DatasetError("--limit must be at least 1")
            labelled = np.nonzero(ds.labels >= 0)[0]  # sample among the images that can be scored
            if args.limit < len(labelled):
                rng = np.random.default_rng(args.seed)
                ds = ds.subset(np.sort(rng.choice(labelled, args.limit, replace=False)))
                ds.notes.append(f"a seeded random sample of {args.limit} images with a majority label "
                                f"(--limit, seed {args.seed})")
        model = load_model(args.model)
        log(f"{len(ds)} images ({ds.layout} layout); model: {model.description}")
        result = run_audit(ds, model, robustness=not args.no_robustness, strata=not args.no_strata, seed=args.seed,
                           samples=args.bootstrap, log=log)
    except (DatasetError, ModelError, ModelFileError) as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return 2
    try:
        paths = write_card(result, args.output_dir)
        _write_predictions(result, Path(args.output_dir) / "predictions.csv")
    except OSError as exc:
        print(f"mien: error: cannot write the card into {args.output_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    log(summary(result))
    log(f"card: {paths['html']} (also {paths['md'].name}, {paths['json'].name}); "
        f"{result['timing']['total_s']:.1f} s")
    return 0


def _write_predictions(result: dict, path: Path) -> None:
    """Per-image predictions are kept in the result only as examples; the full table is written here."""
    rows = result.get("_per_image")
    if rows is None:
        return
    rows.to_csv(path, index=False)
