"""A corpus from this Python's own standard-library source: it ships with every Python, so the
demo and the tests need no download and rnnkit ships no third-party text."""

from __future__ import annotations

import sysconfig
from pathlib import Path

DEMO_MODULES = ("argparse", "json", "textwrap", "pathlib", "dataclasses", "functools", "collections",
                "string", "shutil", "csv", "calendar", "random", "statistics", "heapq", "bisect", "fractions")


def stdlib_text(max_bytes: int = 1_200_000) -> str:
    """Some standard-library modules (about 1 MB of Python) as one text."""
    lib = Path(sysconfig.get_paths()["stdlib"])
    parts, size = [], 0
    candidates = [lib / f"{m}.py" for m in DEMO_MODULES] + [lib / m / "__init__.py" for m in DEMO_MODULES]
    candidates += sorted(lib.glob("*.py"))
    for path in dict.fromkeys(candidates):
        if size >= max_bytes or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        parts.append(text)
        size += len(text)
    return "".join(parts)


def stdlib_corpus(out: Path, max_bytes: int = 1_200_000) -> Path:
    """stdlib_text written to `out`."""
    out.write_text(stdlib_text(max_bytes), encoding="utf-8")
    return out
