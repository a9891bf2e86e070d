"""The language model's one-token step outside PyTorch's per-op dispatch, for sampling on a CPU.

PyTorch pays a few microseconds of dispatch on every small op, and a one-token step of
a 2x256 LSTM is two dozen of them, so a plain `model(ids, state)` loop runs ~1,500
characters/s for one stream. Here the elementwise work is NumPy's and the matrix
products are NumPy's (one stream) or oneDNN's with prepacked weights (several streams),
with the weights arranged once:
- layer 0's input product (embedding @ W_ih + biases) is a table looked up by token id;
- each higher layer's gates are one product of [h_below, h_own] with [W_ih, W_hh];
- gates are reordered so every sigmoid is in one block, and sigmoid(x) is computed as
  0.5 * tanh(x / 2) + 0.5 with the 1/2 folded into the weights: one tanh call per layer;
- an eval-mode BatchNorm before the head folds into the head's weights.
Dropout is the identity at sampling time. Everything stays float32. tests/test_perf_paths.py
checks the probabilities against the torch model's on both kinds of products.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..model.language_model import LanguageModel


class CpuLM:
    """A NumPy copy of a LanguageModel's weights, arranged for one-token steps."""

    def __init__(self, model: LanguageModel):
        c = model.config
        self.kind, self.H, self.L, self.V = c.model_type, c.rnn_size, c.num_layers, c.vocab_size
        # arranged in float64 NumPy (torch's small ops cost more than the arithmetic here)
        p = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in model.state_dict().items()}
        H = self.H
        order, scale = _gate_layout(self.kind, H)
        self.w_ih, self.w_hh, self.b_ih, self.b_hh = [], [], [], []
        for layer in range(self.L):
            w_ih, w_hh = p[f"rnn.weight_ih_l{layer}"][order], p[f"rnn.weight_hh_l{layer}"][order]
            b_ih, b_hh = p[f"rnn.bias_ih_l{layer}"][order], p[f"rnn.bias_hh_l{layer}"][order]
            if layer == 0:  # token id -> input product, biases included
                w_ih = p["embed.weight"] @ w_ih.T
            if self.kind == "gru":  # the candidate gate needs W_hh h + b_hh on its own
                self.w_ih.append(_f32((w_ih + b_ih if layer == 0 else w_ih.T) * scale))
                self.b_ih.append(_f32(b_ih * scale))
                self.w_hh.append(_f32(w_hh.T * scale))
                self.b_hh.append(_f32(b_hh * scale))
            else:  # one product of [h_below, h_own] with [W_ih; W_hh]
                b = b_ih + b_hh
                if layer == 0:
                    self.w_ih.append(_f32((w_ih + b) * scale))
                    self.w_hh.append(_f32(w_hh.T * scale))
                else:
                    self.w_hh.append(_f32(np.concatenate([w_ih, w_hh], 1).T * scale))
                self.b_hh.append(_f32(b * scale))
        w_out, b_out = p["head.weight"], p["head.bias"]
        if model.norm is not None:  # eval-mode BatchNorm is an affine map: fold it in
            bn = model.norm
            s = p["norm.weight"] / np.sqrt(p["norm.running_var"] + bn.eps)
            b_out = b_out + w_out @ (p["norm.bias"] - p["norm.running_mean"] * s)
            w_out = w_out * s
        self.w_out, self.b_out = _f32(w_out.T), _f32(b_out)
        self._products: dict[int, Products] = {}

    def products(self, n: int) -> "Products":
        """The matrix products for batches of n streams (oneDNN's weights are packed per n)."""
        if n not in self._products:
            use_onednn = n >= ONEDNN_MIN_STREAMS and onednn_works()
            make = OneDnnProduct if use_onednn else NumpyProduct
            if len(self._products) >= 8:
                self._products.clear()
            gru = self.kind == "gru"
            self._products[n] = Products(
                ih=[None] + [make(self.w_ih[layer], self.b_ih[layer], n) for layer in range(1, self.L)] if gru else [],
                hh=[make(self.w_hh[layer], self.b_hh[layer] if gru or layer else None, n) for layer in range(self.L)],
                head=make(self.w_out, self.b_out, n),
            )
        return self._products[n]

    def start(self, state, n: int) -> "CpuStreams":
        """n streams starting from the torch model's state (batch 1 or n)."""
        return CpuStreams(self, state, n)

    @staticmethod
    def key(model: LanguageModel) -> tuple:
        """Changes whenever a weight does."""
        return tuple((t.data_ptr(), tensor_version(t)) for t in model.state_dict(keep_vars=True).values())


class CpuStreams:
    """The recurrent state and scratch buffers of n streams; the weights are shared."""

    def __init__(self, lm: CpuLM, state, n: int):
        self.lm, H, L = lm, lm.H, lm.L
        h, c = (state if isinstance(state, tuple) else (state, None))
        h = _host(h)  # (L, b, H)
        self.hs = np.zeros((n, L * H), np.float32)  # [h_0 | h_1 | ...]: layer l reads columns (l-1)H..(l+1)H
        for layer in range(L):
            self.hs[:, layer * H:(layer + 1) * H] = h[layer]
        self.cs = [np.array(np.broadcast_to(_host(c)[layer], (n, H))) for layer in range(L)] if c is not None else None
        self.tmp = np.empty((n, H), np.float32)
        self.products = lm.products(n)
        self.threads = torch_threads_for(n) if isinstance(self.products.hh[0], OneDnnProduct) else None

    def step(self, ids: np.ndarray) -> np.ndarray:
        """ids (n,), 1-based -> next-token logits (n, V); the buffer may be reused by the next step."""
        if self.threads is None:
            return self._step(ids)
        saved = torch.get_num_threads()  # per calling thread (an OpenMP setting): cheap to set and restore
        torch.set_num_threads(self.threads)
        try:
            return self._step(ids)
        finally:
            torch.set_num_threads(saved)

    def _step(self, ids: np.ndarray) -> np.ndarray:
        lm, H, P = self.lm, self.lm.H, self.products
        for layer in range(lm.L):
            h = self.hs[:, layer * H:(layer + 1) * H]
            if lm.kind == "gru":
                self._gru(layer, ids, h)
                continue
            if layer == 0:
                g = P.hh[0](h)
                g += lm.w_ih[0][ids]
            else:
                g = P.hh[layer](self.hs[:, (layer - 1) * H:(layer + 1) * H])
            np.tanh(g, out=g)
            if lm.kind == "rnn":
                h[...] = g
                continue
            sig = g[:, :3 * H]  # gates i, f, o (sigmoids), then the candidate
            sig *= 0.5
            sig += 0.5
            c = self.cs[layer]
            c *= g[:, H:2 * H]
            np.multiply(g[:, :H], g[:, 3 * H:], out=self.tmp)
            c += self.tmp
            np.tanh(c, out=self.tmp)
            np.multiply(g[:, 2 * H:3 * H], self.tmp, out=h)
        return P.head(self.hs[:, (lm.L - 1) * H:])

    def _gru(self, layer: int, ids: np.ndarray, h: np.ndarray) -> None:
        lm, H, P = self.lm, self.lm.H, self.products
        if layer == 0:
            gi = lm.w_ih[0][ids]  # its bias is in the table
        else:
            gi = P.ih[layer](self.hs[:, (layer - 1) * H:layer * H])
        gh = P.hh[layer](h)
        rz = gi[:, :2 * H]
        rz += gh[:, :2 * H]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        cand = gi[:, 2 * H:]
        cand += gh[:, 2 * H:] * rz[:, :H]
        np.tanh(cand, out=cand)
        np.subtract(h, cand, out=self.tmp)  # h' = n + z * (h - n)
        self.tmp *= rz[:, H:]
        np.add(cand, self.tmp, out=h)


# ---- the matrix products -------------------------------------------------------------------------
# For one stream NumPy's OpenBLAS (a matrix-vector product) is the fastest x @ W + b. From
# two streams on, OpenBLAS repacks W on every call while oneDNN (inside PyTorch) packs it
# once into its kernel's layout: 1.7x faster for 32 streams of a 2x256 LSTM on one core
# with AVX-512, where these products are ~90% of the step. Both are float32.
ONEDNN_MIN_STREAMS = 2


class NumpyProduct:
    """x @ w + b by NumPy into a reused buffer."""

    def __init__(self, w: np.ndarray, b: np.ndarray | None, n: int):
        self.w, self.b = w, b
        self.out = np.empty((n, w.shape[1]), np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        np.dot(x, self.w, out=self.out)
        if self.b is not None:
            self.out += self.b
        return self.out


class OneDnnProduct:
    """x @ w + b by oneDNN, w packed once for a batch of n rows."""

    def __init__(self, w: np.ndarray, b: np.ndarray | None, n: int):
        self.w = torch.ops.mkldnn._reorder_linear_weight(torch.from_numpy(np.ascontiguousarray(w.T)), n)
        self.b = None if b is None else torch.from_numpy(b)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return torch.ops.mkldnn._linear_pointwise(torch.from_numpy(x), self.w, self.b, "none", [], "").numpy()


@dataclass
class Products:
    """Per layer: the input product (GRU layers above the first only) and the recurrent one; the head."""

    ih: list
    hh: list
    head: NumpyProduct | OneDnnProduct


def tensor_version(t: torch.Tensor) -> object:
    """PyTorch's private in-place update counter, which tells cheaply that a weight changed.
    Where a PyTorch lacks it, a new object each time: the weights are rearranged on every
    generation (slower, never stale), and that is said once."""
    global _version_note_shown
    try:
        return t._version
    except AttributeError:
        if not _version_note_shown:
            _version_note_shown = True
            print("note: this PyTorch has no tensor version counter; sampling rearranges the weights on every call",
                  file=sys.stderr, flush=True)
        return object()


_version_note_shown = False


def onednn_works() -> bool:
    """oneDNN's packed products exist in this PyTorch build and agree with NumPy's (checked once)."""
    global _onednn_ok
    if _onednn_ok is None:
        try:
            rng = np.random.default_rng(0)
            w, b, x = (rng.standard_normal(s, dtype=np.float32) for s in ((24, 40), (40,), (9, 24)))
            with torch.inference_mode():
                got = OneDnnProduct(w, b, 9)(x)
            _onednn_ok = bool(torch.backends.mkldnn.is_available() and np.allclose(got, x @ w + b, rtol=1e-4, atol=1e-4))
        except (AttributeError, RuntimeError, NotImplementedError):
            _onednn_ok = False
        if not _onednn_ok:
            print("note: oneDNN's packed products failed their check on this CPU or PyTorch build; "
                  "sampling several streams uses NumPy's products instead (slower)", file=sys.stderr, flush=True)
    return _onednn_ok


_onednn_ok: bool | None = None


def _gate_layout(kind: str, H: int) -> tuple[np.ndarray, np.ndarray]:
    """(row order, per-row scale): sigmoid gates first, scaled by 1/2 for the tanh form."""
    if kind == "lstm":  # torch: i, f, g, o -> i, f, o, g
        order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]
        scale = np.r_[np.full(3 * H, 0.5), np.ones(H)]
    elif kind == "gru":  # torch: r, z, n
        order = np.arange(3 * H)
        scale = np.r_[np.full(2 * H, 0.5), np.ones(H)]
    else:
        order, scale = np.arange(H), np.ones(H)
    return order, scale


def _host(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


# ---- BLAS threads ------------------------------------------------------------------------------
# NumPy's OpenBLAS splits even a 1x256 @ 256x1024 product across all cores. For one
# stream that gains nothing (the step is bound by reading the weights), and on a busy
# machine the threads wait on each other: a step then takes 10-20x longer. So sampling
# holds OpenBLAS to one thread, unless many streams make the products big enough to share
# and the machine is idle. The oneDNN products follow the same rule with PyTorch's threads
# (torch_threads_for): 32 streams of a 2x256 LSTM, 86k -> 113k characters/s on two cores.
MIN_STREAMS_FOR_THREADS = 8
_lock = threading.Lock()
_holders = 0
_limiter = None  # threadpoolctl's limit while some generation holds BLAS to one thread


def machine_is_idle() -> bool:
    """Fewer runnable processes (over the last minute) than cores, counting this one."""
    try:
        return os.getloadavg()[0] < (os.cpu_count() or 1) - 0.5
    except (OSError, AttributeError):
        return False


def torch_threads_for(streams: int) -> int:
    """Threads for the oneDNN products: PyTorch's own count when sharing pays, as for OpenBLAS."""
    return torch.get_num_threads() if streams >= MIN_STREAMS_FOR_THREADS and machine_is_idle() else 1


@contextmanager
def blas_threads_for(streams: int):
    """NumPy's BLAS at one thread while the block runs, unless sharing pays (see above)."""
    global _holders, _limiter
    if streams >= MIN_STREAMS_FOR_THREADS and machine_is_idle():
        yield
        return
    with _lock:  # generations may run in several threads (rnnkit serve): the last one out restores
        if _holders == 0:
            _limiter = threadpool_limits(limits=1, user_api="blas")
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
