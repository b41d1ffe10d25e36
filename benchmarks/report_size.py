"""Size of the video report for a long video, from a synthetic per-frame table.

Builds the tables an hour of 30 frames/s video would give (by default: 3 tracks that span the
hour, with reliability that flickers, blinks every 4 s, and 150 one-frame tracks), with 24 kept
thumbnails and 12 apex faces per track, renders the report and prints its size in bytes and how
long rendering took. Nothing here runs the face models.

    python benchmarks/report_size.py                  # one hour
    python benchmarks/report_size.py --seconds 180    # three minutes
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from types import SimpleNamespace

from importlib import resources

import numpy as np
import pandas as pd

from mien import actions
from mien.annotate import face_thumbnail
from mien.images import read_image
from mien.perceived import CLASSES
from mien.video.analysis import action_unit_episodes, track_summary
from mien.video.report import ReportInputs, apex_frames, render_report


def synthetic_table(seconds: float, fps: float, long_tracks: int, short_tracks: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps
    parts = []
    for track in range(long_tracks):
        rows = {"source": "synthetic.mp4", "frame": np.arange(n), "face": 0, "track": track, "time_s": t,
                "status": "ok", "x": 100.0, "y": 100.0, "w": 120.0, "h": 120.0, "presence": 0.99,
                "yaw": 20 * np.sin(t / 7 + track), "pitch": 10 * np.sin(t / 11), "roll": 5 * np.sin(t / 5),
                "iod_px": 40.0, "reliable": rng.random(n) > 0.2, "quality_reasons": ""}
        rows["quality_reasons"] = np.where(rows["reliable"], "", "blurry")
        for k, column in enumerate(actions.columns()):
            value = np.clip(1.2 * np.sin(t / (3 + k)) + rng.normal(0, 0.2, n), 0, None)
            if column.startswith("au43"):
                value = np.where((t % 4) < 0.15, 2.0, 0.1)
            rows[column] = value
            rows[f"{column}_present"] = value >= 1
        logits = rng.normal(0, 1, (n, len(CLASSES)))
        p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        for k, c in enumerate(CLASSES):
            rows[f"perceived_{c}"] = p[:, k]
        rows["perceived_top"] = np.where(p.max(1) > 0.4, np.array(CLASSES)[p.argmax(1)], "uncertain")
        parts.append(pd.DataFrame(rows))
    for k in range(short_tracks):
        frame = int(rng.integers(0, n))
        parts.append(pd.DataFrame({"source": "synthetic.mp4", "frame": [frame], "face": 1, "track": long_tracks + k,
                                   "time_s": [t[frame]], "status": "ok", "yaw": 0.0, "pitch": 0.0, "roll": 0.0,
                                   "iod_px": 12.0, "reliable": False, "quality_reasons": "small_face"}))
    table = pd.concat(parts, ignore_index=True)
    table["reliable"] = table["reliable"].astype("boolean")
    return table.sort_values(["frame", "track"], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--tracks", type=int, default=3, help="tracks that span the whole video")
    parser.add_argument("--short-tracks", type=int, default=150, help="one-frame tracks")
    parser.add_argument("--out", type=Path, help="also write the page here")
    args = parser.parse_args()
    table = synthetic_table(args.seconds, args.fps, args.tracks, args.short_tracks)
    episodes = action_unit_episodes(table)
    tracks = track_summary(table, episodes)
    sample = read_image(resources.files("mien") / "data" / "astronaut.png")
    thumbnail = face_thumbnail(sample, (170, 60, 130, 160), size=72)  # the faces a run keeps: real ones compress
    apex = face_thumbnail(sample, (170, 60, 130, 160), size=64)
    thumbnails = {t: [(args.seconds * i / 24, thumbnail) for i in range(24)] for t in range(args.tracks)}
    apexes = {key: apex for key in apex_frames(table, episodes)}
    info = SimpleNamespace(path="synthetic.mp4", width=1280, height=720, fps=args.fps, rotation=0)
    start = time.perf_counter()
    text = render_report(ReportInputs(table, tracks, episodes, thumbnails, info, apexes, None, {"fps": "30"}, ()))
    seconds = time.perf_counter() - start
    size = len(text.encode("utf-8"))
    print(f"{args.seconds:.0f} s at {args.fps:g} frames/s: {len(table)} rows, {len(tracks)} tracks, {len(episodes)} "
          f"episodes -> report {size} bytes ({size / 1e6:.2f} MB), rendered in {seconds:.1f} s")
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
