import os
from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repository. Skipped where it is missing, except in CI."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared data at {SHARED_DATA}")
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (not present on this machine)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def analyzer():
    from mien.analyzer import Analyzer

    return Analyzer()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from importlib import resources

    from mien.images import read_image

    return read_image(resources.files("mien") / "data" / "astronaut.png")
