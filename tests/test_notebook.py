"""examples/quickstart.ipynb runs top to bottom on a few seconds' budget, in this venv's Python."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
KERNEL = "rnnkit-test-venv"


def cell(nb, tag: str):
    (found,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return found


def stdout(c) -> str:
    return "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream" and o.name == "stdout")


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    # A kernelspec of our own, found first on JUPYTER_PATH, so the kernel is this venv's Python
    # whatever kernels the machine has.
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rnnkit test venv", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no profile or startup file of the machine's
    monkeypatch.setenv("RNNKIT_NOTEBOOK_BUDGET", "4")
    monkeypatch.setenv("RNNKIT_NOTEBOOK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook's plot must show inline

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook with outputs cleared"
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))  # which environment the kernel ran in
    # Raises CellExecutionError, with the cell and its traceback, if any cell fails.
    NotebookClient(nb, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()

    assert Path(stdout(nb.cells[-1]).strip()).resolve() == Path(sys.prefix).resolve()
    run_dir = tmp_path / "work" / "run"
    assert (run_dir / "metrics.jsonl").stat().st_size > 0
    assert "best checkpoint:" in stdout(cell(nb, "train"))

    sample = stdout(cell(nb, "sample"))
    assert sample.startswith("def ") and len(sample) == len("def ") + 300 + 1  # the start text, 300 characters, print's newline

    scored = stdout(cell(nb, "score"))
    scores = {label: float(v) for label, v in re.findall(r"^(\w+)\s+([\d.]+) nats per character", scored, re.MULTILINE)}
    assert set(scores) == {"python", "gibberish"}
    assert all(math.isfinite(v) and v > 0 for v in scores.values())
    top5 = re.findall(r"^  (['\"]).+\1 +[01]\.\d{3}$", scored, re.MULTILINE)  # next_tokens(k=5): repr, probability
    assert len(top5) == 5

    images = [o for o in cell(nb, "plot").outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
