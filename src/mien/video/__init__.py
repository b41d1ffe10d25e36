"""Video: decoding (``decode``), face tracks without identity (``tracking``), smoothing over time
(``smoothing``), the per-frame analysis with per-track baselines, episodes and resumable runs
(``analysis``), and the HTML report (``report``).

Decoding is re-exported here (``mien.video.frames``); the analysis lives in ``mien.video.analysis``,
kept out of this module so that importing it stays light.
"""
from .decode import VIDEO_SUFFIXES, Frame, VideoInfo, VideoReadError, frames, probe

__all__ = ["VIDEO_SUFFIXES", "Frame", "VideoInfo", "VideoReadError", "frames", "probe"]
