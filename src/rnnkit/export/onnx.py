"""`rnnkit export --format onnx`: the one-token step as an ONNX graph, the vocabulary beside it.

The graph takes one token per stream and the recurrent state, and gives the next-token
logits and the new state, so any ONNX runtime can sample with the loop rnnkit runs:

    inputs:  ids int64 [batch] (1-based, as the vocabulary numbers them)
             h   float32 [num_layers, batch, rnn_size]   (zeros to begin)
             c   float32 [num_layers, batch, rnn_size]   (LSTM only)
    outputs: logits float32 [batch, V]  (logits[:, j] scores token id j + 1)
             h_out, c_out: the state to pass to the next step

The vocabulary goes to FILE.json in torch-rnn's layout (token_to_idx, idx_to_token), with
an "rnnkit_onnx" entry describing the graph's inputs and outputs.

A checkpoint that mixes in an n-gram (model/mixture.py) keeps the graph the network's step
alone and writes the n-gram's tables beside it, FILE.ngram.safetensors (the arrays of
NGram.state_dict(), order and vocab_size as 0-d arrays), named in FILE.json as
"ngram": {"order", "weight", "file", "sha256"}. Sampling as rnnkit does draws each token from

    ln(weight * softmax(logits) + (1 - weight) * P_ngram(next | the last order - 1 ids))

(0 for a position before the start: the history begins as the start text, or the newline),
with temperature applied to that as to logits. The reference implementation:
rnnkit.model.ngram.NGram.from_state_dict(safetensors.numpy.load_file(FILE.ngram.safetensors))
and its next_distributions(histories).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.atomic import atomic_write_bytes, atomic_write_text
from ..errors import RnnkitError
from ..model.language_model import LanguageModel
from . import Exported, ngram_path, vocab_path

OPSET = 17


class OneTokenStep(nn.Module):
    """ids [batch] + state -> logits [batch, V] + state: the graph a runtime steps through."""

    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model
        self.lstm = model.config.model_type == "lstm"

    def forward(self, ids: torch.Tensor, h: torch.Tensor, *c: torch.Tensor):
        state = (h, c[0]) if self.lstm else h
        logits, state = self.model(ids.unsqueeze(1), state)
        return (logits[:, 0], *state) if self.lstm else (logits[:, 0], state)


def state_names(model_type: str) -> list[str]:
    return ["h", "c"] if model_type == "lstm" else ["h"]


def export_onnx(generator, out: Path) -> Exported:
    onnx = _require_onnx()
    model = copy.deepcopy(generator.model).cpu().float().eval()
    proto = onnx.load_from_string(_export_bytes(OneTokenStep(model)))
    config = model.config
    info = graph_description(config)
    for key, value in (("rnnkit_model", json.dumps(config.to_dict())), ("rnnkit_vocab", vocab_path(out).name)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    atomic_write_bytes(out, proto.SerializeToString())
    sidecar = dict(generator.vocab.to_json_dict(), rnnkit_onnx=info)
    written, notes = [out, vocab_path(out)], []
    if generator.mixture is not None:
        sidecar["ngram"] = write_ngram(generator.mixture, ngram_path(out))
        written.append(ngram_path(out))
        notes.append(f"{generator.mixture.describe()}: its tables are in {ngram_path(out).name}; mix them in as "
                     f"{vocab_path(out).name}'s \"ngram\" entry says (--no_ngram: the network alone)")
    atomic_write_text(vocab_path(out), json.dumps(sidecar, ensure_ascii=False, indent=1))
    return Exported(written, notes)


def write_ngram(mixture, path: Path) -> dict:
    """The n-gram's tables as safetensors that NGram.from_state_dict reads as loaded; their FILE.json entry."""
    from safetensors.numpy import save

    arrays = {name: np.ascontiguousarray(value) if isinstance(value, np.ndarray) else np.array(value, dtype=np.int64)
              for name, value in mixture.ngram.state_dict().items()}
    blob = save(arrays)
    atomic_write_bytes(path, blob)
    return {"order": mixture.ngram.order, "weight": mixture.weight, "file": path.name,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "mix": "ln(weight * softmax(logits) + (1 - weight) * P_ngram(next | last order-1 ids, 0 before the start)); "
                   "reference: rnnkit.model.ngram.NGram.from_state_dict(load_file(file)).next_distributions"}


def graph_description(config) -> dict:
    """The graph's inputs and outputs, written into the vocabulary file for whoever runs it."""
    names = state_names(config.model_type)
    state_shape = [config.num_layers, "batch", config.rnn_size]
    return {
        "opset": OPSET,
        "model": config.to_dict(),
        "inputs": {"ids": ["batch"], **{n: state_shape for n in names}},
        "outputs": {"logits": ["batch", config.vocab_size], **{f"{n}_out": state_shape for n in names}},
        "ids": "1-based, as idx_to_token numbers them; logits[:, j] scores id j + 1",
        "start": "state all zeros, then feed a newline (or the start text) one token at a time",
    }


def _export_bytes(step: OneTokenStep) -> bytes:
    config = step.model.config
    names = state_names(config.model_type)
    batch = 2  # any batch size runs: the batch axis is dynamic
    ids = torch.ones(batch, dtype=torch.long)
    state = tuple(torch.zeros(config.num_layers, batch, config.rnn_size) for _ in names)
    outputs = ["logits", *(f"{n}_out" for n in names)]
    axes = {"ids": {0: "batch"}, "logits": {0: "batch"}}
    axes.update({n: {1: "batch"} for n in names + outputs[1:]})
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript exporter warns that it is the legacy one, and that an LSTM exported
        # with batch > 1 needs its state as inputs (it has them)
        warnings.simplefilter("ignore")
        torch.onnx.export(step, (ids, *state), buffer, input_names=["ids", *names], output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, **_legacy_exporter())
    return buffer.getvalue()


def _legacy_exporter() -> dict:
    """The TorchScript exporter: the dynamo one needs onnxscript. Older torch has only that one."""
    return {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def _require_onnx():
    try:
        import onnx
    except ModuleNotFoundError:
        raise RnnkitError("rnnkit export --format onnx needs onnx; install it with: pip install 'rnnkit[export]'") from None
    return onnx
