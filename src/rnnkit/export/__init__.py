"""`rnnkit export`: a trained language model in a form that runs without rnnkit.

- onnx.py: the one-token step as an ONNX graph, with the vocabulary beside it (torch-rnn's JSON);
- html.py: one self-contained web page that samples from the model in plain JavaScript.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputFileError, OutputExistsError, RnnkitError

FORMATS = ("onnx", "html")


@dataclass
class Exported:
    """What an export wrote, and what the user should know about it."""

    files: list[Path]
    notes: list[str] = field(default_factory=list)


def export(
    checkpoint: str | Path,
    format: str,
    out: str | Path,
    force: bool = False,
    train_text: str | Path | None = None,
    training_lines: bool = True,
    ngram: bool = True,
) -> Exported:
    """Export a checkpoint (or a run folder's best) as `format` to `out`.

    html only: the training lines go into the page for list mode's novelty filter, read from
    `train_text` or else the files the run remembers; training_lines=False leaves them out.
    ngram: bring along the n-gram the checkpoint mixes in, if any (False: the network alone);
    onnx writes its tables to FILE.ngram.safetensors.
    """
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is unknown; use onnx or html")
    if train_text is not None and (format != "html" or not training_lines):
        raise ConfigError("--train_text feeds the html page's list mode; drop it (or --no_training_lines)")
    out = Path(out)
    check_outputs([out, vocab_path(out)] if format == "onnx" else [out], force)
    from ..sampling.generator import Generator

    generator = Generator.load(checkpoint, device="cpu", ngram=ngram)
    if format == "onnx":
        from .onnx import export_onnx

        if generator.mixture is not None:
            check_outputs([ngram_path(out)], force)
        result = export_onnx(generator, out)
    else:
        from .html import export_html

        lines, note = _training_lines(generator, train_text, training_lines)
        result = export_html(generator, out, lines)
        result.notes.append(note)
    if not ngram and generator.meta.get("ngram"):
        result.notes.append("the network alone: --no_ngram left out the n-gram the checkpoint mixes in")
    for path in result.files:
        _usual_permissions(path)
    return result


def vocab_path(out: Path) -> Path:
    """The ONNX graph's vocabulary: FILE.json beside FILE (not FILE's stem + .json, which in a run
    folder would be a checkpoint)."""
    return out.with_name(out.name + ".json")


def ngram_path(out: Path) -> Path:
    """The ONNX export's n-gram tables: FILE.ngram.safetensors beside FILE."""
    return out.with_name(out.name + ".ngram.safetensors")


def check_outputs(paths: list[Path], force: bool) -> None:
    """Refuse, before any slow work, to write into a missing folder or over a file without force."""
    from ..core.atomic import ensure_writable_folder

    for path in paths:
        ensure_writable_folder(path.parent, f"--out {path}")
        if path.is_dir():
            raise InputFileError(f"--out {path} is a folder; give a file name")
        if path.exists() and not force:
            raise OutputExistsError(f"{path} already exists; pass --force to overwrite it or choose another --out")


def _usual_permissions(path: Path) -> None:
    """The mode a plain open() would give: atomic writes make 0600 temp files, and an exported
    page or model is meant to be shared (served, copied)."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def _training_lines(generator, train_text, wanted: bool) -> tuple[set[str] | None, str]:
    """The lines the page's list mode must not repeat, and a note saying where they came from."""
    from ..sampling.lines import training_lines, training_sources

    unfiltered = "the page's list mode cannot tell new lines from old"
    if not wanted:
        return None, f"training lines left out: {unfiltered}"
    if train_text is not None:  # named by the user: a file that cannot be read is an error
        lines = training_lines([train_text])
    else:
        try:
            lines = training_lines(training_sources(generator.meta))
        except RnnkitError as e:  # the run does not know its text: list mode still works, unfiltered
            return None, f"no training text ({e}): {unfiltered}"
    return lines, (f"{len(lines):,} training lines embedded for list mode's new-only filter "
                   "(as plain text; --no_training_lines leaves them out)")
