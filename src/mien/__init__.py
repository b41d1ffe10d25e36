"""mien: measures faces, not feelings.

Faces, 468-point landmarks, head pose, gaze, FACS action units (facial movements) and perceived
expression (how a crowd of observers would label a face; not what the person feels), each with a
reliability flag, as one tidy table::

    import mien
    analyzer = mien.Analyzer()                      # image mode
    faces = analyzer.analyze("photo.jpg")           # mien.Faces: arrays, one row per face
    table = mien.to_frame(faces)                    # pandas DataFrame, columns in mien.COLUMNS

Video: ``mien.Analyzer(mien.Options(mode=mien.Mode.VIDEO))`` and ``mien.read_video``; whole files
with checkpoints and summary tables: ``mien.run_video`` (its ``sinks``, e.g. ``mien.AnnotatedVideo``,
see every frame in the same decoding pass).
"""

__version__ = "0.1.0"

# Names are loaded on first use, so that ``import mien`` (and the ``mien`` command's start-up) stays light.
_EXPORTS = {
    "Analyzer": "analyzer", "Mode": "analyzer", "Options": "analyzer",
    "InputError": "errors", "MienError": "errors", "OptionsError": "errors", "TimestampError": "errors",
    "Faces": "faces",
    "ImageReadError": "images", "read_image": "images",
    "QualityThresholds": "quality",
    "COLUMNS": "results", "to_frame": "results", "write_table": "io",
    "VideoOptions": "video.analysis", "analyze_frames": "video.analysis", "read_video": "video.analysis",
    "run_video": "video.analysis",
    "Frame": "video.decode", "VideoReadError": "video.decode",
    "AnnotatedVideo": "video.sinks", "FrameSink": "video.sinks",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mien' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
