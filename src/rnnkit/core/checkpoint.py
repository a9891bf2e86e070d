"""Checkpoints: a safetensors file of tensors plus a JSON file of everything else.

A checkpoint is named by its JSON file (``cv/checkpoint_1000.json``). The JSON records
the weights file's name and SHA-256, and is written after the weights, each atomically
(temp file, fsync, rename), so a crash leaves either the old pair or the new one. A pair
whose checksum does not match is refused, never loaded (`DamagedCheckpoint`); a resume
falls back to the newest intact pair and never deletes or overwrites a damaged one.
Nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import CheckpointError
from .atomic import atomic_write_bytes, atomic_write_text

FORMAT = "rnnkit-checkpoint"
FORMAT_VERSION = 1
_ITER_RE = re.compile(r"_(\d+)\.json$")


class DamagedCheckpoint(CheckpointError):
    """A checkpoint's files are truncated, corrupted or do not match each other."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason  # a few words, for lines that name several files


@dataclass
class Checkpoint:
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    path: Path  # the JSON file

    def prefixed(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}


# ---- save / load -------------------------------------------------------------------------
def save_checkpoint(
    json_path: str | Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    weights_path: str | Path | None = None,
) -> Path:
    """Write weights then JSON. Tensors are stored contiguous, on the CPU.

    With ``weights_path`` naming an existing weights file beside it (say ``best.json``
    pointing at ``checkpoint_1000.safetensors``), only the JSON is written.
    """
    json_path = Path(json_path)
    if weights_path is None:
        weights_path = json_path.with_suffix(".safetensors")
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        blob = st_save(cpu)
        # replacing a pair: its JSON goes just before its weights do, so a crash before the new
        # JSON lands leaves no JSON vouching for weights it does not match
        atomic_write_bytes(weights_path, blob, before_replace=lambda: json_path.unlink(missing_ok=True))
        digest = hashlib.sha256(blob).hexdigest()
    else:
        weights_path = Path(weights_path)
        digest = _sha256_file(weights_path)
    record = dict(meta)
    record.update(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        weights_file=weights_path.name,
        weights_sha256=digest,
    )
    atomic_write_text(json_path, json.dumps(record, indent=1, allow_nan=False))
    return json_path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_meta(json_path: str | Path) -> dict[str, Any]:
    json_path = Path(json_path)
    try:
        raw = json_path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{json_path}: no such checkpoint") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DamagedCheckpoint(
            f"{json_path} is not an rnnkit checkpoint (unreadable JSON: truncated or corrupted?); "
            "use an earlier checkpoint from the same folder", "unreadable JSON: truncated or corrupted?"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DamagedCheckpoint(f"{json_path} is not an rnnkit checkpoint JSON file", "not an rnnkit checkpoint JSON file")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{json_path} was written by a newer rnnkit (checkpoint format {version}, this rnnkit reads "
            f"up to {FORMAT_VERSION}); upgrade rnnkit with: pip install -U rnnkit"
        )
    return meta


def load_checkpoint(path: str | Path) -> Checkpoint:
    json_path = resolve_checkpoint(path)
    meta = read_meta(json_path)
    weights = _weights_file(json_path, meta)
    try:
        blob = weights.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise _missing(json_path, weights) from None
    _check_digest(hashlib.sha256(blob).hexdigest(), json_path, meta)
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise DamagedCheckpoint(f"{weights} is not a valid safetensors file ({e})", "not a valid safetensors file") from None
    return Checkpoint(meta, tensors, json_path)


def verify_checkpoint(json_path: str | Path) -> dict[str, Any]:
    """The checks load_checkpoint makes, reading the weights in blocks instead of whole; returns the JSON.
    Raises DamagedCheckpoint for a pair that does not match, CheckpointError for one rnnkit cannot read."""
    json_path = Path(json_path)
    meta = read_meta(json_path)
    weights = _weights_file(json_path, meta)
    try:
        digest = _sha256_file(weights)
    except (FileNotFoundError, IsADirectoryError):
        raise _missing(json_path, weights) from None
    _check_digest(digest, json_path, meta)
    return meta


def _weights_file(json_path: Path, meta: dict[str, Any]) -> Path:
    return json_path.parent / str(meta.get("weights_file", ""))


def _missing(json_path: Path, weights: Path) -> DamagedCheckpoint:
    return DamagedCheckpoint(f"{json_path}: its weights file {weights.name} is missing", f"weights file {weights.name} missing")


def _check_digest(digest: str, json_path: Path, meta: dict[str, Any]) -> None:
    if digest != meta.get("weights_sha256"):
        raise DamagedCheckpoint(
            f"{_weights_file(json_path, meta)} does not match the checksum in {json_path.name} (truncated or "
            "corrupted); use an earlier checkpoint from the same folder", "weights do not match its checksum"
        )


# ---- naming ------------------------------------------------------------------------------
def resolve_checkpoint(path: str | Path) -> Path:
    """The JSON file for a checkpoint given as .json, .safetensors, base name or run folder.

    A run folder means its best checkpoint, else its newest.
    """
    p = Path(path)
    if p.suffix in (".t7", ".pt", ".pth", ".pkl", ".ckpt"):
        raise CheckpointError(
            f"{p}: rnnkit reads only its own .json + .safetensors checkpoints, never pickled "
            "(.t7/.pt) files, which can run code when loaded; retrain with rnnkit train"
        )
    if p.is_dir():
        found = find_checkpoints(p)
        if not found:
            raise CheckpointError(f"{p} holds no rnnkit checkpoint (no *.json beside a *.safetensors)")
        best = [c for c in found if c.name.endswith("_best.json")]
        return best[0] if best else found[-1]
    if p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    elif p.suffix != ".json":
        p = p.with_name(p.name + ".json")
    if not p.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (looked for {p})")
    return p


def checkpoint_iteration(json_path: Path) -> int | None:
    m = _ITER_RE.search(json_path.name)
    return int(m.group(1)) if m else None


def find_checkpoints(folder: str | Path, prefix: str | None = None) -> list[Path]:
    """Checkpoint JSON files in a folder, oldest iteration first; `_best` files last."""
    folder = Path(folder)
    out = []
    for p in folder.glob("*.json"):
        if prefix is not None and not p.name.startswith(prefix + "_"):
            continue
        if p.with_suffix(".safetensors").exists() or p.name.endswith("_best.json"):
            out.append(p)
    return sorted(out, key=lambda p: (p.name.endswith("_best.json"), checkpoint_iteration(p) or 0, p.name))


def remove_checkpoints(folder: str | Path, prefix: str) -> None:
    """Delete a run's checkpoints (for --force): JSON files first, so no JSON outlives its weights."""
    found = find_checkpoints(folder, prefix)
    for p in sorted(found, key=lambda p: not p.name.endswith("_best.json")):
        p.unlink(missing_ok=True)
    for p in found:
        p.with_suffix(".safetensors").unlink(missing_ok=True)


def latest_checkpoint(folder: str | Path, prefix: str | None = None) -> Path | None:
    numbered = [p for p in find_checkpoints(folder, prefix) if checkpoint_iteration(p) is not None]
    return numbered[-1] if numbered else None


def newest_intact_checkpoint(folder: str | Path, prefix: str | None = None) -> tuple[Path | None, list[tuple[Path, DamagedCheckpoint]]]:
    """The newest numbered checkpoint whose files match, and the damaged ones newer than it (newest first)."""
    damaged = []
    for path in reversed([p for p in find_checkpoints(folder, prefix) if checkpoint_iteration(p) is not None]):
        try:
            verify_checkpoint(path)
        except DamagedCheckpoint as e:
            damaged.append((path, e))
            continue
        return path, damaged
    return None, damaged


def set_aside_if_damaged(json_path: Path) -> list[Path]:
    """Before a checkpoint is written over: rename a damaged pair at that name to NAME.damaged
    (.damaged.1, ... if taken), kept for a look rather than replaced. Returns the new names."""
    try:
        verify_checkpoint(json_path)
        return []
    except DamagedCheckpoint:
        pass
    except CheckpointError:  # gone meanwhile, or from a newer rnnkit: not damaged
        return []
    moved = []
    for old in (json_path, json_path.with_suffix(".safetensors")):
        if not old.exists():
            continue
        new, n = old.with_name(old.name + ".damaged"), 0
        while new.exists():
            n += 1
            new = old.with_name(f"{old.name}.damaged.{n}")
        old.rename(new)
        moved.append(new)
    return moved


# ---- optimizer state <-> tensors + JSON ----------------------------------------------------
def pack_optimizer(optimizer: torch.optim.Optimizer, prefix: str = "optim.") -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unpack_optimizer(optimizer: torch.optim.Optimizer, tensors: dict, packed: dict, prefix: str = "optim.") -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix):
            pid, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for pid, extra in packed.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(extra)
    optimizer.load_state_dict({"state": state, "param_groups": packed["param_groups"]})
