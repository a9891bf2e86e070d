"""No code runs on load: a malicious pickle where a checkpoint is expected is refused unopened.

The pickle's payload creates a marker file when unpickled; every test checks the marker
is absent after rnnkit has been pointed at it (and the first test shows the payload is live).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rnnkit
from rnnkit.core.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint
from rnnkit.errors import CheckpointError

ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")


class Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))  # runs at unpickling time: creates the marker


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps({"model.head.weight": Payload(marker)})


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], cwd=cwd, capture_output=True, text=True, env=ENV, timeout=300)


def test_the_payload_is_live(tmp_path):
    pickle.loads(malicious_pickle(tmp_path / "marker"))
    assert (tmp_path / "marker").exists()


@pytest.mark.parametrize("suffix", [".pt", ".t7", ".pth", ".ckpt", ".pkl"])
def test_pickled_checkpoint_files_are_refused(tmp_path, suffix):
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(malicious_pickle(tmp_path / "marker"))
    with pytest.raises(CheckpointError, match="never pickled"):
        load_checkpoint(evil)
    assert not (tmp_path / "marker").exists()


def disguised_checkpoint(run: Path, marker: Path) -> Path:
    """A pickle renamed checkpoint_5.safetensors, with a JSON that vouches for it (matching checksum)."""
    run.mkdir()
    blob = malicious_pickle(marker)
    (run / "checkpoint_5.safetensors").write_bytes(blob)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "weights_file": "checkpoint_5.safetensors",
            "weights_sha256": hashlib.sha256(blob).hexdigest(), "kind": "language_model", "iteration": 5,
            "model": {"vocab_size": 3}, "vocab": {"idx_to_token": {"1": "a", "2": "b", "3": "c"}}, "options": {}}
    (run / "checkpoint_5.json").write_text(json.dumps(meta))
    return run / "checkpoint_5.json"


def test_a_pickle_renamed_to_safetensors_is_refused(tmp_path):
    path = disguised_checkpoint(tmp_path / "run", tmp_path / "marker")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(path)
    assert not (tmp_path / "marker").exists()


def test_the_cli_refuses_them_without_running_them(tmp_path):
    marker = tmp_path / "marker"
    disguised_checkpoint(tmp_path / "run", marker)
    (tmp_path / "model.t7").write_bytes(malicious_pickle(marker))
    for args in (["sample", "--checkpoint", "model.t7"], ["sample", "--checkpoint", "run"], ["train", "--resume", "run"]):
        r = cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.startswith("rnnkit: error:") and "Traceback" not in r.stderr, (args, r.stderr)
        assert not marker.exists(), args


def test_no_loader_can_unpickle():
    """Every torch.load in the package passes weights_only=True; nothing calls pickle or allows it in NumPy."""
    src = Path(rnnkit.__file__).parent
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{path.name}: {call}"
        assert not re.search(r"\bpickle\.loads?\(|\bimport pickle\b|allow_pickle\s*=\s*True|\bjoblib\b|\bdill\b", text), path.name
