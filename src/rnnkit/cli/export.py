"""`rnnkit export`: a trained model as ONNX (for other runtimes) or as one self-contained web page."""

from __future__ import annotations

import sys
from pathlib import Path

from .common import NO_NGRAM_HELP, flag, new_parser

FORMATS = ("onnx", "html")  # rnnkit.export.FORMATS; not imported so `rnnkit --help` stays light


def register(sub) -> None:
    p = new_parser(
        sub, "export", "export a trained model: ONNX for other runtimes, or one self-contained web page",
        description="--format onnx: the one-token step (token ids + state -> logits + state) as an ONNX graph, "
        "the vocabulary beside it as FILE.json (torch-rnn's layout). --format html: one web page that samples "
        "from the model in the browser, offline (weights, vocabulary and JavaScript in the file). A checkpoint "
        "that mixes in an n-gram brings it along: into the page, or beside the graph as FILE.ngram.safetensors.",
    )
    flag(p, "checkpoint", required=True, help="checkpoint .json, its .safetensors, or a run folder (its best)")
    flag(p, "format", required=True, choices=FORMATS, help="onnx or html")
    flag(p, "out", required=True, metavar="FILE", help="the file to write (onnx also writes FILE.json)")
    flag(p, "force", action="store_true", help="overwrite FILE (and FILE.json, FILE.ngram.safetensors) if they exist")
    flag(p, "train_text", default=None, help="html: the training text, for list mode's new-only filter, "
         "if the run folder lost track of it")
    flag(p, "no_training_lines", action="store_true", help="html: leave the training lines out of the page "
         "(they are plain text in it); list mode then cannot tell new lines from old")
    flag(p, "no_ngram", action="store_true", help=NO_NGRAM_HELP)
    p.set_defaults(func=run_export)


def run_export(args) -> int:
    from ..export import export

    result = export(args.checkpoint, args.format, args.out, force=args.force, train_text=args.train_text,
                    training_lines=not args.no_training_lines, ngram=not args.no_ngram)
    for path in result.files:
        print(f"wrote {path} ({_size(Path(path).stat().st_size)})", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"
