"""Choosing the device: `--device auto|cpu|cuda|cuda:N|mps` and torch-rnn's `--gpu N`."""

from __future__ import annotations

import functools
import platform

import torch

from ..errors import ConfigError


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


@functools.cache
def cpu_has_bf16_math() -> bool:
    """The CPU multiplies bfloat16 in hardware (x86 AVX512-BF16 or AMX-BF16); Linux only.

    Without such instructions oneDNN emulates bf16, which is slower than float32.
    """
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.cache
def cpu_bf16_rnn_failure(model_type: str) -> str | None:
    """Why this PyTorch cannot train a `model_type` stack under bfloat16 autocast on this CPU, or None.

    A probe, not a flag check: oneDNN has a bfloat16 LSTM primitive only on some ISAs (none on
    AVX2-only CPUs), and which one a build picks depends on the build and on ONEDNN_MAX_CPU_ISA.
    So a tiny network runs one forward and backward pass here, once per process and cell type.
    """
    rnn_class = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[model_type]
    rnn = rnn_class(4, 8, num_layers=2, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = rnn(torch.randn(2, 3, 4))
        out.float().sum().backward()
    except RuntimeError as e:
        return str(e).split(". ")[0].strip()
    return None


def check_cpu_bf16(model_type: str) -> None:
    """--amp bf16 on a CPU: a one-line error before training where the probe above fails."""
    failure = cpu_bf16_rnn_failure(model_type)
    if failure is not None:
        raise ConfigError(f"--amp bf16: this CPU (or this PyTorch build) cannot train {'an' if model_type == 'lstm' else 'a'} "
                          f"{model_type.upper()} in bfloat16 ({failure}); use --amp off, which trains in float32")


# --amp bf16 on a CPU with bf16 instructions: on a Zen 5 core (torch 2.13, oneDNN) a 2-layer
# LSTM step is 1.6-1.8x faster at 128-512 units but slower from 640 units on, so under a time
# budget `auto` takes bf16 only up to this width (training/auto.py: cpu_amp).
CPU_BF16_MAX_RNN_SIZE = 512


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """What --amp auto|off|bf16|fp16 means on this device: the autocast dtype, or None for float32.

    auto: on CUDA bf16 where the GPU has it, else fp16; on a CPU float32 (under a time budget
    training/auto.py may resolve it to bf16 first).
    """
    if amp == "off" or device.type not in ("cuda", "cpu"):
        return None
    if device.type == "cpu":
        if amp == "fp16":
            raise ConfigError("--amp fp16 is for CUDA GPUs; on a CPU use --amp bf16 or --amp off")
        return torch.bfloat16 if amp == "bf16" else None
    if amp == "fp16":
        return torch.float16
    return torch.bfloat16 if amp == "bf16" or torch.cuda.is_bf16_supported() else torch.float16
