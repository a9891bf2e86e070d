"""torchrun over loopback: a restarted worker group carries on from the newest intact checkpoint,
and two nodes on one machine train what one process does.

Through torchrun (2 CPU processes, gloo, loopback only): the same run twice, once left alone and
once with worker rank 1 SIGKILLed from outside after the second checkpoint; torchrun restarts the
group, which resumes as `--resume RUN_DIR` would, and ends with the same weights bit for bit.
Two torchrun agents with one process each (--nnodes 2, c10d rendezvous on 127.0.0.1) follow the
loss curve of one process with both their lanes. In process, with torchrun's environment variables
set by hand: what a restart does with a folder its first start refused, with only damaged
checkpoints, and what the first start does.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from conftest import corpus_text

from rnnkit.core.checkpoint import load_checkpoint
from rnnkit.errors import OutputExistsError
from rnnkit.runs.metrics import read_metrics
from rnnkit.sampling.generator import Generator
from rnnkit.training import TrainConfig, train

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through /proc (Linux)")

MAX_ITERS, EVERY = 60, 10
KILL_AFTER = f"ck_{2 * EVERY}.json"  # a checkpoint past the first
FLAGS = ("--rnn_size", "32", "--wordvec_size", "16", "--num_layers", "1", "--batch_size", "4", "--seq_length", "32",
         "--dropout", "0.1", "--seed", "7", "--max_iters", str(MAX_ITERS), "--checkpoint_every", str(EVERY),
         "--print_every", "1", "--progress", "none", "--threads", "1", "--device", "cpu")
TIMEOUT = 180  # seconds for a whole launch, restart included
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", GLOO_SOCKET_IFNAME="lo")  # gloo over loopback


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(*args: str, nnodes: int = 1, nproc: int = 2, max_restarts: int = 0, host: bool = True,
                     port: int, run_id: str) -> list[str]:
    """torchrun with a c10d rendezvous on 127.0.0.1 (host: this agent serves the rendezvous store)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--nproc-per-node", str(nproc),
            "--max-restarts", str(max_restarts), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
            "--rdzv-id", run_id, "--rdzv-conf", f"is_host={int(host)}", "--local-addr", "127.0.0.1",
            "--monitor-interval", "0.1", "-m", "rnnkit", "train", *args]


def start(command: list[str], cwd: Path, log: str) -> subprocess.Popen:
    env = {k: v for k, v in ENV.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK") and not k.startswith("TORCHELASTIC_")}
    with open(cwd / log, "w") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:  # the thread or process is gone
            pass
    return kids


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        found += kids
        todo += kids
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """The agent and every worker (torchrun starts each in its own session) of a launch we started."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()


def finish(procs: list[subprocess.Popen], deadline: float) -> None:
    """Wait for every launch; on a hang, kill them all and fail."""
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        for p in procs:
            kill_tree(p)
        pytest.fail("torchrun did not finish in time")


def worker_of_rank(agent: int, rank: int) -> int | None:
    for pid in children(agent):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"RANK={rank}".encode() in env:
            return pid
    return None


def kill_rank_after(agent: subprocess.Popen, marker: Path, rank: int, deadline: float) -> None:
    """SIGKILL worker `rank` as soon as `marker` exists (polled every 10 ms)."""
    while not marker.exists():
        if agent.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the run ended or hung before writing {marker.name}")
        time.sleep(0.01)
    pid = worker_of_rank(agent.pid, rank)
    assert pid is not None, "no worker of that rank under the torchrun agent"
    os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def elastic(tmp_path_factory):
    """`whole` left alone and `killed` (rank 1 SIGKILLed after KILL_AFTER), side by side."""
    root = tmp_path_factory.mktemp("elastic")
    (root / "small.txt").write_text(corpus_text()[:30_000], encoding="utf-8")
    procs = {}
    for run in ("whole", "killed"):
        command = torchrun_command("small.txt", "--checkpoint_name", f"{run}/ck", *FLAGS, max_restarts=1,
                                   port=free_port(), run_id=f"{run}-{uuid.uuid4().hex}")
        procs[run] = start(command, root, f"{run}.log")
    deadline = time.monotonic() + TIMEOUT
    try:
        kill_rank_after(procs["killed"], root / "killed" / KILL_AFTER, 1, deadline)
    except BaseException:
        for p in procs.values():
            kill_tree(p)
        raise
    finish(list(procs.values()), deadline)
    logs = {run: (root / f"{run}.log").read_text() for run in procs}
    for run, p in procs.items():
        assert p.returncode == 0, f"{run}: exit {p.returncode}\n{logs[run][-3000:]}"
    return root, logs


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    t = load_checkpoint(run_dir / f"ck_{MAX_ITERS}.json").tensors
    return {k: v for k, v in t.items() if k.startswith(("model.", "optim."))}


def losses(run_dir: Path) -> list[tuple]:
    return [(r["iteration"], r.get("train_loss"), r.get("val_loss")) for r in read_metrics(run_dir) if "event" not in r]


def test_a_killed_worker_is_restarted_from_the_newest_checkpoint(elastic):
    _, logs = elastic
    said = re.findall(r"restart (\d+) of torchrun: resuming from killed/ck_(\d+)\.json\n", logs["killed"])
    assert len(said) == 1, logs["killed"][-3000:]  # one line, from rank 0
    count, resumed_at = map(int, said[0])
    assert count == 1 and 2 * EVERY <= resumed_at < MAX_ITERS  # killed mid-run, after the second checkpoint
    assert "restart" not in logs["whole"]


def test_the_restarted_run_ends_bit_identical(elastic):
    root, _ = elastic
    whole, killed = final_state(root / "whole"), final_state(root / "killed")
    assert whole.keys() == killed.keys()
    assert [k for k in whole if not torch.equal(whole[k], killed[k])] == []
    assert losses(root / "killed") == losses(root / "whole")  # no gap, no repeat, the same numbers


def test_the_final_checkpoint_loads_and_samples(elastic):
    root, _ = elastic
    ckpt = load_checkpoint(root / "killed" / f"ck_{MAX_ITERS}.json")
    assert ckpt.meta["iteration"] == MAX_ITERS
    gen = Generator.load(root / "killed" / f"ck_{MAX_ITERS}.json", device="cpu")
    text = gen.generate(length=40, start_text="def ", seed=1)[0]
    assert text.startswith("def ") and len(text) > 4


# ---- two nodes on one machine: two torchrun agents, one process each, over loopback ----------
B = 4  # lanes per process
TOLERANCE = 1e-4  # relative, as test_distributed.py: the same sums in another order
NODE_MODEL = {"rnn_size": 32, "wordvec_size": 16, "num_layers": 2, "seq_length": 32, "dropout": 0.0, "seed": 7,
              "threads": 1, "device": "cpu"}
NODE_FLAGS = [x for k, v in NODE_MODEL.items() for x in (f"--{k}", str(v))]


def curve(run_dir: Path, key: str) -> dict[int, float]:
    return {r["iteration"]: r[key] for r in read_metrics(run_dir) if r.get(key) is not None}


def test_two_nodes_follow_the_one_process_curve(tmp_path):
    (tmp_path / "small.txt").write_text(corpus_text()[:30_000], encoding="utf-8")
    port, run_id = free_port(), f"nodes-{uuid.uuid4().hex}"
    flags = ["small.txt", "--checkpoint_name", "nodes/ck", "--batch_size", str(B), "--max_iters", "20",
             "--checkpoint_every", "10", "--print_every", "1", "--progress", "none", *NODE_FLAGS]
    agents = [start(torchrun_command(*flags, nnodes=2, nproc=1, host=node == 0, port=port, run_id=run_id), tmp_path, f"node{node}.log")
              for node in (0, 1)]
    finish(agents, time.monotonic() + TIMEOUT)
    for node, agent in enumerate(agents):
        assert agent.returncode == 0, (tmp_path / f"node{node}.log").read_text()[-3000:]
    train(TrainConfig(input_txt=[str(tmp_path / "small.txt")], checkpoint_name=str(tmp_path / "one/ck"), batch_size=2 * B,
                      max_iters=20, checkpoint_every=10, progress="none", quiet=True, **NODE_MODEL))
    for key, iterations in (("train_loss", range(1, 21)), ("val_loss", (10, 20))):
        two, one = curve(tmp_path / "nodes", key), curve(tmp_path / "one", key)
        assert sorted(two) == sorted(one) and set(iterations) <= set(one)
        for i in one:
            assert abs(two[i] - one[i]) <= TOLERANCE * abs(one[i]), f"{key} at iteration {i}: {two[i]} vs {one[i]}"


# ---- a restart in process: torchrun's environment set by hand --------------------------------
SMALL = {"rnn_size": 16, "wordvec_size": 8, "num_layers": 1, "batch_size": 4, "seq_length": 16, "checkpoint_every": 3,
         "progress": "none", "quiet": True, "threads": 1, "seed": 7, "device": "cpu"}


def as_torchrun(monkeypatch, restart: int, run_id: str = "launch-1") -> None:
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", str(restart))
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", run_id)


def small_config(tmp_path: Path, corpus: Path, max_iters: int, **extra) -> TrainConfig:
    return TrainConfig(input_txt=[str(corpus)], checkpoint_name=str(tmp_path / "run" / "ck"), max_iters=max_iters,
                       **{**SMALL, **extra})


def test_a_restart_resumes_exactly_like_resume(tmp_path, small_corpus, monkeypatch, capsys):
    whole = train(small_config(tmp_path / "whole", small_corpus, 12))
    as_torchrun(monkeypatch, 0)
    train(small_config(tmp_path, small_corpus, 7))  # stands for a first start killed after ck_6
    (tmp_path / "run" / "ck_7.json").unlink()  # the kill came before ck_7
    capsys.readouterr()
    as_torchrun(monkeypatch, 1)
    resumed = train(small_config(tmp_path, small_corpus, 12))
    assert capsys.readouterr().err.splitlines() == [f"restart 1 of torchrun: resuming from {tmp_path / 'run' / 'ck_6.json'}"]
    a, b = (load_checkpoint(r.checkpoint).tensors for r in (whole, resumed))
    assert [k for k in a if k.startswith(("model.", "optim.")) and not torch.equal(a[k], b[k])] == []


def test_a_restart_keeps_the_runs_own_auto_choices(tmp_path, small_corpus, monkeypatch):
    from rnnkit.training import prepare_run

    as_torchrun(monkeypatch, 0)
    first = load_checkpoint(train(small_config(tmp_path, small_corpus, 3, rnn_size="auto")).checkpoint).meta["options"]
    as_torchrun(monkeypatch, 1)
    cfg = prepare_run(small_config(tmp_path, small_corpus, 6, rnn_size="auto"))  # not measured again: as --resume
    assert cfg.init_from.endswith("ck_3.json") and cfg.pending_auto() == ()
    assert (cfg.rnn_size, cfg.auto_choice) == (first["rnn_size"], first["auto_choice"])


def test_a_restart_after_a_refused_first_start_refuses_again(tmp_path, small_corpus, monkeypatch, capsys):
    train(small_config(tmp_path, small_corpus, 6))  # an earlier run's checkpoints
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.name.startswith("ck_")}
    for restart in (0, 1):  # the first start refuses the folder (no --force), so torchrun restarts it
        as_torchrun(monkeypatch, restart)
        with pytest.raises(OutputExistsError, match="already holds checkpoints"):
            train(small_config(tmp_path, small_corpus, 9))
    assert "restart" not in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.name.startswith("ck_")} == before


def test_a_restart_of_another_launch_changes_nothing(tmp_path, small_corpus, monkeypatch):
    as_torchrun(monkeypatch, 0, "launch-1")
    train(small_config(tmp_path, small_corpus, 6))
    as_torchrun(monkeypatch, 1, "launch-2")  # its first start failed before it took the folder
    with pytest.raises(OutputExistsError):
        train(small_config(tmp_path, small_corpus, 9))


def test_a_restart_with_no_intact_checkpoint_starts_over(tmp_path, small_corpus, monkeypatch, capsys):
    as_torchrun(monkeypatch, 0)
    train(small_config(tmp_path, small_corpus, 3))
    run = tmp_path / "run"
    (run / "ck_3.safetensors").write_bytes(b"truncated")
    capsys.readouterr()
    as_torchrun(monkeypatch, 1)
    result = train(small_config(tmp_path, small_corpus, 6))
    assert capsys.readouterr().err.splitlines() == [f"restart 1 of torchrun: no intact checkpoint in {run}; starting the run over"]
    assert result.iteration == 6 and (run / "ck_3.safetensors.damaged").read_bytes() == b"truncated"
    assert [r["iteration"] for r in read_metrics(run) if "train_loss" in r] == list(range(1, 7))
    assert load_checkpoint(run / "ck_3.json").meta["iteration"] == 3  # written anew


def test_the_first_start_still_needs_force(tmp_path, small_corpus, monkeypatch):
    train(small_config(tmp_path, small_corpus, 3))
    as_torchrun(monkeypatch, 0)
    with pytest.raises(OutputExistsError):
        train(small_config(tmp_path, small_corpus, 6))
    assert train(small_config(tmp_path, small_corpus, 6, force=True)).iteration == 6
