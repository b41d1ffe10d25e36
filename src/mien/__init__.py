"""mien: measures faces, not feelings."""

__version__ = "0.1.0"

__all__ = ["__version__"]
