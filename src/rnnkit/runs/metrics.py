"""The run folder's record of training: metrics.jsonl, one JSON object per line.

Three kinds of record, told apart by their keys:
  progress   {iteration, epoch, train_loss, lr, tokens_per_s, time}   every --print_every
  evaluation {iteration, epoch, val_loss, checkpoint, time}           at each checkpoint
  event      {iteration, event, ...}                                  nonfinite | restored
With --tensorboard the same numbers also go to TensorBoard event files in RUN_DIR/tensorboard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import RnnkitError

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"

# metrics.jsonl key -> TensorBoard tag
TENSORBOARD_TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "lr": "learning_rate",
    "tokens_per_s": "tokens_per_second",
    "epoch": "epoch",
}


class MetricsLog:
    def __init__(self, run_dir: str | Path, resume_at: int | None = None, tensorboard: bool = False):
        self.path = Path(run_dir) / METRICS_FILE
        self.writer = tensorboard_writer(Path(run_dir) / TENSORBOARD_DIR, resume_at) if tensorboard else None
        if resume_at is not None and self.path.exists():
            # a resumed run re-does the iterations after its checkpoint: drop their records
            kept = [r for r in read_metrics(self.path) if r.get("iteration", 0) <= resume_at]
            from ..core.atomic import (
                atomic_write_text,  # a kill while rewriting must not lose the history
            )

            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif resume_at is None:
            self.path.write_text("")
        self._file = open(self.path, "a", buffering=1)

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        if self.writer is not None and "iteration" in record:
            for key, tag in TENSORBOARD_TAGS.items():
                if isinstance(record.get(key), (int, float)):
                    self.writer.add_scalar(tag, record[key], record["iteration"])

    def close(self) -> None:
        self._file.close()
        if self.writer is not None:
            self.writer.close()


def tensorboard_writer(log_dir: Path, resume_at: int | None = None):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RnnkitError(
            "--tensorboard needs the tensorboard package: pip install tensorboard "
            "(or pip install 'rnnkit[tensorboard]'), or drop --tensorboard"
        ) from None
    # purge_step: a resumed run hides the events it is about to redo
    return SummaryWriter(str(log_dir), purge_step=resume_at + 1 if resume_at is not None else None)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return out
