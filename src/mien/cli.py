"""The ``mien`` command."""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .images import IMAGE_SUFFIXES, ImageReadError
from .io import FORMATS, OutputError, check_destination, check_output_path, file_size_limit, write_table
from .outputs import check_distinct, output_names
from .faces import Faces
from .results import to_frame
from .video import VIDEO_SUFFIXES, VideoReadError

FORMAT_NAMES = tuple(f[1:] for f in FORMATS) + ("openface",)  # openface: a CSV in OpenFace 2's layout (mien.export)
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = """exit codes:
  0    every input was analysed and every output written
  1    some inputs (or some video frames) failed: their rows say which, with status
       'error'; or an output could not be written (the message says where the results
       were kept instead)
  2    usage or setup error, found before any analysis: bad options, no inputs, an
       output that cannot be written, or another run working on the same output
  130  interrupted (Ctrl-C); a video run resumes when the same command is run again"""

DESCRIPTION = """mien measures faces, not feelings. In photos and videos it finds faces and measures, per
face: a 468-point mesh, head pose, gaze, FACS action units (facial movements such as AU12, lip
corner puller), perceived expression (how a crowd of observers would label the face, with an
'uncertain' when it cannot say) and how far to trust each number (quality checks, 'reliable').
Video adds face tracks, per-track baselines, action-unit episodes and an HTML report; 'mien
audit' scores any expression model against crowd labels. It does not infer what anyone feels."""


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files from file, folder and glob arguments (folders: image files, recursively, sorted).
    Returns the files and notes for the user about what was skipped."""
    files: list[Path] = []
    notes: list[str] = []
    for arg in paths:
        p = Path(arg)
        if p.is_dir():
            entries = sorted(p.rglob("*"))
            found = [f for f in entries if not f.is_dir()]
            # Regular files go by suffix; links that lead nowhere, pipes and devices get an error row.
            media = [f for f in found if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES or not f.is_file()]
            if len(found) > len(media):
                notes.append(f"{arg}: skipped {len(found) - len(media)} file(s) without an image or video suffix")
            files.extend(media)
            linked = sum(f.is_symlink() and f.is_dir() for f in entries)
            if linked:
                notes.append(f"{arg}: did not follow {linked} link(s) to folders (a link may lead back into the folder)")
        elif p.exists() or p.is_symlink():
            files.append(p)
        elif glob.has_magic(arg):
            matched = sorted(Path(m) for m in glob.glob(arg, recursive=True) if not Path(m).is_dir())
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


@dataclass(frozen=True)
class VideoJob:
    """One video of an ``analyze`` run and where its outputs go: the per-frame ``table`` (the tracks and
    episodes tables beside it), the HTML ``report`` and the ``annotated`` video's path (None: not asked for)."""

    path: Path
    table: Path
    report: Path | None
    annotated: Path | None


@dataclass(frozen=True)
class Plan:
    """Every output of a run, named and checked before any analysis."""
    images: list[Path]
    images_table: Path | None
    annotate: Path | None
    names: dict[Path, str]  # input -> its distinct output name (see mien.outputs)
    videos: list[VideoJob]
    images_report: Path | None = None


def plan_outputs(args: argparse.Namespace, images: list[Path], videos: list[Path]) -> Plan:
    """Decide where everything goes; raise ValueError (or io.OutputError) for a run that could not
    write its outputs, so that it stops before the analysis."""
    from .video.analysis import companion_path, work_folder

    from .annotate import browser_codec

    out = Path(args.output)
    to_folder = out.suffix == ""
    suffix = _suffix(args.format)
    if to_folder:
        if out.exists() and not out.is_dir():
            raise ValueError(f"-o {out} is a file; give a table name ending in {', '.join(FORMATS)}, or a folder")
    else:
        check_output_path(out)
        if args.format == "openface" and out.suffix.lower() != ".csv":
            raise ValueError(f"--format openface writes a CSV file: give -o a name ending in .csv, not {out.name}")
        if videos and (len(videos) > 1 or images):
            raise ValueError("several inputs include a video: give -o a folder, and each video gets its own tables there")
    if args.report and images and videos:
        raise ValueError("--report takes photos or videos, not both in one run")
    if args.report and images and not args.report.lower().endswith((".html", ".htm")):
        raise ValueError(f"--report for photos is one HTML page: give a name ending in .html, not {args.report}")
    names = output_names(images + videos, reserved=("images",) if images and to_folder else ())
    annotate = Path(args.annotate) if args.annotate else None
    report_folder = Path(args.report) if args.report and to_folder and videos else None
    images_table = (out / f"images.{suffix}" if to_folder else out) if images else None
    images_report = Path(args.report) if args.report and images else None
    outputs: list[tuple[Path, str]] = []
    if images_table:
        outputs.append((images_table, "the images' table"))
    if images_report:
        outputs.append((images_report, "the photos' report"))
    if annotate:
        outputs += [(annotate / f"{names[p]}_annotated.jpg", f"the picture of {p}") for p in images]
    video_suffix = (browser_codec() or ("", ".mp4"))[1]  # the container follows the encoders installed
    jobs = []
    for video in videos:
        table = out / f"{names[video]}.{suffix}" if to_folder else out
        report = report_folder / f"{names[video]}.html" if report_folder else Path(args.report) if args.report else None
        annotated = annotate / f"{names[video]}_annotated{video_suffix}" if annotate else None
        jobs.append(VideoJob(video, table, report, annotated))
        for path, what in ((table, "table"), (companion_path(table, "tracks"), "tracks table"),
                           (companion_path(table, "episodes"), "episodes table"), (work_folder(table), "work folder"),
                           (report, "report"), (annotated, "annotated video")):
            if path is not None:
                outputs.append((path, f"the {what} of {video}"))
    check_distinct(outputs)
    probed: set[Path] = set()
    for folder in (annotate, report_folder, out if to_folder else None):
        if folder is not None:
            check_destination(folder, folder=True, probed=probed)
    for path, _ in outputs:
        check_destination(path, folder=path.name.endswith(".mien-partial"), probed=probed)
    return Plan(images, images_table, annotate, names, jobs, images_report)


def run_analyze(args: argparse.Namespace) -> int:
    """Run ``mien analyze`` for parsed ``args``: measure the faces in the images and videos named and
    write the tables (and, where asked, annotated pictures and reports). Returns the exit status:
    0 when every input was analysed, 1 when some failed (their rows say why), 2 for a usage error,
    130 when interrupted."""
    from .analyzer import Analyzer, Mode, Options
    from .scale.workers import default_workers, use_one_thread
    from .video.analysis import VideoOptions

    sequences = [Path(a) for a in args.paths if args.sequence is not None and Path(a).is_dir()]
    files, notes = expand_inputs([a for a in args.paths if Path(a) not in sequences])
    files = sequences + files
    for note in notes:
        print(f"mien: {note}", file=sys.stderr)
    if not files:
        print("mien: error: no input files", file=sys.stderr)
        return EXIT_USAGE
    videos = [f for f in files if f in sequences or f.suffix.lower() in VIDEO_SUFFIXES]
    images = [f for f in files if f not in videos]
    try:
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {args.workers}")
        if args.checkpoint_every < 1:
            raise ValueError(f"--checkpoint-every must be at least 1 frame, not {args.checkpoint_every}")
        plan = plan_outputs(args, images, videos)
        video_options = VideoOptions(stride=args.stride, target_fps=args.fps, start_s=args.start, end_s=args.end,
                                     sequence_fps=30.0 if args.sequence is None else args.sequence,
                                     experimental_units=args.experimental_units)
        image_options = Options(detector=args.detector, min_detection_score=args.min_score, iris=not args.no_iris)
        video_mode = Options(mode=Mode.VIDEO, detector=args.detector, min_detection_score=args.min_score, iris=args.gaze,
                             detect_every=args.detect_every, smooth=not args.no_smoothing,
                             perceived_hz=args.perceived_hz or None, au_baseline=args.au_baseline)
    except (ValueError, OutputError) as exc:
        print(f"mien: error: {_in_flags(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    limit = file_size_limit()
    if limit is not None:
        print(f"mien: warning: files are limited to {limit} bytes (ulimit -f); a larger output cannot be written", file=sys.stderr)
    if args.ray:
        return _analyze_on_ray(args, plan, image_options, video_mode, video_options)
    workers = args.workers or default_workers()
    use_one_thread()  # --workers N uses N cores: this process works (or waits) on one, as each worker does
    codes = []
    if images:
        codes.append(_analyze_images(plan, image_options, args, workers))
    pieces = _pieces(plan, args, video_mode, video_options, workers)
    wholes = [job for job in plan.videos if job.path not in pieces]
    if workers > 1 and len(wholes) > 1:
        codes += _analyze_videos_on_workers(wholes, video_mode, video_options, args, workers)
        if EXIT_INTERRUPTED in codes:
            return EXIT_INTERRUPTED
        wholes = []
    analyzer = Analyzer(video_mode) if wholes else None
    for job in plan.videos:
        if job.path in pieces:
            code = _analyze_video_in_pieces(job, pieces[job.path], video_mode, args, workers)
        elif job in wholes:
            code = _analyze_video(job, analyzer, args, video_options)
        else:
            continue
        if code == EXIT_INTERRUPTED:
            return EXIT_INTERRUPTED
        codes.append(code)
    if codes and all(code == EXIT_USAGE for code in codes):
        return EXIT_USAGE
    return EXIT_FAILED if any(codes) else EXIT_OK


def _suffix(table_format: str) -> str:
    return "csv" if table_format == "openface" else table_format


def _write_main_table(frame, out: Path, table_format: str) -> None:
    if table_format == "openface":
        from .export import write_openface

        write_openface(frame, out)
    else:
        write_table(frame, out)


def _write_or_rescue(frame, out: Path, table_format: str = "") -> bool:
    """Write the table (``table_format`` openface: in OpenFace's layout, else by suffix); when that
    fails, write it to the temporary folder instead and say where. True when it is at ``out``."""
    try:
        _write_main_table(frame, out, table_format)
        return True
    except OSError as exc:
        reason = exc.strerror or str(exc)
    rescue = Path(tempfile.gettempdir()) / f"mien-rescued-{os.getpid()}-{out.name[-100:]}"
    try:
        _write_main_table(frame, rescue, table_format)
        where = f"the table was written to {rescue} instead"
    except OSError as exc:
        where = f"nor to {rescue} ({exc.strerror or exc}): the results of this run are lost"
    print(f"mien: error: could not write {out} ({reason}); {where}", file=sys.stderr)
    return False


def _analyze_images(plan: Plan, options, args: argparse.Namespace, workers: int) -> int:
    """The photos, on ``workers`` processes (see mien.scale.workers), into one table in input order."""
    from .progress import Progress
    from .scale.tasks import ImageJob, analyze_image
    from .scale.workers import run_tasks

    out = plan.images_table
    jobs = [ImageJob(path, (plan.annotate, plan.names[path]) if plan.annotate else None, args.charts,
                     plan.images_report is not None) for path in plan.images]
    outcomes: list = [None] * len(jobs)
    annotate_failed = None
    with Progress(len(plan.images), "image", "mien", found_unit="face") as progress:
        for i, outcome in run_tasks([(analyze_image, options, job) for job in jobs], workers, short=True):
            progress.advance(found=len(outcome.faces))
            outcomes[i] = outcome
            if outcome.faces.status == "error":
                progress.write(f"mien: error: {outcome.faces.source}: {outcome.faces.error}")
            if outcome.picture_error and annotate_failed is None:
                annotate_failed = outcome.picture_error
                progress.write(f"mien: error: {annotate_failed}")
    results = [o.faces for o in outcomes]
    thumbnails = {(i, face): data for i, o in enumerate(outcomes) for face, data in enumerate(o.thumbnails)}
    table = to_frame(results, landmarks=args.landmarks)
    written = _write_or_rescue(table, out, args.format)
    report_failed = False
    if plan.images_report is not None:
        from .gallery import write_gallery

        try:
            write_gallery(plan.images_report, table, thumbnails, out, settings=_settings(args))
        except OSError as exc:
            report_failed = True
            print(f"mien: error: could not write the report {plan.images_report} ({exc.strerror or exc})", file=sys.stderr)
    failed = sum(r.status == "error" for r in results)
    faces = sum(len(r) for r in results)
    print(f"mien: {len(results)} image(s), {faces} face(s), {failed} failed" + (f" -> {out}" if written else "")
          + (f", report {plan.images_report}" if plan.images_report and not report_failed else ""), file=sys.stderr)
    if plan.annotate is not None and annotate_failed is None:
        print(f"mien: annotated images in {plan.annotate}", file=sys.stderr)
    return EXIT_FAILED if failed or not written or annotate_failed or report_failed else EXIT_OK


def _task_job(job: VideoJob, video_options, args: argparse.Namespace):
    """The worker's job (``mien.scale.tasks.VideoJob``) for one video of the plan."""
    from .scale.tasks import VideoJob as Task

    return Task(job.path, job.table, video_options, args.landmarks, args.checkpoint_every, job.report, job.annotated,
                tuple(_settings(args).items()))


def _pieces(plan: Plan, args: argparse.Namespace, video_mode, video_options, workers: int) -> dict:
    """Input -> its pieces, for the videos cut into pieces (several workers, longer than --chunk)."""
    from .scale.chunks import split_videos

    if workers < 2 or not plan.videos:
        return {}
    wholes = [_task_job(job, video_options, args) for job in plan.videos]
    return {whole.path: parts for whole, parts in split_videos(wholes, video_mode, args.chunk, workers).items()}


def _analyze_video_in_pieces(job: VideoJob, pieces: list, video_mode, args: argparse.Namespace, workers: int) -> int:
    """A long video's pieces on ``workers`` processes, stitched into its tables (see mien.scale.chunks),
    then its report and annotated video, where asked, drawn piece by piece from them (mien.scale.pictures)."""
    from .scale.chunks import SeamError, analyze_piece, finish_video, finished, work_folder
    from .scale.tasks import analyze_video_safely, output_failed
    from .analyzer import Analyzer

    _run_pieces([(analyze_piece, video_mode, piece) for piece in pieces if not finished(piece)], workers,
                job.path.name)
    video = pieces[0].video
    try:
        if video.report is None and video.annotated is None:
            outcome = finish_video(video, pieces, video_mode)
        else:
            outcome = _pictures_in_pieces(video, pieces, video_mode, workers)
    except SeamError as exc:
        print(f"mien: {job.path}: the pieces do not join ({exc}); analysing the video whole", file=sys.stderr)
        outcome = analyze_video_safely(Analyzer(video_mode), video)
        shutil.rmtree(work_folder(video), ignore_errors=True)
    except OSError as exc:  # the finished pieces stay in their work folder for the rerun
        outcome = output_failed(video, exc)
    return _finish_video(outcome, args, pieces=len(pieces))


def _pictures_in_pieces(video, pieces: list, video_mode, workers: int):
    """Stitch a long video's pieces into its tables, then draw its annotated video and cut its
    report's faces piece by piece on ``workers`` processes, and write them; its ``VideoOutcome``."""
    from .scale.chunks import stitch_video
    from .scale.pictures import cut_pictures, finish_pictures, finished_pictures, plan_pictures

    stitched = stitch_video(video, pieces, video_mode)
    pictures = plan_pictures(video, pieces, stitched)
    _run_pieces([(cut_pictures, None, p) for p in pictures.passes if not finished_pictures(p)], workers,
                f"{video.path.name} (pictures)")
    return finish_pictures(video, stitched, pictures)


def _run_pieces(tasks: list, workers: int, label: str) -> None:
    """Run a video's piece tasks on ``workers`` processes with one progress bar of pieces done."""
    from .progress import Progress
    from .scale.workers import run_tasks

    with Progress(len(tasks), "piece", label) as progress:
        for _ in run_tasks(tasks, workers):
            progress.advance()


def _analyze_videos_on_workers(jobs: list[VideoJob], video_mode, video_options, args: argparse.Namespace,
                               workers: int) -> list[int]:
    """Whole videos, one per worker process at a time (see mien.scale.workers); their exit statuses."""
    from .progress import Progress
    from .scale.tasks import analyze_video_safely
    from .scale.workers import run_tasks

    tasks = [(analyze_video_safely, video_mode, _task_job(job, video_options, args)) for job in jobs]
    codes = []
    with Progress(len(tasks), "video", f"{len(tasks)} videos on {min(workers, len(tasks))} workers",
                  found_unit="face row") as progress:
        for _, outcome in run_tasks(tasks, workers):
            codes.append(_finish_video(outcome, args, say=progress.write))
            progress.advance(found=outcome.run.faces if outcome.run else 0)
    return codes


def _analyze_video(job: VideoJob, analyzer, args: argparse.Namespace, options) -> int:
    """One video in this process, with a progress bar of its frames; its exit status (see ``_finish_video``)."""
    from .progress import Progress
    from .scale.tasks import VideoOutcome, analyze_video_safely
    from .video import probe

    task = _task_job(job, options, args)
    try:
        info = probe(job.path)
    except (VideoReadError, ImageReadError) as exc:
        return _finish_video(VideoOutcome(task, error=str(exc)), args)
    bar = Progress(info.frame_count or None, "frame", job.path.name)

    def on_frame(frame, _info):
        bar.update(frame.index + 1)

    def on_error(frame, message):
        bar.write(f"mien: error: {job.path}: frame {frame.index}: {message}")

    with bar:
        outcome = analyze_video_safely(analyzer, task, on_frame, on_error)
    return _finish_video(outcome, args, frame_errors_shown=True)


def _finish_video(outcome, args: argparse.Namespace, pieces: int = 0, frame_errors_shown: bool = False, say=None) -> int:
    """Say how a video's run ended (``outcome``, a ``mien.scale.tasks.VideoOutcome``), write the
    OpenFace layout where asked, and return the exit status: 0 when done, 1 when the video, some
    frames or an output failed, 2 when its work folder cannot be used (another run holds it), 130
    when interrupted. ``say``: where the lines go (default stderr)."""
    from .scale.chunks import work_folder as pieces_folder
    from .video.analysis import work_folder

    say = say or (lambda line: print(line, file=sys.stderr))
    job, path = outcome.job, outcome.job.path
    if outcome.error:
        say(f"mien: error: {path}: {outcome.error}")
        _write_or_rescue(to_frame(Faces.failed(str(path), outcome.error)), job.out, args.format)
        return EXIT_FAILED
    if not frame_errors_shown:
        for message in outcome.frame_errors:
            say(f"mien: error: {path}: {message}")
    if outcome.stopped:
        say(f"mien: {path}: {outcome.stopped}")
        return EXIT_INTERRUPTED
    if outcome.locked:
        say(f"mien: error: {path}: {outcome.locked}")
        return EXIT_USAGE
    result = outcome.run
    try:
        if outcome.output_error:
            raise OSError(outcome.output_error)
        if args.format == "openface":
            from .export import convert_to_openface

            convert_to_openface(result.frames_table)
    except OSError as exc:
        work = pieces_folder(job) if pieces else work_folder(job.out)
        kept = (f"the analysed frames are kept in {work}: once the cause is fixed, the same command writes the "
                "outputs from there without analysing again") if work.is_dir() else "nothing was kept"
        say(f"mien: error: {path}: {exc}; {kept}")
        return EXIT_FAILED
    resumed = f" (resumed after frame {result.resumed_from})" if result.resumed_from >= 0 else ""
    split = f" in {pieces} pieces" if pieces else ""
    say(f"mien: {path}: {result.frames} frames{split}{resumed}, {result.faces} "
        f"face rows, {result.failed_frames} frames failed -> {result.frames_table}, {result.tracks_table.name}, "
        f"{result.episodes_table.name}" + (f", report {job.report}" if job.report else "")
        + (f", video {result.annotated_video}" if result.annotated_video else ""))
    if result.frames == 0:
        say(f"mien: error: {path}: no frames in the requested range")
        return EXIT_FAILED
    return EXIT_FAILED if result.failed_frames else EXIT_OK


def _analyze_on_ray(args: argparse.Namespace, plan: Plan, image_options, video_mode, video_options) -> int:
    from .scale.ray_runner import RayMissing, import_ray, run_corpus
    from .scale.tasks import ImageJob, VideoJob as Whole

    try:
        if Path(args.output).suffix:
            raise ValueError("with --ray, -o is a folder for the Parquet dataset")
        if args.report or args.annotate or args.format != "parquet":
            raise ValueError("--report, --annotate and --format are not for a Ray cluster, which writes a Parquet dataset")
        import_ray()
    except (ValueError, RayMissing) as exc:
        print(f"mien: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    videos = [Whole(job.path, job.table, video_options, args.landmarks, args.checkpoint_every) for job in plan.videos]
    code = run_corpus(args.ray, [ImageJob(p) for p in plan.images], videos, image_options, video_mode, Path(args.output),
                      args.landmarks, args.chunk, say=lambda line: print(line, file=sys.stderr))
    return EXIT_FAILED if code else EXIT_OK


def _seconds(text: str) -> float:
    """A length of media: seconds, with or without an ``s`` (``60``, ``60s``, ``1.5s``)."""
    try:
        value = float(text[:-1] if text.endswith("s") else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, such as 60 or 60s, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text!r}")
    return value


def _settings(args: argparse.Namespace) -> dict[str, str]:
    """The options of this run, as the reports show them."""
    shown = ("detector", "min_score", "no_iris", "detect_every", "stride", "fps", "start", "end", "gaze", "no_smoothing",
             "perceived_hz", "au_baseline", "experimental_units", "landmarks", "format")
    return {name.replace("_", "-"): str(getattr(args, name)) for name in shown if hasattr(args, name)}


def run_demo(args: argparse.Namespace) -> int:
    """Run ``mien demo``: analyse the shipped sample portrait into ``args.output_dir`` (table and
    annotated picture) and say what the columns mean. Returns ``run_analyze``'s exit status."""
    from importlib import resources

    out_dir = Path(args.output_dir)
    sample = out_dir / "astronaut.png"  # a copy beside the outputs, so that `source` names it there
    out_dir.mkdir(parents=True, exist_ok=True)
    sample.write_bytes((resources.files("mien") / "data" / "astronaut.png").read_bytes())
    table = out_dir / "faces.csv"
    ns = build_parser().parse_args(["analyze", str(sample), "-o", str(table), "--annotate", str(out_dir)])
    code = run_analyze(ns)
    if code == 0:
        print(f"mien demo: the sample is NASA's public-domain portrait of Eileen Collins ({sample.name}).\n"
              f"  table:     {table.resolve()}\n"
              f"  picture:   {(out_dir / 'astronaut_annotated.jpg').resolve()}\n"
              "Each row is one face: box, detector score, head pose (degrees), quality, FACS action units "
              "(facial movements, not feelings) and perceived expression (how observers would label the face, "
              "not what the person feels). "
              "Run `mien analyze --help` for your own images.")
    return code


def run_schema(args: argparse.Namespace) -> int:
    """Run ``mien schema``: print what each output column means (Markdown, or JSON with ``--json``). Returns 0."""
    from .results import schema_dict, schema_markdown

    print(json.dumps(schema_dict(), indent=1, ensure_ascii=False) if args.json else schema_markdown(), end="\n" if args.json else "")
    return 0


class _KeepsLineBreaks(argparse.HelpFormatter):
    """Wraps paragraphs as usual, but leaves text that has its own line breaks (the exit codes) as it is."""

    def _fill_text(self, text, width, indent):
        return text if "\n" in text else super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    """The ``mien`` command's argument parser, with every sub-command (each sets ``func`` to run it)."""
    parser = argparse.ArgumentParser(prog="mien", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"mien {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    an = sub.add_parser("analyze", help="measure the faces in images and videos", epilog=EXIT_CODES,
                        formatter_class=_KeepsLineBreaks, description=(
        "Measure every face in the given images and videos and write one row per face. Images without a "
        "face, and files that cannot be read, get a row with status no_face or error. Outputs made per input "
        "(a video's tables, pictures, reports) mirror the inputs' folders below the folder that holds them all."))
    an.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, folders (searched recursively) or glob patterns")
    an.add_argument("-o", "--output", required=True, metavar="OUT", help=f"output table, format by suffix ({', '.join(FORMATS)}); "
                    "or a folder, for several videos, where each input gets its own tables. CSV cells that start like a "
                    "formula (= + - @ tab CR) get a leading apostrophe; JSON is an array of row objects, JSON Lines one "
                    "row object a line (`mien schema` says what each column means)")
    an.add_argument("--format", default="parquet", choices=FORMAT_NAMES, help="table format when OUT is a folder (default "
                    "parquet); openface: a CSV with OpenFace 2's columns (frame, face_id, timestamp, confidence, success, "
                    "pose_R*, gaze_angle_*, AU*_r, AU*_c) for scripts written for OpenFace, also for a file OUT ending in "
                    ".csv; see docs/openface.md")
    an.add_argument("--annotate", metavar="DIR", help="also write, per image, one annotated JPEG into DIR (box, outline of "
                    "face, eyes and lips, the action units present, and a legend beside the picture that says per face "
                    "whether it is reliable); per video, an annotated video that browsers play (H.264 MP4, else VP9 WebM)")
    an.add_argument("--charts", action="store_true", help="with --annotate: also a bar chart of each face's action units "
                    "(<image>_face<i>_action_units.png)")
    an.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report: for photos, one page with every "
                    "face (sortable); for a video, its tracks, plots and episodes, and with --annotate a player whose "
                    "cursor follows the plots (a folder of reports when OUT is a folder of videos)")
    an.add_argument("--landmarks", action="store_true", help="add the 468 landmarks (lmNNN_x/y/z, pixels) to the table; "
                    "they are large and they are biometric data, so they are left out unless asked for")
    an.add_argument("--detector", choices=["auto", "short", "full", "both"], default="auto",
                    help="face detector: short range (close-ups), full range (small, distant faces), both, or auto "
                         "(default): short range, and full range too when short range finds no face or one narrower "
                         "than 0.18 of the image's longer side (docs/geometry.md)")
    an.add_argument("--min-score", type=float, default=0.5, help="minimum face detection score, 0..1 (default 0.5)")
    an.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: auto (the cluster this machine belongs "
                    "to) or its address (host:port); -o is then a folder that every node sees, for a Parquet dataset "
                    "(faces/, tracks/, episodes/, manifest.json) that a rerun completes. Needs pip install \"mien[ray]\"")
    an.add_argument("--workers", type=int, metavar="N", help="worker processes for photos and for the pieces of long "
                    "videos, each with its own models on one thread (default: one per CPU core this process may use); "
                    "the outputs do not depend on it")
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
    video.add_argument("--chunk", type=_seconds, default=60.0, metavar="SECONDS",
                       help="with several workers, a video longer than this (seconds of media, e.g. 60 or 60s; default 60) "
                       "is cut into pieces analysed in parallel and joined into one video's tables, then its report and "
                       "annotated video are drawn piece by piece from them; a stopped run redoes only unfinished pieces")
    video.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                       help="write a checkpoint every N frames, from which a stopped run resumes (default 1000)")
    an.set_defaults(func=run_analyze)

    demo = sub.add_parser("demo", help="run on the bundled sample photo", description=(
        "Analyse the bundled public-domain sample photo and write faces.csv and an annotated picture."))
    demo.add_argument("-o", "--output-dir", default="mien-demo", help="folder for the outputs (default ./mien-demo)")
    demo.set_defaults(func=run_demo)

    schema = sub.add_parser("schema", help="print the output columns and what each means",
                            description="Print the table schema (column, type, meaning) as Markdown.")
    schema.add_argument("--json", action="store_true", help="print {column: meaning} as JSON instead")
    schema.set_defaults(func=run_schema)

    from .audit.cli import add_audit_parser

    add_audit_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"mien: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``mien`` command with ``argv`` (None: ``sys.argv[1:]``); returns the exit status
    (0 done, 1 some inputs failed, 2 usage error or a damaged shipped file, 130 interrupted)."""
    from .runtime import ModelFileError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            warnings.simplefilter("default", UserWarning)
            return args.func(args)
    except ModelFileError as exc:  # a shipped model or data file is damaged or was changed: nothing is trusted
        print(f"mien: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, ImportError) as exc:
        if not _caused_by_ctrl_c(exc):
            raise
        print("mien: interrupted; outputs already written are complete", file=sys.stderr)
        return EXIT_INTERRUPTED


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a Ctrl-C is behind ``exc``: native libraries raise ImportError for a KeyboardInterrupt
    that arrives while they are imported (pybind11: "initialization failed", caused by it)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


if __name__ == "__main__":
    sys.exit(main())
