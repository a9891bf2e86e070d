"""`rnnkit export --format html`: one self-contained web page that samples from the model.

The page (static/page.html) holds everything: the weights as base64 float32, the
vocabulary as JSON, and plain JavaScript that steps the LSTM/GRU/RNN and samples with a
temperature, a seed (mulberry32, so runs repeat), a start text and list mode. It fetches
nothing (its Content-Security-Policy forbids it) and needs no build step; open it from disk.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_write_text
from ..errors import ConfigError
from ..model.language_model import LanguageModel
from ..serve.page import page_with_style
from . import Exported

DATA_SLOT = "__RNNKIT_MODEL__"  # in the template's JSON <script>, after every title slot
TITLE_SLOT = "{{title}}"


def export_html(generator, out: Path, train_lines: set[str] | None) -> Exported:
    """Write the page to `out`; `train_lines` (or None) feeds list mode's novelty filter."""
    if generator.vocab.kind != "char":
        raise ConfigError(
            f"--format html handles character models; this one reads {generator.vocab.kind}s "
            "(use --format onnx)"
        )
    title = page_title(generator.meta)
    data = page_data(generator, train_lines, title)
    template = page_with_style((resources.files("rnnkit.export") / "static" / "page.html").read_text(encoding="utf-8"))
    head, tail = template.split(DATA_SLOT)  # split, so no text in the data is ever taken for a slot
    page = head.replace(TITLE_SLOT, html.escape(title)) + script_json(data) + tail
    atomic_write_text(out, page)
    return Exported([out])


def page_data(generator, train_lines: set[str] | None, title: str) -> dict:
    """Everything the page's script reads: the model's shape, vocabulary, weights and lines."""
    model, meta = generator.model, generator.meta
    c = model.config
    return {
        "format": 1,
        "title": title,
        "model": {"type": c.model_type, "layers": c.num_layers, "rnn_size": c.rnn_size,
                  "wordvec_size": c.wordvec_size, "vocab_size": c.vocab_size,
                  "parameters": model.num_parameters()},
        "info": {"iteration": meta.get("iteration"), "val_loss": meta.get("val_loss")},
        "tokens": generator.vocab.tokens,
        "weights": {name: b64_float32(a) for name, a in weight_arrays(model).items()},
        "train_lines": sorted(train_lines) if train_lines is not None else None,
    }


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


def script_json(data: dict) -> str:
    """JSON safe inside <script>: no '<' can close the element or open a comment."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def page_title(meta: dict) -> str:
    """The run folder and checkpoint name: enough to tell pages apart, no full local path."""
    path = Path(meta.get("checkpoint_path") or "model")
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem
