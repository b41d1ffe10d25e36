"""Small images through the front door: one rule, used by the CLI, the API (``Analyzer``) and the audit.

BlazeFace misses many faces that fill a tiny image edge to edge (a 48x48 FER2013 or CK+48 crop).
Rule: an image whose longer side is below ``SMALL_IMAGE_PX`` is enlarged by the integer factor
``round(ENLARGED_PX / longer side)`` (bicubic) and framed with a mid-grey border of half the enlarged
longer side; faces are detected and meshed in that picture, and the boxes and meshes are mapped
back to the original pixels, where everything else (quality, iris, action units, perceived
expression) is measured. The border of half the side was preferred to 64 px on FERPlus Valid images.
Video frames follow the same rule (``video.session``): the faces are tracked in the enlarged frames.

A small image in which no face is found that way is most often a face crop the detectors cannot
place (a face cut off by the frame's edges, tilted or turned). Then the face mesh looks at
``search_regions``: 9 squares centred on the image (three sizes, three tilts). The one whose mesh it
is surest holds a face is kept when that presence reaches the analyzer's ``min_presence`` *and* a
face detector finds a face in that mesh's own upright crop; the face's ``score`` is then that
detector's confidence and its box the mesh's extent. The second check keeps most non-faces out (the
mesh alone is sure of a face in some textures), but not all: on the astronaut photo's suit, a
mission patch and orange fabric pass both. So a face the search found is never ``reliable`` (quality
check ``not_detected``), and gets no perceived label.

Measured by ``python benchmarks/small_face_search.py`` (developer VM, one thread): on FERPlus Valid
(where the framings were chosen) the detectors place no accepted face in 78 of the 3579 crops, and
the search finds 42 of them; the largest of their perceived shares (their ``perceived_top`` is
``uncertain``) names the crowd majority less often (25 of 38 with a majority) than on the faces the
detectors find (86%): they are harder faces. In 1058 random non-face patches of the demo media it
reported a face in 3, and in 14 of 662 patches of the astronaut photo away from her face (her suit
and the space-shuttle model). It costs a small image without a face about 30 ms more (37.6 and 40.2
ms in two runs, against 10.5 and 10.4 ms for an image too large for the search). With it,
``mien analyze`` finds a face in 3103 of the 3136 FERPlus Test 48x48 files (before it: 3061; hand upscaling
4x inside a 64 px border: 3064) and in all 375 CK+48 crops (``benchmarks/perceived_crossval.py``).

Coordinates: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``, so enlarging by f and adding a border
of b pixels maps a point u to ``f * u + b`` (z, in pixel units, to ``f * z``).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import Meshes, Roi

SMALL_IMAGE_PX = 160
ENLARGED_PX = 192
BORDER_GREY = 128
SEARCH_SIDES = (1.25, 1.5, 1.75)  # a square's side, in units of the image's longer side
SEARCH_TILTS = (-0.3, 0.0, 0.3)  # radians (about 17 degrees either way)


@dataclass(frozen=True)
class Enlargement:
    """How an image was enlarged for detection: ``scale`` (f) and ``border`` (b, enlarged pixels)."""

    scale: float = 1.0
    border: float = 0.0

    @property
    def identity(self) -> bool:
        """True when the image was not enlarged (scale 1, no border): points need no mapping back."""
        return self.scale == 1.0 and self.border == 0.0

    def points_to_original(self, points: np.ndarray) -> np.ndarray:
        """(..., 2 or 3) points in the enlarged image → original pixels (z scaled like x and y)."""
        p = np.array(points, dtype=np.float32, copy=True)
        p[..., :2] -= self.border
        p /= self.scale
        return p

    def boxes_to_original(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) x0, y0, x1, y1 boxes in the enlarged image → original pixels."""
        return ((np.asarray(boxes, np.float32) - self.border) / self.scale).astype(np.float32)

    def meshes_to_original(self, meshes: Meshes) -> Meshes:
        """Meshes of the enlarged image with their points in original pixels (presence and crops as they are)."""
        return Meshes(self.points_to_original(meshes.points), meshes.presence, meshes.crops)


def enlarge_small_image(rgb: np.ndarray) -> tuple[np.ndarray, Enlargement]:
    """The picture to detect faces in, and how it maps back: ``rgb`` itself when its longer side is
    at least ``SMALL_IMAGE_PX``; else enlarged and framed by the rule in this module's docstring."""
    longer = max(rgb.shape[:2])
    if longer >= SMALL_IMAGE_PX:
        return rgb, Enlargement()
    scale = max(1, round(ENLARGED_PX / longer))
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else rgb
    border = (longer * scale) // 2
    fill = (BORDER_GREY,) * (rgb.shape[2] if rgb.ndim == 3 else 1)
    framed = cv2.copyMakeBorder(big, border, border, border, border, cv2.BORDER_CONSTANT, value=fill)
    return framed, Enlargement(float(scale), float(border))


def search_regions(height: int, width: int, enlargement: Enlargement) -> Roi:
    """The 9 squares, in the enlarged picture, that the face mesh looks at in a small image of
    ``height`` x ``width`` pixels where no face was found (see this module's docstring)."""
    f, b = enlargement.scale, enlargement.border
    sides, tilts = (np.array(v, np.float64).ravel() for v in np.meshgrid(SEARCH_SIDES, SEARCH_TILTS, indexing="ij"))
    centre = np.tile([b + f * width / 2, b + f * height / 2], (sides.size, 1))
    return Roi(centre, f * max(height, width) * sides, tilts)
