"""The command line: `rnnkit preprocess | train | sample | ...`, thin over the Python API."""

from .main import main

__all__ = ["main"]
