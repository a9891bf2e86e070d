"""The run folder's record of training: metrics.jsonl, one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    def __init__(self, run_dir: str | Path, resume_at: int | None = None):
        self.path = Path(run_dir) / METRICS_FILE
        if resume_at is not None and self.path.exists():
            # a resumed run re-does the iterations after its checkpoint: drop their records
            kept = [r for r in read_metrics(self.path) if r.get("iteration", 0) <= resume_at]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        elif resume_at is None:
            self.path.write_text("")
        self._file = open(self.path, "a", buffering=1)

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()


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
