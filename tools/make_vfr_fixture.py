"""Write tests/fixtures/vfr.mp4: a tiny synthetic variable-frame-rate clip for the decoding tests.

    pip install av && python tools/make_vfr_fixture.py

Twelve 64x48 frames of a moving bar, MPEG-4 Part 2 in mp4, with the presentation times in
``VFR_TIMES_S`` (gaps of 40 ms to 420 ms), so a reader that assumes index / fps gets them wrong.
Made here from nothing but numpy: no third-party pixels, no licence to carry. PyAV is needed
only to write the file (OpenCV's writer has a constant rate); mien reads it with OpenCV.
"""
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

VFR_TIMES_S = (0.0, 0.04, 0.08, 0.2, 0.24, 0.5, 0.54, 0.58, 1.0, 1.04, 1.08, 1.5)
OUT = Path(__file__).resolve().parents[1] / "tests/fixtures/vfr.mp4"


def main() -> None:
    with av.open(str(OUT), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.max_b_frames = 0
        for i, t in enumerate(VFR_TIMES_S):
            pixels = np.full((48, 64, 3), 40, np.uint8)
            pixels[:, 5 * i : 5 * i + 8] = 220
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
