"""List mode: complete, optionally novel lines from a model trained on one item per line.

`rnnkit sample --lines 50 --novel` samples batches of lines, each begun as if at the start
of a line and stopped at its newline, and keeps the complete ones within the length bounds
that are new (not a line of the training text) and not already kept.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

from ..errors import ConfigError, InputFileError, RnnkitError
from .generator import Generator, SampleOptions

BATCH = 32


def generate_lines(
    generator: Generator,
    count: int,
    novel_against: set[str] | None = None,
    min_chars: int = 1,
    max_chars: int = 200,
    options: SampleOptions | None = None,
    max_attempts: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[str]:
    """Up to `count` distinct lines of min_chars..max_chars characters, none in `novel_against`.

    `options` carries temperature, top_k, top_p, sample, seed and an optional start_text
    that every line begins with; length, stop_at and num_samples are set here. Gives up
    after `max_attempts` sampled lines (default 50 per line asked for, at least 1000):
    with none kept that is an error; with some, `warn` (stderr by default) says how many.
    """
    _check_bounds(count, min_chars, max_chars)
    if generator.vocab.id_of("\n") is None:
        raise RnnkitError("this model never saw a newline, so it has no lines to write; train it on one item per line")
    base = options or SampleOptions()
    prefix = base.start_text
    max_attempts = max_attempts or max(1000, 50 * count)
    kept: list[str] = []
    seen: set[str] = set()
    attempts = batch_no = 0
    while len(kept) < count and attempts < max_attempts:
        n = min(BATCH, max_attempts - attempts)
        opts = replace(
            base,
            start_text="\n" + prefix,  # start of a line; the leading newline is cut below
            length=max(1, max_chars - len(prefix) + 1),  # room for the line and its newline
            stop_at="\n",
            num_samples=n,
            seed=None if base.seed is None else base.seed + batch_no,
        )
        for text in generator.generate(opts):
            line = _complete_line(text[1:], min_chars, max_chars)
            if line is None or line in seen or (novel_against is not None and line in novel_against):
                continue
            seen.add(line)
            kept.append(line)
            if len(kept) == count:
                break
        attempts += n
        batch_no += 1
    if len(kept) < count:
        what = "novel lines" if novel_against is not None else "lines"
        message = (
            f"found only {len(kept)} of {count} {what} of {min_chars}..{max_chars} characters "
            f"in {attempts} tries; loosen --min_chars/--max_chars, raise --temperature"
            + (" or drop --novel" if novel_against is not None else "")
        )
        if not kept:
            raise RnnkitError(message)
        (warn or _stderr)(f"rnnkit: {message}")
    return kept


def _complete_line(text: str, min_chars: int, max_chars: int) -> str | None:
    """The line if the sample reached its newline and fits the bounds, else None."""
    if not text.endswith("\n"):
        return None  # ran out of length mid-line
    line = text[:-1].strip()
    return line if line and min_chars <= len(line) <= max_chars else None


def _check_bounds(count: int, min_chars: int, max_chars: int) -> None:
    if count <= 0:
        raise ConfigError(f"--lines must be 1 or more, got {count}")
    if min_chars < 1:
        raise ConfigError(f"--min_chars must be 1 or more, got {min_chars}")
    if max_chars < min_chars:
        raise ConfigError(f"--max_chars ({max_chars}) must be at least --min_chars ({min_chars})")


def training_lines(paths: Iterable[str | Path]) -> set[str]:
    """Every non-blank line of the training files, stripped as generated lines are."""
    lines: set[str] = set()
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise InputFileError(f"{path}: no such file (the training text for --novel)") from None
        except IsADirectoryError:
            raise InputFileError(f"{path} is a folder; give the training text file for --novel") from None
        lines.update(s for s in (raw.strip() for raw in text.splitlines()) if s)
    return lines


def training_sources(meta: dict) -> list[Path]:
    """The training text files a checkpoint remembers (meta["data"]["sources"])."""
    data = meta.get("data")
    sources = data.get("sources") if isinstance(data, dict) else None
    if not sources:
        raise RnnkitError("this checkpoint does not say which text it was trained on; pass --train_text FILE")
    paths = [Path(s) for s in sources]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise RnnkitError(
            f"the training text {missing[0]} is gone (moved or deleted); pass --train_text FILE"
        )
    return paths


def novel_against(generator: Generator, train_text: str | Path | None = None) -> set[str]:
    """The lines --novel must avoid: from --train_text if given, else what the run remembers."""
    paths = [Path(train_text)] if train_text else training_sources(generator.meta)
    return training_lines(paths)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
