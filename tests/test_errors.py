"""Every bad input a beginner can give gets one line, exit code 2, and leaves files alone.

Each case runs `python -m rnnkit ARGS` in its own process and its own copy of a small
folder of inputs (text files, a preprocessed corpus, a trained checkpoint and broken
copies of it), and hashes every file there before and after. The processes are forked
from one server that has already imported torch, so forty cases cost one torch import,
not forty; the debug and --force tests below start plain `python -m rnnkit` processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
from conftest import corpus_text

ENV = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
TRAIN = ("--rnn_size", "8", "--wordvec_size", "8", "--num_layers", "1", "--batch_size", "2", "--seq_length", "8",
         "--max_iters", "2", "--progress", "none", "--threads", "1")
H5 = ("--input_h5", "corpus.h5", "--input_json", "corpus.json")
NO_CUDA = not torch.cuda.is_available()

# (id, argv, a fragment the one-line message must contain)
CASES = [
    ("input_missing", ["train", "missing.txt", "--checkpoint_name", "out/ck", *TRAIN], "missing.txt: no such file"),
    ("preprocess_input_missing", ["preprocess", "--input_txt", "missing.txt", "--output_h5", "o.h5", "--output_json", "o.json"], "no such file"),
    ("h5_is_a_folder", ["train", "--input_h5", "texts", "--input_json", "corpus.json", "--checkpoint_name", "out/ck", *TRAIN], "is a folder"),
    ("json_is_a_folder", ["train", "--input_h5", "corpus.h5", "--input_json", "texts", "--checkpoint_name", "out/ck", *TRAIN], "is a folder"),
    ("empty_file", ["train", "empty.txt", "--checkpoint_name", "out/ck", *TRAIN], "empty"),
    ("not_utf8", ["train", "latin1.txt", "--checkpoint_name", "out/ck", *TRAIN], "--encoding bytes"),
    ("preprocess_not_utf8", ["preprocess", "--input_txt", "latin1.txt", "--output_h5", "o.h5", "--output_json", "o.json"], "--encoding bytes"),
    ("shorter_than_one_sequence", ["train", "tiny.txt", "--checkpoint_name", "out/ck", *TRAIN, "--seq_length", "50"], "--seq_length"),
    ("h5_json_from_different_corpora", ["train", "--input_h5", "mixed.h5", "--input_json", "corpus.json", "--checkpoint_name", "out/ck", *TRAIN], "different preprocess runs"),
    ("h5_missing_a_split", ["train", "--input_h5", "nosplit.h5", "--input_json", "corpus.json", "--checkpoint_name", "out/ck", *TRAIN], "no 'val' split"),
    ("truncated_weights_sample", ["sample", "--checkpoint", "broken_weights/ck_2.json", "--length", "5"], "checksum"),
    ("truncated_weights_init_from", ["train", *H5, "--init_from", "broken_weights/ck_2.json", "--checkpoint_name", "out/ck", *TRAIN], "checksum"),
    ("truncated_json_sample", ["sample", "--checkpoint", "broken_json/ck_2.json", "--length", "5"], "truncated or corrupted"),
    ("truncated_json_resume", ["train", "--resume", "broken_json"], "truncated or corrupted"),
    ("newer_format_version", ["sample", "--checkpoint", "newer/ck_2.json", "--length", "5"], "newer rnnkit"),
    ("resume_folder_without_checkpoints", ["train", "--resume", "texts"], "no checkpoint"),
    ("start_text_unseen_characters", ["sample", "--checkpoint", "run", "--start_text", "Hi \u20ac", "--length", "5"], "'\u20ac'"),
    ("temperature_zero", ["sample", "--checkpoint", "run", "--temperature", "0"], "--temperature"),
    ("temperature_negative", ["sample", "--checkpoint", "run", "--temperature", "-1"], "--temperature"),
    ("length_negative", ["sample", "--checkpoint", "run", "--length", "-1"], "--length"),
    ("seed_negative", ["sample", "--checkpoint", "run", "--seed", "-1"], "--seed"),
    ("train_seed_too_large", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--seed", str(2**40)], "--seed"),
    ("batch_size_zero", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--batch_size", "0"], "--batch_size"),
    ("seq_length_zero", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--seq_length", "0"], "--seq_length"),
    ("rnn_size_zero", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--rnn_size", "0"], "--rnn_size"),
    ("rnn_size_negative", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--rnn_size", "-5"], "--rnn_size"),
    ("dropout_one", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--dropout", "1"], "--dropout"),
    ("dropout_negative", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--dropout", "-0.1"], "--dropout"),
    ("weight_decay_too_large", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--weight_decay", "1000"], "--weight_decay"),
    ("unknown_model_type", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--model_type", "transformer"], "--model_type"),
    ("unknown_device", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--device", "tpu"], "--device"),
    ("unknown_device_sample", ["sample", "--checkpoint", "run", "--device", "tpu"], "--device"),
    pytest.param("cuda_without_cuda", ["train", "text.txt", "--checkpoint_name", "out/ck", *TRAIN, "--device", "cuda"], "no CUDA",
                 marks=pytest.mark.skipif(not NO_CUDA, reason="this machine has CUDA")),
    ("output_folder_missing_sample", ["sample", "--checkpoint", "run", "--length", "5", "--output", "nodir/out.txt"], "does not exist"),
    ("output_folder_missing_preprocess", ["preprocess", "--input_txt", "text.txt", "--output_h5", "nodir/c.h5", "--output_json", "c.json"], "does not exist"),
    ("output_parent_is_a_file", ["train", "text.txt", "--checkpoint_name", "notes.txt/ck", *TRAIN], "not a folder"),
    pytest.param("output_folder_not_writable_sample", ["sample", "--checkpoint", "run", "--length", "5", "--output", "/proc/rnnkit_out.txt"], "cannot write",
                 marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc as an unwritable folder")),
    pytest.param("output_folder_not_writable_train", ["train", "text.txt", "--checkpoint_name", "/proc/rnnkit_run/ck", *TRAIN], "cannot",
                 marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc as an unwritable folder")),
    ("existing_sample_output", ["sample", "--checkpoint", "run", "--length", "5", "--output", "notes.txt"], "--force"),
    ("existing_preprocess_output", ["preprocess", "--input_txt", "text.txt", "--output_h5", "c.h5", "--output_json", "notes.txt"], "--force"),
    ("existing_run", ["train", "text.txt", "--checkpoint_name", "run/ck", *TRAIN], "--resume"),
]


def _case_id(case) -> str:
    return case.values[0] if hasattr(case, "values") else case[0]


def _case_values(case):
    return case.values if hasattr(case, "values") else case


def build_inputs(root: Path) -> None:
    """The files every case starts from; each case gets its own copy."""
    from rnnkit.text.corpus import preprocess
    from rnnkit.training import TrainConfig, train

    text = corpus_text()[:3000]
    (root / "text.txt").write_text(text, encoding="utf-8")
    (root / "empty.txt").write_text("")
    (root / "latin1.txt").write_bytes("caf\u00e9 cr\u00e8me br\u00fbl\u00e9e\n".encode("latin-1") * 50)
    (root / "tiny.txt").write_text("To be, or not to be")
    (root / "notes.txt").write_text("my own notes, not to be lost\n")
    (root / "texts").mkdir()
    (root / "texts" / "a.txt").write_text("a file in a folder\n")
    preprocess(input_txt=[str(root / "text.txt")], output_h5=str(root / "corpus.h5"), output_json=str(root / "corpus.json"), quiet=True)
    # a corpus with more symbols, seen first: its ids run past corpus.json's vocabulary
    (root / "mixed.txt").write_text("0123456789\u20ac\n" + text, encoding="utf-8")
    preprocess(input_txt=[str(root / "mixed.txt")], output_h5=str(root / "mixed.h5"), output_json=str(root / "mixed.json"), quiet=True)
    with h5py.File(root / "corpus.h5") as src, h5py.File(root / "nosplit.h5", "w") as dst:
        dst["train"] = src["train"][()]
    train(TrainConfig(input_h5=str(root / "corpus.h5"), input_json=str(root / "corpus.json"), checkpoint_name=str(root / "run/ck"),
                      rnn_size=8, wordvec_size=8, num_layers=1, batch_size=2, seq_length=8, max_iters=2, progress="none",
                      quiet=True, threads=1))
    for name in ("broken_weights", "broken_json", "newer"):
        (root / name).mkdir()
        for suffix in (".json", ".safetensors"):
            shutil.copy(root / "run" / f"ck_2{suffix}", root / name / f"ck_2{suffix}")
    weights = root / "broken_weights/ck_2.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    meta = root / "broken_json/ck_2.json"
    meta.write_bytes(meta.read_bytes()[:100])
    record = json.loads((root / "newer/ck_2.json").read_text())
    record["format_version"] = 99
    (root / "newer/ck_2.json").write_text(json.dumps(record))


def file_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


# Runs each case as `python -m rnnkit ARGV` would, in a forked child: real argv, exit code,
# stdout and stderr file descriptors. Nothing has run torch code before the fork.
FORK_SERVER = r"""
import json, os, runpy, sys, traceback
import rnnkit.cli.parser, rnnkit.text.corpus, rnnkit.sampling.generator, rnnkit.training.trainer  # what every case would import

def child(case):
    os.chdir(case["cwd"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.argv = ["rnnkit", *case["argv"]]
    code = 0
    try:
        runpy.run_module("rnnkit", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:  # sys.exit("message"), as the interpreter reports it
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

cases, running, codes = json.load(open(sys.argv[1])), {}, {}
while cases or running:
    while cases and len(running) < int(sys.argv[3]):
        case = cases.pop(0)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(case)
        running[pid] = case["id"]
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
json.dump(codes, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("errors")
    template = root / "template"
    template.mkdir()
    build_inputs(template)
    jobs, before = [], {}
    for cid, argv, _ in (_case_values(c) for c in CASES):
        workdir = root / cid
        shutil.copytree(template, workdir)
        before[cid] = file_hashes(workdir)
        jobs.append({"id": cid, "argv": argv, "cwd": str(workdir),
                     "stdout": str(root / f"{cid}.stdout"), "stderr": str(root / f"{cid}.stderr")})
    (root / "jobs.json").write_text(json.dumps(jobs))
    server = subprocess.run([sys.executable, "-c", FORK_SERVER, root / "jobs.json", root / "codes.json", "2"],
                            capture_output=True, text=True, env=ENV, timeout=600)
    assert server.returncode == 0, server.stderr
    codes = json.loads((root / "codes.json").read_text())
    return {job["id"]: {"returncode": codes[job["id"]], "stdout": Path(job["stdout"]).read_text(),
                        "stderr": Path(job["stderr"]).read_text(), "before": before[job["id"]],
                        "after": file_hashes(Path(job["cwd"]))} for job in jobs}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the case runner forks")
@pytest.mark.parametrize("case_id,argv,fragment", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_input_gets_one_line_and_exit_code_2(outcomes, case_id, argv, fragment):
    out = outcomes[case_id]
    lines = [line for line in out["stderr"].splitlines() if line.strip()]
    assert out["returncode"] == 2, f"exit {out['returncode']}\nstderr:\n{out['stderr']}"
    assert "Traceback" not in out["stderr"] + out["stdout"]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{out['stderr']}"
    assert lines[0].startswith("rnnkit: error: "), lines[0]
    assert fragment in lines[0], lines[0]
    changed = {p for p, h in out["before"].items() if out["after"].get(p) != h}
    assert not changed, f"files changed or removed: {sorted(changed)}"


def test_debug_shows_the_traceback(tmp_path):
    for argv in (["--debug", "train", "missing.txt"], ["train", "missing.txt", "--debug"]):
        proc = subprocess.run([sys.executable, "-m", "rnnkit", *argv], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=300)
        assert proc.returncode != 0
        assert "Traceback" in proc.stderr and "InputFileError: missing.txt: no such file" in proc.stderr


def test_force_replaces_an_existing_output(tmp_path):
    """The refusal is not a dead end: --force does what it says."""
    from rnnkit.text.corpus import preprocess

    (tmp_path / "t.txt").write_text(corpus_text()[:2000])
    (tmp_path / "notes.json").write_text('{"my": "data"}')
    argv = ["preprocess", "--input_txt", "t.txt", "--output_h5", "c.h5", "--output_json", "notes.json", "--quiet", "--force"]
    proc = subprocess.run([sys.executable, "-m", "rnnkit", *argv], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "idx_to_token" in json.loads((tmp_path / "notes.json").read_text())
    # an earlier preprocess output is replaced without --force, as torch-rnn's preprocess does:
    # it can be made again from the text, so nothing of the user's is lost
    (tmp_path / "t.txt").write_text("a different text\n" * 20)
    preprocess(input_txt=[str(tmp_path / "t.txt")], output_h5=str(tmp_path / "c.h5"), output_json=str(tmp_path / "notes.json"), quiet=True)
    assert len(json.loads((tmp_path / "notes.json").read_text())["idx_to_token"]) < 20


def _train_on(cwd: Path, h5: str, js: str) -> subprocess.CompletedProcess:
    from conftest import run_cli

    return run_cli("train", "--input_h5", h5, "--input_json", js, "--checkpoint_name", "out/ck", "--quiet", *TRAIN, cwd=cwd)


def _stderr_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _write_torch_rnn_pair(folder: Path, text: str, token_to_idx: dict[str, int] | None = None) -> None:
    """An HDF5/JSON pair as torch-rnn's scripts/preprocess.py writes it: no rnnkit keys."""
    import numpy as np

    token_to_idx = dict(token_to_idx or {})
    for ch in text:
        token_to_idx.setdefault(ch, len(token_to_idx) + 1)
    ids = np.array([token_to_idx[c] for c in text], dtype=np.uint8)
    n = len(ids) // 10
    with h5py.File(folder / "t.h5", "w") as f:
        f.create_dataset("train", data=ids[: 8 * n])
        f.create_dataset("val", data=ids[8 * n: 9 * n])
        f.create_dataset("test", data=ids[9 * n:])
    (folder / "t.json").write_text(json.dumps({"token_to_idx": token_to_idx, "idx_to_token": {v: k for k, v in token_to_idx.items()}}))


def test_pair_from_different_preprocess_runs_is_refused(tmp_path):
    """B's alphabet is a superset of A's, so every id of A.h5 is in B.json: only the fingerprint tells."""
    from rnnkit.text.corpus import preprocess

    (tmp_path / "A.txt").write_text("abc def\n" * 400)
    (tmp_path / "B.txt").write_text("abc xyz def ghi\n" * 400)
    for name in ("A", "B"):
        preprocess(input_txt=[str(tmp_path / f"{name}.txt")], output_h5=str(tmp_path / f"{name}.h5"),
                   output_json=str(tmp_path / f"{name}.json"), quiet=True)
    proc = _train_on(tmp_path, "A.h5", "B.json")
    lines = _stderr_lines(proc)
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), proc.stderr
    assert "A.h5 and B.json come from different preprocess runs" in lines[0]
    assert not (tmp_path / "out").exists()  # no run folder, no checkpoint
    proc = _train_on(tmp_path, "A.h5", "A.json")
    assert proc.returncode == 0, proc.stderr
    assert "fingerprint" not in proc.stderr
    assert (tmp_path / "out/ck_2.json").exists()


def test_torch_rnn_pair_trains_with_a_note(tmp_path):
    _write_torch_rnn_pair(tmp_path, "abc def\n" * 400)
    proc = _train_on(tmp_path, "t.h5", "t.json")
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in _stderr_lines(proc) if "fingerprint" in line]
    assert notes == ["note: t.h5 and t.json carry no fingerprint (written by torch-rnn?); "
                     "rnnkit checked only that every id is in the vocabulary"]
    assert (tmp_path / "out/ck_2.json").exists()


def test_torch_rnn_pair_still_gets_the_id_check(tmp_path):
    _write_torch_rnn_pair(tmp_path, "abc def\n" * 400, token_to_idx={"x": 1, "y": 2, "z": 3})
    vocab = json.loads((tmp_path / "t.json").read_text())
    (tmp_path / "small.json").write_text(json.dumps({k: dict(list(v.items())[:4]) for k, v in vocab.items()}))
    proc = _train_on(tmp_path, "t.h5", "small.json")
    assert proc.returncode == 2, proc.stderr
    assert "different corpora" in _stderr_lines(proc)[-1]
    assert not (tmp_path / "out/ck_2.json").exists()
