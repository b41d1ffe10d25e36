"""Track statistics on the demo videos: how often a face's track is lost and started again.

    python benchmarks/video_tracks.py

mien has no identity, so a face that is lost and found again gets a new track id: a *switch*.
Without ground truth, a switch is counted when a new track starts within 0.5 s of another
track ending, with its first face box centre within one face width of the ended track's last
box centre (the same face, most likely). Also printed: tracks, face-frames, median track length,
and gaps: times a track went on after frames without its face (mien continues a track whose face
is found again within 0.5 s at the place it was lost; such returns are gaps, not switches).
"""
from pathlib import Path

import numpy as np
import pandas as pd

from mien.analyzer import Analyzer, Mode, Options
from mien.results import to_frame
from mien.video.analysis import analyze_frames

DEMO = Path(__file__).resolve().parents[1].parent / "shared/data/demo/openmpf"


def switches(table: pd.DataFrame) -> int:
    faces = table[table["track"].notna()].sort_values("time_s")
    ends = faces.groupby("track").tail(1).set_index("track")
    starts = faces.groupby("track").head(1).set_index("track")
    count = 0
    for track, start in starts.iterrows():
        before = ends[(ends["time_s"] < start["time_s"]) & (ends["time_s"] >= start["time_s"] - 0.5)]
        if before.empty:
            continue
        centre = np.array([start["x"] + start["w"] / 2, start["y"] + start["h"] / 2])
        last = np.stack([before["x"] + before["w"] / 2, before["y"] + before["h"] / 2], axis=1)
        if (np.linalg.norm(last - centre, axis=1) < before["w"].to_numpy()).any():
            count += 1
    return count


def gaps(table: pd.DataFrame) -> int:
    faces = table[table["track"].notna()]
    return int(sum((np.diff(np.sort(g["frame"].to_numpy())) > 1).sum() for _, g in faces.groupby("track")))


def main() -> None:
    for name in ("video_01.mp4", "new_face_video-90.mp4"):
        analyzer = Analyzer(Options(mode=Mode.VIDEO, iris=False))
        table = to_frame(analyze_frames(DEMO / name, analyzer))
        faces = table[table["track"].notna()]
        lengths = faces.groupby("track").size()
        print(f"{name}: {table['frame'].nunique()} frames, {len(faces)} face-frames, {len(lengths)} tracks, "
              f"median track {lengths.median():.0f} frames, longest {lengths.max()}, switches {switches(table)}, gaps {gaps(table)}")


if __name__ == "__main__":
    main()
