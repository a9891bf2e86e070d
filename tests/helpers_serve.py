"""Shared by the serve, lines and web page tests: a tiny random checkpoint and a live server."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import torch

from rnnkit.core.checkpoint import save_checkpoint
from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.text.vocab import Vocab

TEXT = "The quick brown fox jumps over the lazy dog.\nAnna\nBella\nCarla\n"


def make_checkpoint(folder: Path, text: str = TEXT, meta: dict | None = None, seed: int = 0) -> Path:
    """An untrained char model over `text`'s characters, saved as folder/checkpoint_1.json."""
    torch.manual_seed(seed)
    vocab = Vocab.build(sorted(set(text)), "char")
    model = LanguageModel(ModelConfig(vocab_size=len(vocab), rnn_size=32, num_layers=1))
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(
        folder / "checkpoint_1.json",
        {f"model.{k}": t for k, t in model.state_dict().items()},
        {"kind": "language_model", "model": model.config.to_dict(), "vocab": vocab.to_json_dict(), "iteration": 1,
         **(meta or {})},
    )


def ngram_record(folder: Path, text: str, order: int = 4, weight: float = 0.5, ngram_text: str | None = None,
                 **measured) -> dict:
    """An n-gram of `order` over `text`'s characters, counted on `ngram_text` (default: `text` three
    times over), its tables saved in folder, and the record a checkpoint's "ngram" entry holds after
    rnnkit train --ngram (`measured`: the losses training adds, e.g. val_loss_mixed)."""
    from rnnkit.model.mixture import save_tables
    from rnnkit.model.ngram import NGram

    vocab = Vocab.build(sorted(set(text)), "char")
    ngram = NGram.fit(vocab.encode(ngram_text or text * 3), len(vocab), order)
    folder.mkdir(parents=True, exist_ok=True)
    tables = folder / "checkpoint_1_ngram.safetensors"
    return {"file": tables.name, "sha256": save_tables(ngram, tables), "order": order, "weight": weight, **measured}


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Tiny models sample fastest on one thread; on a busy 2-core box more threads thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def running_server(checkpoint: Path, *flags: str, timeout: float = 60, token: str | None = None) -> Iterator[str]:
    """`rnnkit serve CHECKPOINT --port 0 FLAGS` in a subprocess; yields its base URL.

    A token goes in through RNNKIT_TOKEN, as it would to keep it out of the process list.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.pop("RNNKIT_TOKEN", None)
    if token is not None:
        env["RNNKIT_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnnkit", "serve", str(checkpoint), "--port", "0", "--device", "cpu", *flags],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        url = _wait_for_url(proc, timeout)
        # keep reading its log so a chatty server never blocks on a full pipe
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        _wait_healthy(url, timeout, bearer(token) if token is not None else {})
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_url(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise RuntimeError(f"rnnkit serve exited ({proc.poll()}):\n{''.join(seen)}")
        seen.append(line)
        m = re.search(r"at (http://127\.0\.0\.1:\d+)/", line)
        if m:
            return m.group(1)
    raise RuntimeError(f"rnnkit serve did not start in {timeout} s:\n{''.join(seen)}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait_healthy(url: str, timeout: float, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}/health did not answer in {timeout} s")
