"""The command line: `rnnkit preprocess | train | sample | ...`, thin over the Python API."""

from .parser import build_parser, main

__all__ = ["build_parser", "main"]
