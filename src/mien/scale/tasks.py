"""One input, start to finish, as a function of an ``Analyzer`` and plain data: the unit of work
that a serial run, a worker process and a Ray worker all call, so that their outputs are the same.
Tasks return data and print nothing; the caller reports."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..analyzer import Analyzer
from ..faces import Faces
from ..images import ImageReadError, read_image
from ..results import to_frame, write_table
from ..video import VideoReadError, probe
from ..video.analysis import RunInterrupted, VideoOptions, VideoRunResult, run_video


@dataclass(frozen=True)
class ImageJob:
    path: Path
    annotate_dir: Path | None = None


def analyze_image(analyzer: Analyzer, job: ImageJob) -> Faces:
    """The faces of one image file; a file that cannot be read gives a row with status error."""
    try:
        rgb = read_image(job.path)
    except ImageReadError as exc:
        return Faces.failed(str(job.path), str(exc))
    faces = analyzer.analyze(rgb, source=str(job.path))
    if job.annotate_dir is not None:
        from ..annotate import write_annotations

        write_annotations(job.annotate_dir, job.path.stem, rgb, faces)
    return faces


@dataclass(frozen=True)
class VideoJob:
    path: Path
    out: Path
    options: VideoOptions = VideoOptions()
    landmarks: bool = False
    checkpoint_every: int = 1000
    report: Path | None = None
    annotated: Path | None = None


@dataclass(frozen=True)
class VideoOutcome:
    job: VideoJob
    run: VideoRunResult | None = None  # None when the video could not be opened or the run was stopped
    error: str = ""  # why the video could not be opened
    stopped: str = ""  # why the run stopped before the end (its checkpoint is on disk)
    frame_errors: tuple[str, ...] = field(default=())


def analyze_video(analyzer: Analyzer, job: VideoJob, on_frame=None, on_error=None) -> VideoOutcome:
    """Analyse one video into its tables with a video-mode analyzer. ``on_error(frame, message)``
    hears of each failed frame as it happens; without it the messages come back in ``frame_errors``."""
    try:
        probe(job.path, job.options.sequence_fps)
    except (VideoReadError, ImageReadError) as exc:
        write_table(to_frame(Faces.failed(str(job.path), str(exc))), job.out)
        return VideoOutcome(job, error=str(exc))
    errors: list[str] = []
    if on_error is None:
        def on_error(frame, message):
            errors.append(f"frame {frame.index}: {message}")
    try:
        run = run_video(job.path, job.out, analyzer, job.options, checkpoint_every=job.checkpoint_every,
                        landmarks=job.landmarks, on_frame=on_frame, on_error=on_error, report=job.report,
                        annotated_video=job.annotated)
    except RunInterrupted as exc:
        return VideoOutcome(job, stopped=str(exc), frame_errors=tuple(errors))
    return VideoOutcome(job, run, frame_errors=tuple(errors))
