"""The command line: `rnnkit preprocess | train | sample | ...`, thin over the Python API."""

from .parser import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
