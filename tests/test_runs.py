"""The run folder (metrics.jsonl, loss.png, TensorBoard), early stopping and the best
checkpoint, `rnnkit compare` and `rnnkit sweep`, on tiny runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import corpus_text, run_cli

from rnnkit.cli.parser import main
from rnnkit.core.checkpoint import read_meta, resolve_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.runs.compare import compare_runs, differing_options, format_table
from rnnkit.runs.metrics import MetricsLog, read_metrics
from rnnkit.runs.plots import draw_run, loss_series, plot_run
from rnnkit.training import TrainConfig, train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(rnn_size=32, num_layers=1, wordvec_size=16, batch_size=8, seq_length=32, threads=1, progress="none", quiet=True)
TINY_FLAGS = ["--rnn_size", "16", "--num_layers", "1", "--wordvec_size", "16", "--batch_size", "4",
              "--seq_length", "16", "--threads", "1", "--progress", "none"]


def _text(folder: Path, chars: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "text.txt"
    path.write_text(corpus_text()[:chars], encoding="utf-8")
    return path


def _progress(records):
    return [r for r in records if "train_loss" in r]


def _evals(records):
    return [r for r in records if "val_loss" in r]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """30 iterations, a progress record every 3 and an evaluation every 10."""
    root = tmp_path_factory.mktemp("trained")
    result = train(TrainConfig(input_txt=[str(_text(root, 20_000))], checkpoint_name=str(root / "run" / "checkpoint"),
                               max_iters=30, print_every=3, checkpoint_every=10, **TINY))
    return root / "run", result


def _train_until_it_stops(root: Path, **settings):
    """3,000 characters at a high learning rate: validation loss soon stops improving."""
    cfg = dict(TINY, rnn_size=64, batch_size=4, learning_rate=0.03, checkpoint_every=10, early_stopping=2)
    result = train(TrainConfig(input_txt=[str(_text(root, 3_000))], checkpoint_name=str(root / "run" / "checkpoint"),
                               **{**cfg, **settings}))
    return root / "run", result


@pytest.fixture(scope="module")
def stopped_early(tmp_path_factory):
    return _train_until_it_stops(tmp_path_factory.mktemp("early"), max_iters=400, print_every=10)


@pytest.fixture(scope="module")
def plateaued(tmp_path_factory):
    """With --lr_plateau 2 and a constant learning rate (no step decay)."""
    return _train_until_it_stops(tmp_path_factory.mktemp("plateau"), max_iters=600, lr_decay_every=0, lr_plateau=2,
                                 print_every=1)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    out = root / "sweeps" / "first"
    r = run_cli("sweep", "--input", _text(root, 20_000), "--dropout", "0,0.25", "--learning_rate", "1e-3,2e-3",
                "--max_iters", "6", "--checkpoint_every", "3", "--out_dir", out, *TINY_FLAGS, cwd=root)
    return out, r


# ---- metrics.jsonl ------------------------------------------------------------------------------
def test_metrics_record_what_was_trained(trained):
    run, result = trained
    records = read_metrics(run)
    progress = _progress(records)
    assert [r["iteration"] for r in progress] == [1] + list(range(3, 31, 3))
    for r in progress:
        assert set(r) >= {"epoch", "train_loss", "lr", "tokens_per_s", "time"}
        assert r["train_loss"] > 0 and r["lr"] == pytest.approx(2e-3) and r["tokens_per_s"] > 0
    assert len({round(r["epoch"] / r["iteration"], 12) for r in progress}) == 1  # epoch = iteration / batches
    evals = _evals(records)
    assert [r["iteration"] for r in evals] == [10, 20, 30]
    assert all((run / r["checkpoint"]).is_file() for r in evals)
    iterations = [r["iteration"] for r in records]
    times = [r["time"] for r in records]
    assert iterations == sorted(iterations) and times == sorted(times)
    assert result.best_val_loss == min(r["val_loss"] for r in evals)
    assert json.loads((run / "config.json").read_text())["max_iters"] == 30


# ---- loss.png -----------------------------------------------------------------------------------
def test_loss_png_is_drawn_from_the_metrics(trained):
    run, _ = trained
    assert (run / "loss.png").read_bytes()[:8] == PNG_MAGIC
    records = read_metrics(run)
    fig = draw_run(loss_series(records), "t")
    loss_ax, lr_ax = fig.axes[:2]
    lines = {line.get_label(): line for line in loss_ax.lines}
    val = lines["validation"]
    assert list(val.get_xdata()) == [r["iteration"] for r in _evals(records)]
    assert list(val.get_ydata()) == [r["val_loss"] for r in _evals(records)]
    raw = lines["train (each logged batch)"]
    assert list(raw.get_ydata()) == [r["train_loss"] for r in _progress(records)]
    assert list(lr_ax.lines[0].get_ydata()) == [r["lr"] for r in _progress(records)]


def test_loss_png_changes_with_the_metrics(tmp_path):
    records = [{"iteration": i, "epoch": i / 50, "train_loss": 4 - i / 40, "lr": 2e-3, "tokens_per_s": 1e4, "time": i / 10}
               for i in range(1, 101)]
    records += [{"iteration": 50, "epoch": 1.0, "val_loss": 3.0}, {"iteration": 100, "epoch": 2.0, "val_loss": 2.5}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    first = plot_run(tmp_path).read_bytes()
    assert first[:8] == PNG_MAGIC
    series = loss_series(records)
    assert series.best_val == (100, 2.5)
    assert len(series.train_smoothed) == 100  # enough points to smooth
    records[-1]["val_loss"] = 3.5
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert plot_run(tmp_path).read_bytes() != first
    assert loss_series(records).best_val == (50, 3.0)


# ---- early stopping and the best checkpoint ----------------------------------------------------
def test_early_stopping_stops_when_validation_stops_improving(stopped_early):
    run, result = stopped_early
    assert result.stopped == "early_stopping"
    assert result.iteration < 400
    evals = [r["val_loss"] for r in _evals(read_metrics(run))]
    assert min(evals[-2:]) >= min(evals[:-2])  # the last two (the patience) did not improve


def test_lr_plateau_goes_back_to_the_best_checkpoint_at_a_lower_rate_before_stopping(plateaued):
    run, result = plateaued
    records = read_metrics(run)
    plateaus = [r for r in records if r.get("event") == "plateau"]
    assert [p["lr_scale"] for p in plateaus] == pytest.approx([0.3, 0.09])
    assert result.stopped == "early_stopping" and result.iteration < 600
    for p in plateaus:  # back to the best checkpoint written so far, then steps at the lower rate
        before = [r for r in _evals(records) if r["iteration"] <= p["iteration"]]
        assert p["checkpoint"] == min(before, key=lambda r: r["val_loss"])["checkpoint"]
        after = [r["lr"] for r in records if r.get("lr") is not None and r["iteration"] > p["iteration"]]
        assert after[0] == pytest.approx(0.03 * p["lr_scale"])
    last_plateau = plateaus[-1]["iteration"]
    assert len([r for r in _evals(records) if r["iteration"] > last_plateau]) >= 2  # patience again before stopping
    assert read_meta(result.checkpoint)["train_state"]["plateaus"] == 2


def test_best_checkpoint_has_the_lowest_recorded_validation_loss(stopped_early):
    run, result = stopped_early
    evals = _evals(read_metrics(run))
    best = min(evals, key=lambda r: r["val_loss"])
    assert best["iteration"] != result.iteration  # the best is not simply the last
    resolved = resolve_checkpoint(run)
    assert resolved.name == "checkpoint_best.json"
    meta = read_meta(resolved)
    assert meta["iteration"] == best["iteration"]
    assert meta["val_loss"] == pytest.approx(best["val_loss"])


def test_sample_from_run_folder_uses_the_best_checkpoint(stopped_early, capsys):
    run, _ = stopped_early
    best = min(_evals(read_metrics(run)), key=lambda r: r["val_loss"])
    args = ["--length", "60", "--seed", "7", "--device", "cpu"]
    assert main(["sample", "--checkpoint", str(run), "--verbose", "1", *args]) == 0
    out = capsys.readouterr()
    assert "checkpoint_best.json" in out.err
    assert main(["sample", "--checkpoint", str(run / best["checkpoint"]), *args]) == 0
    assert capsys.readouterr().out == out.out


# ---- TensorBoard ---------------------------------------------------------------------------------
def test_tensorboard_event_files_hold_the_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    train(TrainConfig(input_txt=[str(_text(tmp_path, 10_000))], checkpoint_name=str(run / "checkpoint"),
                      max_iters=6, print_every=2, checkpoint_every=3, tensorboard=True, **TINY))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    records = read_metrics(run)
    train_loss = events.Scalars("loss/train")
    assert [e.step for e in train_loss] == [r["iteration"] for r in _progress(records)]
    assert [e.value for e in train_loss] == pytest.approx([r["train_loss"] for r in _progress(records)])
    assert [e.step for e in events.Scalars("loss/val")] == [3, 6]
    assert {"learning_rate", "tokens_per_second", "epoch"} <= set(events.Tags()["scalars"])


def test_tensorboard_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    with pytest.raises(RnnkitError) as e:
        MetricsLog(tmp_path, tensorboard=True)
    assert "pip install tensorboard" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "metrics.jsonl").exists()


# ---- compare -------------------------------------------------------------------------------------
def _fake_run(folder: Path, config: dict, speeds: list[float], vals: list[float]) -> Path:
    folder.mkdir(parents=True)
    base = {"checkpoint_name": str(folder / "checkpoint"), "input_txt": ["a.txt"], "input_h5": str(folder / "c.h5"),
            "rnn_size": 64, "learning_rate": 2e-3, "dropout": 0.0}
    (folder / "config.json").write_text(json.dumps({**base, **config}))
    records = [{"iteration": 10 * (i + 1), "train_loss": 3.0, "lr": 1e-3, "tokens_per_s": s, "time": 5.0 * (i + 1)}
               for i, s in enumerate(speeds)]
    records += [{"iteration": 10 * (i + 1), "val_loss": v, "time": 5.0 * (i + 1)} for i, v in enumerate(vals)]
    records.sort(key=lambda r: r["iteration"])
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_compare_summarizes_each_run_and_the_flags_that_differ(tmp_path):
    a = _fake_run(tmp_path / "a", {"dropout": 0.25}, [100.0, 900.0, 1000.0, 1100.0], [3.0, 2.5, 2.7])
    b = _fake_run(tmp_path / "b", {}, [50.0, 400.0], [2.8, 2.6])
    runs = compare_runs([a, b])
    assert differing_options(runs) == ["dropout"]  # file names and folders never count as a difference
    assert (runs[0].best_val_loss, runs[0].best_iteration, runs[0].iterations) == (2.5, 20, 40)
    assert runs[0].tokens_per_s == 1000.0  # median after the warm-up record
    assert runs[0].seconds == 20.0
    table = format_table(runs)
    header, _, row_a, row_b, footer = table.splitlines()
    assert header.split() == ["run", "dropout", "best", "val", "at", "iter", "iters", "time", "tok/s"]
    assert row_a.split()[:4] == ["a", "*", "0.25", "2.5000"]
    assert row_b.split()[:3] == ["b", "0", "2.6000"]
    assert footer == "* best validation loss: a"
    assert [r.name for r in compare_runs([tmp_path])] == ["a", "b"]  # a folder of runs stands for them all


def test_compare_counts_the_same_text_as_the_same_data(tmp_path):
    shared = tmp_path / "corpus.json"
    shared.write_text(json.dumps({"rnnkit_sources": ["a.txt"]}))
    own = _fake_run(tmp_path / "own", {}, [1.0], [2.0])  # trained on a.txt, preprocessed into its folder
    swept = _fake_run(tmp_path / "swept", {"input_txt": None, "input_json": str(shared)}, [1.0], [2.0])
    assert differing_options(compare_runs([own, swept])) == []
    other = _fake_run(tmp_path / "other", {"input_txt": ["b.txt"]}, [1.0], [2.0])
    assert differing_options(compare_runs([own, other])) == ["data"]


def test_compare_cli_prints_table_and_writes_overlay(swept, tmp_path, monkeypatch, capsys):
    out, _ = swept
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    r = run_cli("compare", *runs[:2], "--out", tmp_path / "two.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "two.png").read_bytes()[:8] == PNG_MAGIC
    header = r.stdout.splitlines()[0].split()
    assert header[:2] == ["run", "learning_rate"]  # dropout is the same in the first two runs
    for run in runs[:2]:
        best = min(e["val_loss"] for e in _evals(read_metrics(run)))
        row = next(line for line in r.stdout.splitlines() if line.startswith(run.name))
        assert f"{best:.4f}" in row
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(out)]) == 0  # the sweep folder; the plot goes to ./compare.png
    assert (tmp_path / "compare.png").read_bytes()[:8] == PNG_MAGIC
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("dropout=")]) == 4


def test_compare_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


# ---- sweep -----------------------------------------------------------------------------------------
def test_sweep_trains_the_grid_and_names_the_best_run(swept):
    out, r = swept
    assert r.returncode == 0, r.stderr
    names = {"dropout=0,learning_rate=0.001", "dropout=0,learning_rate=0.002",
             "dropout=0.25,learning_rate=0.001", "dropout=0.25,learning_rate=0.002"}
    runs = {p.name: p for p in out.iterdir() if p.is_dir()}
    assert set(runs) == names
    best_val = {}
    for name, run in runs.items():
        cfg = json.loads((run / "config.json").read_text())
        assert (cfg["dropout"], cfg["learning_rate"]) == tuple(float(kv.split("=")[1]) for kv in name.split(","))
        assert cfg["input_h5"] == str(out / "corpus.h5")  # preprocessed once, shared
        assert not (run / "corpus.h5").exists()
        records = read_metrics(run)
        assert max(r["iteration"] for r in records) == 6
        best_val[name] = min(e["val_loss"] for e in _evals(records))
    best = min(best_val, key=best_val.get)
    assert f"best run: {out / best} " in r.stdout
    assert (out / "compare.png").read_bytes()[:8] == PNG_MAGIC
    table_rows = [line for line in r.stdout.splitlines() if line.startswith("dropout=")]
    assert len(table_rows) == 4


def test_sweep_checks_every_value_before_training(tmp_path, capsys):
    text = _text(tmp_path, 2_000)
    code = main(["sweep", "--input", str(text), "--dropout", "0,lots", "--max_iters", "2", "--out_dir", str(tmp_path / "s")])
    assert code == 2
    err = capsys.readouterr().err
    assert "dropout" in err and "lots" in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_sweep_refuses_to_overwrite_an_earlier_sweep(swept, capsys):
    out, _ = swept
    code = main(["sweep", "--input", "x.txt", "--dropout", "0,0.25", "--learning_rate", "1e-3,2e-3",
                 "--max_iters", "6", "--out_dir", str(out)])
    assert code == 2
    assert "--force" in capsys.readouterr().err
