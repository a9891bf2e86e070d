"""Choosing the device: `--device auto|cpu|cuda|cuda:N|mps` and torch-rnn's `--gpu N`."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(device: str | None = "auto", gpu: int | None = None) -> torch.device:
    """auto picks CUDA, then Apple's MPS, then the CPU. torch-rnn's --gpu -1 means CPU."""
    if gpu is not None and (device in (None, "auto")):
        device = "cpu" if gpu < 0 else f"cuda:{gpu}"
    device = (device or "auto").strip().lower()
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"--device {device!r} is unknown; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this machine has no CUDA GPU (or this torch has no CUDA); use --device cpu or --gpu -1")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("--device mps: Apple's Metal backend is not available here; use --device cpu")
    elif dev.type != "cpu":
        raise ConfigError(f"--device {device!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return dev
