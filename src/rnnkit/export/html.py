"""`rnnkit export --format html`: one self-contained web page that samples from the model.

The page (static/page.html) holds everything: the weights as base64 float32, the
vocabulary as JSON, and plain JavaScript that steps the LSTM/GRU/RNN and samples with a
temperature, a seed (mulberry32, so runs repeat), a start text and list mode. It fetches
nothing (its Content-Security-Policy forbids it) and needs no build step; open it from disk.

A checkpoint that mixes in an n-gram (model/mixture.py) brings its tables along, base64
like the weights, and the page mixes every step as the Python sampler does: keys as
float64 (exact below 2**53), the counts as int32 where they fit.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_text
from ..errors import ConfigError, RnnkitError
from ..model.language_model import LanguageModel
from ..serve.page import page_with_style
from . import Exported

DATA_SLOT = "__RNNKIT_MODEL__"  # in the template's JSON <script>, after every title slot
TITLE_SLOT = "{{title}}"
NGRAM_PAGE_LIMIT = 50_000_000  # base64 characters of n-gram tables; above this the page gets the network alone
EXACT_INTEGERS = 2**53  # a JavaScript number holds every integer below this exactly


def export_html(generator, out: Path, train_lines: set[str] | None) -> Exported:
    """Write the page to `out`; `train_lines` (or None) feeds list mode's novelty filter."""
    if generator.vocab.kind != "char":
        raise ConfigError(
            f"--format html handles character models; this one reads {generator.vocab.kind}s "
            "(use --format onnx)"
        )
    title = page_title(generator.meta)
    ngram, notes = page_ngram(generator.mixture)
    data = page_data(generator, train_lines, title, ngram)
    template = page_with_style((resources.files("rnnkit.export") / "static" / "page.html").read_text(encoding="utf-8"),
                               serve=False)
    head, tail = template.split(DATA_SLOT)  # split, so no text in the data is ever taken for a slot
    page = head.replace(TITLE_SLOT, html.escape(title)) + script_json(data) + tail
    atomic_write_text(out, page)
    return Exported([out], notes)


def page_data(generator, train_lines: set[str] | None, title: str, ngram: dict | None = None) -> dict:
    """Everything the page's script reads: the model's shape, vocabulary, weights, lines and n-gram."""
    model, meta = generator.model, generator.meta
    c = model.config
    return {
        "format": 1,
        "title": title,
        "model": {"type": c.model_type, "layers": c.num_layers, "rnn_size": c.rnn_size,
                  "wordvec_size": c.wordvec_size, "vocab_size": c.vocab_size,
                  "parameters": model.num_parameters()},
        "info": {"iteration": meta.get("iteration"), "val_loss": meta.get("val_loss"),
                 "val_loss_mixed": generator.mixed_val_loss()},
        "tokens": generator.vocab.tokens,
        "weights": {name: b64_float32(a) for name, a in weight_arrays(model).items()},
        "train_lines": sorted(train_lines) if train_lines is not None else None,
        "ngram": ngram,
    }


def page_ngram(mixture) -> tuple[dict | None, list[str]]:
    """The mixture's tables for the page (None: the network alone), and a note saying which."""
    if mixture is None:
        return None, []
    size = ngram_base64_chars(mixture.ngram)
    if size > NGRAM_PAGE_LIMIT:
        note = (f"the {mixture.ngram.order}-gram's tables would add {size / 1e6:.0f} MB to the page, so it "
                "samples from the network alone (rnnkit sample, serve and --format onnx keep the mixture)")
        return None, [note]
    return ngram_data(mixture), [f"{mixture.describe()} mixed in, as rnnkit sample does (--no_ngram: the network alone)"]


def ngram_data(mixture) -> dict:
    """The n-gram's levels as rnnkit.model.ngram.Level holds them, each array base64."""
    ngram = mixture.ngram
    check_exact_keys(ngram)
    levels = [{"discount": level.discount, "keys": b64_array(level.keys, "float64"),
               **{name: b64_counts(getattr(level, name)) for name in ("counts", "context_total", "context_types")}}
              for level in ngram.levels]
    return {"order": ngram.order, "weight": mixture.weight, "vocab_size": ngram.vocab_size, "levels": levels}


def check_exact_keys(ngram) -> None:
    """Refuse tables whose keys, or the bounds the page searches for, a float64 cannot hold exactly."""
    stride = ngram.vocab_size + 1
    largest = max(max(len(level.context_total) * stride, int(level.keys[-1]) + 1 if len(level.keys) else 0)
                  for level in ngram.levels)
    if largest > EXACT_INTEGERS:
        raise RnnkitError(f"the n-gram's keys reach {largest:,}, beyond the 2**53 a web page's numbers hold "
                          "exactly; pass --no_ngram to export the network alone, or use --format onnx")


def ngram_base64_chars(ngram) -> int:
    """The tables' size in the page: keys as float64 and counts as int32, a third more as base64."""
    raw = sum(8 * len(level.keys) + 4 * (len(level.counts) + len(level.context_total) + len(level.context_types))
              for level in ngram.levels)
    return raw * 4 // 3


def weight_arrays(model: LanguageModel) -> dict[str, np.ndarray]:
    """PyTorch's own matrices ([out, in], gates in its order), the head with BatchNorm folded in."""
    p = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
    arrays = {"embed": p["embed.weight"]}
    for layer in range(model.config.num_layers):
        for part in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            arrays[f"{part}_{layer}"] = p[f"rnn.{part}_l{layer}"]
    w, b = p["head.weight"], p["head.bias"]
    if model.norm is not None:  # eval-mode BatchNorm is an affine map of the head's input
        scale = p["norm.weight"] / np.sqrt(p["norm.running_var"] + model.norm.eps)
        b = b + w @ (p["norm.bias"] - p["norm.running_mean"] * scale)
        w = w * scale
    arrays.update(head_weight=w, head_bias=b)
    return arrays


def b64_float32(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def b64_array(a: np.ndarray, dtype: str) -> dict:
    """{"dtype", "base64"}, little-endian: the page decodes int32, float32 and float64."""
    little = {"int32": "<i4", "float32": "<f4", "float64": "<f8"}[dtype]
    return {"dtype": dtype, "base64": base64.b64encode(np.ascontiguousarray(a, dtype=little).tobytes()).decode("ascii")}


def b64_counts(a: np.ndarray) -> dict:
    """Counts as int32, or float64 (exact below 2**53) where one would not fit."""
    fits = len(a) == 0 or int(np.max(a)) < 2**31
    return b64_array(a, "int32" if fits else "float64")


def script_json(data: dict) -> str:
    """JSON safe inside <script>: no '<' can close the element or open a comment."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def page_title(meta: dict) -> str:
    """The run folder and checkpoint name: enough to tell pages apart, no full local path."""
    path = Path(meta.get("checkpoint_path") or "model")
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem
