"""The ``mien`` command."""
from __future__ import annotations

import argparse
import glob
import re
import sys
from pathlib import Path

from . import __version__
from .images import IMAGE_SUFFIXES, ImageReadError, read_image
from .video import VIDEO_SUFFIXES, VideoReadError
from .faces import Faces
from .io import FORMATS, check_output_path, write_table
from .results import to_frame

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


FLAG_OF_OPTION = {"min_detection_score": "--min-score"}


def _in_flags(message: str) -> str:
    """An ``Options`` error in the command's words: ``Options.detect_every`` becomes ``--detect-every``."""
    return re.sub(r"Options\.(\w+)", lambda m: FLAG_OF_OPTION.get(m.group(1), "--" + m.group(1).replace("_", "-")), message)


def _progress(items, total: int):
    if total < 10:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit="image", file=sys.stderr, dynamic_ncols=True)


def run_analyze(args: argparse.Namespace) -> int:
    from .analyzer import Analyzer, Mode, Options
    from .video.analysis import VideoOptions

    sequences = [Path(a) for a in args.paths if args.sequence is not None and Path(a).is_dir()]
    files, notes = expand_inputs([a for a in args.paths if Path(a) not in sequences])
    files = sequences + files
    for note in notes:
        print(f"mien: {note}", file=sys.stderr)
    if not files:
        print("mien: error: no input files", file=sys.stderr)
        return 2
    videos = [f for f in files if f in sequences or f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f not in videos]
    out = Path(args.output)
    to_folder = out.suffix == ""
    try:
        if to_folder:
            if args.format not in ("csv", "parquet", "json"):
                raise ValueError(f"--format must be csv, parquet or json, not {args.format!r}")
        else:
            check_output_path(out)
            if videos and (len(videos) > 1 or images):
                raise ValueError("several inputs include a video: give -o a folder, and each video gets its own tables there")
        if args.report and not (len(videos) == 1 and not to_folder) and not (to_folder and videos):
            raise ValueError("--report is for video input")
        video_options = VideoOptions(stride=args.stride, target_fps=args.fps, start_s=args.start, end_s=args.end,
                                     sequence_fps=30.0 if args.sequence is None else args.sequence,
                                     experimental_units=args.experimental_units)
        image_options = Options(detector=args.detector, min_detection_score=args.min_score, iris=not args.no_iris)
        video_mode = Options(mode=Mode.VIDEO, detector=args.detector, min_detection_score=args.min_score, iris=args.gaze,
                             detect_every=args.detect_every, smooth=not args.no_smoothing,
                             perceived_hz=args.perceived_hz or None, au_baseline=args.au_baseline)
    except ValueError as exc:
        print(f"mien: error: {_in_flags(str(exc))}", file=sys.stderr)
        return 2
    failed = 0
    if images:
        table_path = out / f"images.{args.format}" if to_folder else out
        failed += _analyze_images(images, Analyzer(image_options), args, table_path)
    analyzer = Analyzer(video_mode) if videos else None
    for video in videos:
        name = video.resolve().name if video in sequences else video.stem
        table_path = out / f"{name}.{args.format}" if to_folder else out
        report = None
        if args.report:
            report = Path(args.report) / f"{name}.html" if to_folder else Path(args.report)
        code = _analyze_video(video, name, analyzer, args, video_options, table_path, report)
        if code == 130:
            return 130
        failed += code
    return 1 if failed else 0


def _analyze_images(images: list[Path], analyzer, args: argparse.Namespace, out: Path) -> int:
    annotate_dir = Path(args.annotate) if args.annotate else None
    results: list[Faces] = []
    for path in _progress(images, len(images)):
        try:
            rgb = read_image(path)
        except ImageReadError as exc:
            results.append(Faces.failed(str(path), str(exc)))
            print(f"mien: error: {path}: {exc}", file=sys.stderr)
            continue
        faces = analyzer.analyze(rgb, source=str(path))
        results.append(faces)
        if annotate_dir is not None:
            from .annotate import write_annotations

            write_annotations(annotate_dir, path.stem, rgb, faces)
    write_table(to_frame(results, landmarks=args.landmarks), out)
    failed = sum(r.status == "error" for r in results)
    faces = sum(len(r) for r in results)
    print(f"mien: {len(results)} image(s), {faces} face(s), {failed} failed -> {out}", file=sys.stderr)
    if annotate_dir is not None:
        print(f"mien: annotated images in {annotate_dir}", file=sys.stderr)
    return 1 if failed else 0


def _analyze_video(path: Path, name: str, analyzer, args: argparse.Namespace, options, out: Path, report: Path | None) -> int:
    """0 when done, 1 when the video or some frames could not be read, 130 when interrupted."""
    from tqdm import tqdm

    from .video import probe
    from .video.analysis import RunInterrupted, run_video

    try:
        info = probe(path)
    except (VideoReadError, ImageReadError) as exc:
        print(f"mien: error: {path}: {exc}", file=sys.stderr)
        write_table(to_frame(Faces.failed(str(path), str(exc))), out)
        return 1
    bar = tqdm(total=info.frame_count or None, unit="frame", desc=path.name, file=sys.stderr, dynamic_ncols=True, disable=None)

    def on_frame(frame, _info):
        bar.update(frame.index + 1 - bar.n)

    def on_error(frame, message):
        bar.write(f"mien: error: {path}: frame {frame.index}: {message}", file=sys.stderr)

    try:
        with bar:
            annotated = Path(args.annotate) / f"{name}_annotated.mp4" if args.annotate else None
            result = run_video(path, out, analyzer, options, checkpoint_every=args.checkpoint_every, landmarks=args.landmarks,
                               on_frame=on_frame, on_error=on_error, report=report, annotated_video=annotated)
    except RunInterrupted as exc:
        print(f"mien: {path}: {exc}", file=sys.stderr)
        return 130
    resumed = f" (resumed after frame {result.resumed_from})" if result.resumed_from >= 0 else ""
    print(f"mien: {path}: {result.frames} frames{resumed}, {result.faces} face rows, {result.failed_frames} frames failed -> "
          f"{result.frames_table}, {result.tracks_table.name}, {result.episodes_table.name}"
          + (f", report {report}" if report else "") + (f", video {annotated}" if annotated else ""), file=sys.stderr)
    if result.frames == 0:
        print(f"mien: error: {path}: no frames in the requested range", file=sys.stderr)
        return 1
    return 1 if result.failed_frames else 0


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
              "Each row is one face: box, detector score, head pose (degrees), quality, FACS action units "
              "(facial movements, not feelings) and perceived expression (how observers would label the face, "
              "not what the person feels). "
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
    an.add_argument("-o", "--output", required=True, metavar="OUT", help=f"output table, format by suffix ({', '.join(FORMATS)}); "
                    "or a folder, for several videos, where each input gets its own tables")
    an.add_argument("--format", default="parquet", help="table format when OUT is a folder: parquet (default), csv or json")
    an.add_argument("--annotate", metavar="DIR", help="also write, per image, an annotated PNG (box, mesh, pose axes, iris, "
                    "the regions and movements of the action units present) and a bar chart of each face's action units "
                    "into DIR; per video, an annotated MPEG-4 video (box, track id, action units present)")
    an.add_argument("--landmarks", action="store_true", help="add the 468 landmarks (lmNNN_x/y/z, pixels) to the table; "
                    "they are large and they are biometric data, so they are left out unless asked for")
    an.add_argument("--detector", choices=["auto", "short", "full"], default="auto",
                    help="face detector: short range (close-ups), full range (small, distant faces) or auto (both; default)")
    an.add_argument("--min-score", type=float, default=0.5, help="minimum face detection score, 0..1 (default 0.5)")
    an.add_argument("--no-iris", action="store_true", help="images: skip the iris model and gaze (about 2.5 ms per face)")
    video = an.add_argument_group("video", "options for video files (mp4, mov, mkv, avi, webm, ...): one row per face per frame, "
                                  "with a track id and the frame's timestamp; also OUT.tracks (one row per track) and "
                                  "OUT.episodes (action-unit onset, apex, offset). A stopped run resumes when the same command "
                                  "is run again")
    video.add_argument("--detect-every", type=int, default=10, metavar="N",
                       help="run the face detector every N frames to find new faces; between, faces are tracked from their landmarks (default 10)")
    video.add_argument("--sequence", type=float, metavar="FPS",
                       help="read each folder given as a video: its images, in file-name order (frame_2 before frame_10), "
                       "are frames at FPS frames per second (without it, a folder is a set of separate images)")
    video.add_argument("--stride", type=int, default=1, metavar="N", help="analyse every N-th frame (default 1)")
    video.add_argument("--fps", type=float, metavar="RATE", help="analyse at most RATE frames per second of video, by timestamp")
    video.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="start time")
    video.add_argument("--end", type=float, metavar="SECONDS", help="end time")
    video.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report (a folder when OUT is a folder)")
    video.add_argument("--gaze", action="store_true", help="run the iris model for iris centres and estimated gaze (about 2.5 ms per face)")
    video.add_argument("--no-smoothing", action="store_true", help="do not smooth landmarks, pose and perceived expression over time "
                       "(then perceived expression is measured on every frame)")
    video.add_argument("--perceived-hz", type=float, default=10.0, metavar="HZ",
                       help="with smoothing, run the perceived-expression model on each face at most HZ times a second; rows "
                       "in between carry the smoothed value (default 10; 0: every frame)")
    video.add_argument("--au-baseline", choices=["track", "population"], default="track",
                       help="neutral reference of the action units: each track's own (from its neutral-looking frames, "
                       "once it has 15; the population's until then; default) or the population's")
    video.add_argument("--experimental-units", action="store_true",
                       help="also report episodes and track shares of units marked experimental (see mien schema)")
    video.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                       help="write a checkpoint every N frames, from which a stopped run resumes (default 1000)")
    an.set_defaults(func=run_analyze)

    demo = sub.add_parser("demo", help="run on the bundled sample photo", description=(
        "Analyse the bundled public-domain sample photo and write faces.csv and an annotated picture."))
    demo.add_argument("-o", "--output-dir", default="mien-demo", help="folder for the outputs (default ./mien-demo)")
    demo.set_defaults(func=run_demo)

    schema = sub.add_parser("schema", help="print the output columns and what each means",
                            description="Print the table schema (column, type, meaning) as Markdown.")
    schema.set_defaults(func=run_schema)

    from .audit.cli import add_audit_parser

    add_audit_parser(sub)
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
