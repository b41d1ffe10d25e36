"""``python -m mien``: the ``mien`` command (see :mod:`mien.cli`); exits with its status."""
import sys

from .entry import main

sys.exit(main())
