"""One input, start to finish, as a function of an ``Analyzer`` and plain data: the unit of work
that a serial run, a worker process and a Ray worker all call, so that their outputs are the same.
Tasks return data and print nothing; the caller reports."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..analyzer import Analyzer, in_file_pixels
from ..faces import Faces
from ..images import ImageReadError, decode_image
from ..io import write_table
from ..results import to_frame
from ..video import VideoReadError, probe
from ..video.analysis import RunInterrupted, VideoOptions, VideoRunResult, run_video
from ..video.checkpoint import WorkFolderError
from ..video.sinks import AnnotatedVideo


@dataclass(frozen=True)
class ImageJob:
    """One image to analyse; ``picture``: the folder and name of its annotated picture (None: no
    picture); ``charts``: also per-face action-unit charts there; ``thumbnails``: also return JPEGs of the
    faces, for a report."""

    path: Path
    picture: tuple[Path, str] | None = None  # annotated picture: folder and name
    charts: bool = False
    thumbnails: bool = False  # JPEGs of the faces, for a report


@dataclass(frozen=True)
class ImageOutcome:
    """One image's result: its faces (in the file's pixels), why its annotated picture could not be
    written (empty when it was, or was not asked for) and the faces' JPEG thumbnails (when asked for)."""

    faces: Faces
    picture_error: str = ""  # why the annotated picture could not be written
    thumbnails: tuple[bytes, ...] = ()


def analyze_image(analyzer: Analyzer, job: ImageJob) -> ImageOutcome:
    """The faces of one image file, in the file's pixels; a file that cannot be read gives a row
    with status error."""
    try:
        image = decode_image(job.path)
    except ImageReadError as exc:
        return ImageOutcome(Faces.failed(str(job.path), str(exc)))
    rgb = image.rgb
    faces = analyzer.analyze(rgb, source=str(job.path))
    picture_error = ""
    if job.picture is not None:
        from ..annotate import write_annotations

        folder, name = job.picture
        try:
            write_annotations(folder, name, rgb, to_frame(faces), faces.landmarks, str(job.path), charts=job.charts)
        except OSError as exc:
            picture_error = f"could not write the pictures of {job.path} into {folder} ({exc.strerror or exc})"
    thumbnails: tuple[bytes, ...] = ()
    if job.thumbnails:
        from ..gallery import face_thumbnails

        thumbnails = tuple(face_thumbnails(rgb, [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in faces.boxes.astype(float)]))
    return ImageOutcome(in_file_pixels(faces, image), picture_error, thumbnails)


@dataclass(frozen=True)
class VideoJob:
    """One video to analyse with ``run_video``: its per-frame table ``out``, which frames
    (``options``), whether the table gets landmarks, frames between checkpoints, the HTML
    ``report`` and ``annotated`` video paths (None: not asked for; the annotated video's suffix is
    the encoder's) and the run's ``settings`` as the report lists them."""

    path: Path
    out: Path
    options: VideoOptions = VideoOptions()
    landmarks: bool = False
    checkpoint_every: int = 1000
    report: Path | None = None
    annotated: Path | None = None
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VideoOutcome:
    """How one video's run ended: its job, the run's result, and why it failed or stopped, if it did."""

    job: VideoJob
    run: VideoRunResult | None = None  # None when the video could not be opened or the run was stopped
    error: str = ""  # why the video could not be opened
    stopped: str = ""  # why the run stopped before the end (its checkpoint is on disk)
    frame_errors: tuple[str, ...] = field(default=())
    locked: str = ""  # why its work folder could not be used (another run holds it), see analyze_video_safely
    output_error: str = ""  # why an output could not be written (the work folder is kept), see analyze_video_safely


def analyze_video(analyzer: Analyzer, job: VideoJob, on_frame=None, on_error=None) -> VideoOutcome:
    """Analyse one video into its tables, and its report and annotated video where the job asks,
    with a video-mode analyzer; the failed frames' messages come back in ``frame_errors``.
    ``on_frame(frame, info)``, ``on_error(frame, message)``: as ``run_video`` calls them."""
    try:
        probe(job.path, job.options.sequence_fps)
    except (VideoReadError, ImageReadError) as exc:
        write_table(to_frame(Faces.failed(str(job.path), str(exc))), job.out)
        return VideoOutcome(job, error=str(exc))
    errors: list[str] = []

    def failed(frame, message):
        errors.append(f"frame {frame.index}: {message}")
        if on_error is not None:
            on_error(frame, message)

    sinks = [AnnotatedVideo(job.annotated.with_suffix(""))] if job.annotated else []
    try:
        run = run_video(job.path, job.out, analyzer, job.options, checkpoint_every=job.checkpoint_every,
                        landmarks=job.landmarks, on_frame=on_frame, on_error=failed, report=job.report, sinks=sinks,
                        report_settings=dict(job.settings))
    except RunInterrupted as exc:
        return VideoOutcome(job, stopped=str(exc), frame_errors=tuple(errors))
    return VideoOutcome(job, run, frame_errors=tuple(errors))


def analyze_video_safely(analyzer: Analyzer, job: VideoJob, on_frame=None, on_error=None) -> VideoOutcome:
    """``analyze_video``, for callers that go on with other inputs: a work folder another run holds
    comes back in ``locked``, an output that could not be written in ``output_error``, instead of
    being raised."""
    try:
        return analyze_video(analyzer, job, on_frame, on_error)
    except WorkFolderError as exc:
        return VideoOutcome(job, locked=str(exc))
    except OSError as exc:
        return output_failed(job, exc)


def output_failed(job: VideoJob, exc: OSError) -> VideoOutcome:
    """The outcome of a video whose analysis is done but an output could not be written."""
    where = f" ({exc.filename})" if exc.filename else ""
    return VideoOutcome(job, output_error=f"{exc.strerror or exc}{where}")
