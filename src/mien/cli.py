"""The ``mien`` command."""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

from . import __version__
from .images import IMAGE_SUFFIXES, ImageReadError, read_image
from .video import VIDEO_SUFFIXES, VideoReadError
from .results import FORMATS, ImageResult, check_output_path, to_frame, write_table

DESCRIPTION = """mien measures faces, not feelings: face boxes, 468-point landmarks, head pose and
per-face quality, written as one tidy table. It does not infer what anyone feels."""


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files from file, folder and glob arguments (folders: image files, recursively, sorted).
    Returns the files and notes for the user about what was skipped."""
    files: list[Path] = []
    notes: list[str] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file())
            images = [f for f in found if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES]
            if len(found) > len(images):
                notes.append(f"{arg}: skipped {len(found) - len(images)} file(s) without an image or video suffix")
            files.extend(images)
        elif p.exists() or p.is_symlink():
            files.append(p)
        elif glob.has_magic(arg):
            matched = sorted(Path(m) for m in glob.glob(arg, recursive=True) if Path(m).is_file())
            if not matched:
                notes.append(f"{arg}: the pattern matched no files")
            files.extend(matched)
        else:
            files.append(p)  # reported as "file not found" in the table
    return files, notes


def _progress(items, total: int):
    if total < 10:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit="image", file=sys.stderr, dynamic_ncols=True)


def run_analyze(args: argparse.Namespace) -> int:
    from .analyzer import Analyzer, AnalyzerOptions

    try:
        out = check_output_path(args.output)
    except ValueError as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return 2
    files, notes = expand_inputs(args.paths)
    for note in notes:
        print(f"mien: {note}", file=sys.stderr)
    if not files:
        print("mien: error: no input files", file=sys.stderr)
        return 2
    analyzer = Analyzer(AnalyzerOptions(detector=args.detector, min_detection_score=args.min_score, iris=not args.no_iris,
                                        keep_landmarks=bool(args.landmarks or args.annotate)))
    annotate_dir = Path(args.annotate) if args.annotate else None
    results: list[ImageResult] = []
    for path in _progress(files, len(files)):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            results.extend(_analyze_video(path, analyzer, args))
            continue
        try:
            rgb = read_image(path)
        except ImageReadError as exc:
            results.append(ImageResult.failed(str(path), str(exc)))
            print(f"mien: error: {path}: {exc}", file=sys.stderr)
            continue
        batch = analyzer.measure(rgb)
        result = analyzer.result(rgb, batch, str(path))
        results.append(result)
        if annotate_dir is not None:
            from .annotate import write_annotations

            write_annotations(annotate_dir, path.stem, rgb, result, batch)
    frame = to_frame(results, landmarks=args.landmarks)
    write_table(frame, out)
    failed = sum(r.status == "error" for r in results)
    faces = sum(len(r.faces) for r in results)
    print(f"mien: {len(results)} image(s) or frame(s), {faces} face(s), {failed} failed -> {out}", file=sys.stderr)
    if annotate_dir is not None:
        print(f"mien: annotated images in {annotate_dir}", file=sys.stderr)
    return 1 if failed else 0


def _analyze_video(path: Path, analyzer, args: argparse.Namespace) -> list[ImageResult]:
    from tqdm import tqdm

    from .video import analyze_video, probe

    def report(frame, message):
        print(f"mien: error: {path}: frame {frame.index}: {message}", file=sys.stderr)

    try:
        info = probe(path)
    except VideoReadError as exc:
        print(f"mien: error: {path}: {exc}", file=sys.stderr)
        return [ImageResult.failed(str(path), str(exc))]
    results = []
    stream = analyze_video(path, analyzer, detect_every=args.detect_every, stride=args.stride, target_fps=args.fps,
                           start_s=args.start, end_s=args.end, on_error=report)
    with tqdm(total=info.frame_count or None, unit="frame", desc=path.name, file=sys.stderr, dynamic_ncols=True,
              disable=None) as bar:
        for result in stream:
            results.append(result)
            bar.n = result.frame + 1
            bar.refresh() if bar.n % 30 == 0 else None
    if not results:
        message = "no frames in the requested range" if args.start or args.end else "no decodable frames"
        print(f"mien: error: {path}: {message}", file=sys.stderr)
        results.append(ImageResult.failed(str(path), message))
    return results


def run_demo(args: argparse.Namespace) -> int:
    from importlib import resources

    sample = Path(str(resources.files("mien") / "data" / "astronaut.png"))
    out_dir = Path(args.output_dir)
    table = out_dir / "faces.csv"
    ns = build_parser().parse_args(["analyze", str(sample), "-o", str(table), "--annotate", str(out_dir)])
    code = run_analyze(ns)
    if code == 0:
        print(f"mien demo: the sample is NASA's public-domain portrait of Eileen Collins ({sample.name}).\n"
              f"  table:     {table.resolve()}\n"
              f"  picture:   {(out_dir / 'astronaut_annotated.png').resolve()}\n"
              "Each row is one face: box, detector score, head pose (degrees), quality and FACS action units "
              "(facial movements, not feelings; see docs/action_units.md). "
              "Run `mien analyze --help` for your own images.")
    return code


def run_schema(args: argparse.Namespace) -> int:
    from .results import schema_markdown

    print(schema_markdown(), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mien", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"mien {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    an = sub.add_parser("analyze", help="measure the faces in images", description=(
        "Measure every face in the given images and write one row per face. Images without a "
        "face, and files that cannot be read, get a row with status no_face or error; the exit "
        "code is 1 when any file failed, 2 for usage errors."))
    an.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, folders (searched recursively) or glob patterns")
    an.add_argument("-o", "--output", required=True, metavar="OUT", help=f"output table; format by suffix: {', '.join(FORMATS)}")
    an.add_argument("--annotate", metavar="DIR", help="also write, per image, an annotated PNG (box, mesh, pose axes, iris, "
                    "the regions and movements of the action units present) and a bar chart of each face's action units into DIR")
    an.add_argument("--landmarks", action="store_true", help="add the 468 landmarks (lmNNN_x/y/z, pixels) to the table; "
                    "they are large and they are biometric data, so they are left out unless asked for")
    an.add_argument("--detector", choices=["auto", "short", "full"], default="auto",
                    help="face detector: short range (close-ups), full range (small, distant faces) or auto (both; default)")
    an.add_argument("--min-score", type=float, default=0.5, help="minimum face detection score, 0..1 (default 0.5)")
    an.add_argument("--no-iris", action="store_true", help="skip the iris model (about 2 ms per face)")
    video = an.add_argument_group("video", "options for video files (mp4, mov, mkv, avi, webm, ...): one row per face per frame, "
                                  "with a track id and the frame's timestamp")
    video.add_argument("--detect-every", type=int, default=10, metavar="N",
                       help="run the face detector every N frames to find new faces; between, faces are tracked from their landmarks (default 10)")
    video.add_argument("--stride", type=int, default=1, metavar="N", help="analyse every N-th frame (default 1)")
    video.add_argument("--fps", type=float, metavar="RATE", help="analyse at most RATE frames per second of video, by timestamp")
    video.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="start time")
    video.add_argument("--end", type=float, metavar="SECONDS", help="end time")
    an.set_defaults(func=run_analyze)

    demo = sub.add_parser("demo", help="run on the bundled sample photo", description=(
        "Analyse the bundled public-domain sample photo and write faces.csv and an annotated picture."))
    demo.add_argument("-o", "--output-dir", default="mien-demo", help="folder for the outputs (default ./mien-demo)")
    demo.set_defaults(func=run_demo)

    schema = sub.add_parser("schema", help="print the output columns and what each means",
                            description="Print the table schema (column, type, meaning) as Markdown.")
    schema.set_defaults(func=run_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("mien: interrupted; outputs already written are complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
