"""Write the tiny synthetic videos in tests/fixtures that OpenCV's own writer cannot make.

    python tools/make_video_fixtures.py      # needs the ffmpeg command (with libaom for AV1)

- ``interlaced.mpg``: six 64x48 frames coded as interlaced MPEG-2 (top field first), the kind a
  camcorder or broadcast recording holds; OpenCV's FFmpeg build cannot convert such frames and
  used to hand back blank pictures as if they were fine.
- ``av1.mp4``: the same frames in AV1, which OpenCV's FFmpeg build decodes only with hardware.
- ``two_videos.mkv``: a Matroska file whose first video stream (6 frames) is shorter than its
  second (75 frames, 3 s), so the container's duration is not the first stream's.

The frames are a bright bar moving over grey, made here from numpy: no third-party pixels, no
licence to carry.
"""
import subprocess
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
WIDTH, HEIGHT = 64, 48


def bars(count: int) -> bytes:
    pixels = np.full((count, HEIGHT, WIDTH, 3), 90, np.uint8)
    for i in range(count):
        pixels[i, :, (8 * i) % WIDTH : (8 * i) % WIDTH + 10] = 230
    return pixels.tobytes()


RAW = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", "25", "-i"]


def ffmpeg(*args: str, frames: int = 6) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], input=bars(frames), check=True)


def main() -> None:
    ffmpeg(*RAW, "-", "-c:v", "mpeg2video", "-flags", "+ildct+ilme", "-top", "1", "-q:v", "4", "-an",
           str(FIXTURES / "interlaced.mpg"))
    ffmpeg(*RAW, "-", "-c:v", "libaom-av1", "-cpu-used", "8", "-crf", "50", "-an", str(FIXTURES / "av1.mp4"))
    longer = FIXTURES / "longer.tmp.mp4"
    ffmpeg(*RAW, "-", "-c:v", "mpeg4", "-q:v", "20", str(longer), frames=75)
    ffmpeg(*RAW, "-", "-i", str(longer), "-map", "0:v", "-map", "1:v", "-c:v", "mpeg4", "-q:v", "20",
           str(FIXTURES / "two_videos.mkv"))
    longer.unlink()
    for name in ("interlaced.mpg", "av1.mp4", "two_videos.mkv"):
        print(f"wrote {FIXTURES / name} ({(FIXTURES / name).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
