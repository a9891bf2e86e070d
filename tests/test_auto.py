"""`auto`: sizes chosen from the corpus, the budget and this machine's measured speed; flags
typed by hand win; without a budget torch-rnn's defaults stay."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

from rnnkit.cli import build_parser
from rnnkit.core.device import cpu_bf16_rnn_failure, cpu_has_bf16_math
from rnnkit.cli.lm import train_config_from_args
from rnnkit.runs.metrics import read_metrics
from rnnkit.training import TrainConfig, auto, probe
from rnnkit.training.auto import Prober, choose, resolve_auto

# Training characters/s of 2-layer LSTMs measured on a 2-core Zen 5 with two threads (the
# table `auto` used before it measured); smaller shapes are faster still.
MEASURED = {128: 89_000, 192: 59_000, 256: 42_000, 384: 24_000, 512: 15_000, 640: 9_000, 768: 6_600, 1024: 3_800}


def zen5(layers: int, width: int) -> float:
    return MEASURED.get(width, 150_000) if layers == 2 else 200_000


def slower(factor: float):
    return lambda layers, width: zen5(layers, width) / factor


def test_a_budget_follows_the_measured_speed():
    short = choose(1_000_000, 100.0, 65, zen5)  # 100 s on a tinyshakespeare-sized corpus
    assert (short["num_layers"], short["rnn_size"], short["batch_size"], short["learning_rate"], short["dropout"]) == (2, 256, 12, 5e-3, 0.0)
    long = choose(1_000_000, 900.0, 65, zen5)  # 15 minutes go over the corpus ~8 times
    assert (long["rnn_size"], long["dropout"], long["weight_decay"]) == (640, 0.3, 0.1)
    assert choose(80_000, 3600.0, 65, zen5)["rnn_size"] <= 128  # a small corpus caps the network
    assert choose(50_000_000, 900.0, 65, zen5)["dropout"] == 0.0  # a large one is not repeated
    assert "budget" in short["reason"] and "passes" in short["reason"]


def test_a_slower_machine_gets_a_smaller_network_and_a_faster_one_a_larger():
    sizes = [choose(1_000_000, 100.0, 65, slower(f))["rnn_size"] for f in (5.0, 1.0, 0.25)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_a_large_vocabulary_counts_its_output_layer():
    # the same speed, but 5,000 symbols: the output layer's weights count against the data
    assert choose(300_000, 600.0, 5000, zen5)["rnn_size"] < choose(300_000, 600.0, 65, zen5)["rnn_size"]


def test_a_tiny_list_gets_a_tiny_network_with_dropout_and_early_stopping():
    tiny = choose(3_200, 120.0, 30, zen5)  # ~500 short names
    assert tiny["num_layers"] == 1 and tiny["rnn_size"] <= 48
    assert tiny["dropout"] == 0.5 and tiny["early_stopping"] == auto.PATIENCE
    assert tiny["checkpoint_every"] == auto.EVAL_PASSES * max(1, 3_200 // (tiny["batch_size"] * tiny["seq_length"]))
    assert auto.network_weights(tiny["num_layers"], tiny["rnn_size"], 30) <= auto.WEIGHTS_PER_CHAR * 3_200


def test_shapes_are_measured_small_to_large_and_only_until_one_does_not_fit():
    measured = []

    def speed(layers, width):
        measured.append((layers, width))
        return zen5(layers, width)

    choose(1_000_000, 100.0, 65, speed)
    assert measured == list(auto.SHAPES[: auto.SHAPES.index((2, 384)) + 1])  # 2x384 is the first too large


def test_the_probe_measures_with_the_runs_precision(monkeypatch):
    seen = []
    monkeypatch.setattr(probe, "measure", lambda layers, width, v, m, device, dtype: seen.append(dtype) or 1e5)
    cfg = TrainConfig(time_budget=60.0, device="cpu", threads=1)
    Prober(cfg, 65, torch.device("cpu"), torch.bfloat16)(2, 128)
    Prober(cfg, 65, torch.device("cpu"), None)(2, 128)
    assert seen == [torch.bfloat16, None]  # bf16's speed counts only when the run trains in bf16


def test_threads_are_chosen_by_measurement(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    rates = iter([10_000.0, 30_000.0])  # with 2 threads, then 1: another process holds a core
    monkeypatch.setattr(probe, "measure", lambda *args: next(rates))
    threads, note = probe.pick_threads(65, "lstm", 128, None)
    assert threads == 1 and "measured faster than 2" in note


def test_flags_not_typed_mean_auto_under_a_budget_and_typed_ones_win():
    parser = build_parser()
    cfg = train_config_from_args(parser.parse_args(["train", "t.txt", "--time_budget", "2m", "--rnn_size", "32"]))
    assert cfg.rnn_size == 32 and cfg.time_budget == 120.0
    assert set(cfg.pending_auto()) == set(auto.AUTO_FIELDS) - {"rnn_size"}
    plain = train_config_from_args(parser.parse_args(["train", "t.txt"]))  # no budget: torch-rnn's defaults
    assert plain.pending_auto() == () and (plain.rnn_size, plain.batch_size, plain.learning_rate) == (128, 50, 2e-3)


def test_explicit_values_are_kept_and_nothing_recorded():
    cfg = TrainConfig(rnn_size=64, num_layers=2, batch_size=10, seq_length=20, learning_rate=0.01, time_budget=5.0)
    assert resolve_auto(cfg) is cfg and cfg.auto_choice == {}


def test_an_impossible_auto_value_is_a_one_line_error():
    from rnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="give a number or auto"):
        TrainConfig(rnn_size="big")


def test_auto_choice_is_recorded_in_config_json(tmp_path, small_corpus):
    r = run_cli("train", small_corpus, "--checkpoint_name", tmp_path / "run/checkpoint", "--rnn_size", "auto",
                "--num_layers", "auto", "--batch_size", "auto", "--seq_length", "auto", "--learning_rate", "auto", "--dropout", "auto",
                "--weight_decay", "auto", "--wordvec_size", "8", "--max_iters", "2", "--progress", "none")
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "run/config.json").read_text())
    choice = config["auto_choice"]
    typed_auto = {"rnn_size", "num_layers", "batch_size", "seq_length", "learning_rate", "dropout", "weight_decay"}
    assert set(choice) == typed_auto | {"reason"}
    assert "rule of thumb" in choice["reason"]  # no budget: torch-rnn's
    for key in typed_auto:
        assert config[key] == choice[key]
    assert "auto:" in r.stderr  # the choice is also shown


def test_a_budget_alone_measures_this_machine_and_counts_the_probe(tmp_path):
    (tmp_path / "names.txt").write_text("\n".join(f"{a}{b}a" for a in "bcdfgklmnprst" for b in "aeiou") * 8 + "\n")
    r = run_cli("train", tmp_path / "names.txt", "--checkpoint_name", tmp_path / "run/ck", "--time_budget", "8s",
                "--progress", "none")
    assert r.returncode == 0, r.stderr
    config = json.loads((tmp_path / "run/config.json").read_text())
    choice = config["auto_choice"]
    assert set(choice) - {"amp", "threads", "threads_tried"} == set(auto.AUTO_FIELDS) | {"reason", "probe_seconds"}
    assert 0 < choice["probe_seconds"] < 8
    bf16_here = cpu_has_bf16_math() and cpu_bf16_rnn_failure("lstm") is None
    assert choice.get("amp") == ("bf16" if bf16_here else None)  # --amp auto on a CPU: bf16 where it can train in it
    assert config["amp"] == ("bf16" if bf16_here else "auto")
    first = read_metrics(tmp_path / "run")[0]
    assert first["time"] >= choice["probe_seconds"]  # the probe's time counts in the budget
    assert config["num_layers"] == 1  # ~500 characters: a small network


def test_thread_watch_switches_when_steps_slow_down_and_back_when_they_recover(monkeypatch):
    from rnnkit.training import threads

    counts = [2]
    monkeypatch.setattr(torch, "set_num_threads", lambda n: counts.append(n))
    monkeypatch.setattr(torch, "get_num_threads", lambda: counts[-1])
    clock = [0.0]
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])
    notes = []
    watch = threads.ThreadWatch(2, notes.append)

    def run_window(ms_by_count: dict[int, float]) -> None:
        for _ in range(threads.WINDOW + 1):  # +1: the first step after a switch is not timed
            clock[0] += ms_by_count[counts[-1]] / 1e3
            watch.step_done()

    run_window({2: 10, 1: 15})  # idle: two threads set the baseline
    run_window({2: 40, 1: 15})  # another process takes a core: two threads are 4x slower
    assert counts[-1] == 1  # tried one thread for a window ...
    run_window({2: 40, 1: 15})
    assert counts[-1] == 1 and "faster on 1 thread(s)" in notes[-1]  # ... and kept it
    for _ in range(threads.RECHECK_EVERY):  # the machine is idle again: a routine recheck finds out
        run_window({2: 8, 1: 15})
    assert counts[-1] == 2 and len(notes) == 2


def test_dropout_watch_raises_dropout_when_the_measured_speed_projects_more_passes():
    from rnnkit.training.dropout_watch import DropoutWatch

    watch = DropoutWatch(budget=160, train_tokens=1000, dropout=0.0)
    watch.start(0, 0)
    assert not watch.due(5) and watch.due(10)  # every 1/16 of the budget
    assert watch.check(10, 300) is None  # 30 tokens/s: 4.8 passes, still none
    assert watch.check(20, 800) == 0.3 and watch.projected_passes == pytest.approx(7.8)  # faster now: 7.8 passes
    assert watch.check(30, 1100) is None  # slower again: dropout is never lowered
    assert watch.dropout == 0.3
    assert watch.check(40, 5100) == 0.5  # 400 tokens/s: 53 passes
    assert not watch.due(90)  # past half the budget it no longer looks


def test_a_run_faster_than_its_probe_gets_the_dropout_of_the_passes_it_makes(monkeypatch, tmp_path):
    """The probe is made to report a speed far below the real one (as when a core was busy
    while it measured): auto picks no dropout; training measures the truth and raises it."""
    from rnnkit.training import train

    monkeypatch.setattr(probe, "measure", lambda *args: 50.0)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # this process's threads stay as they are
    text = tmp_path / "names.txt"
    text.write_text("\n".join(f"{a}{b}{c}a" for a in "bcdfgklmnprst" for b in "aeiou" for c in "lnrs") + "\n")
    args = build_parser().parse_args(["train", str(text), "--checkpoint_name", str(tmp_path / "run/ck"),
                                      "--time_budget", "6s", "--progress", "none", "--ngram", "0"])
    result = train(train_config_from_args(args))
    config = json.loads((tmp_path / "run/config.json").read_text())
    assert config["auto_choice"]["dropout"] == 0.0  # the probe's few passes
    raised = [r for r in read_metrics(tmp_path / "run") if r.get("event") == "dropout"]
    assert raised and raised[-1]["dropout"] == 0.5 and raised[-1]["projected_passes"] > 50
    last = json.loads(result.checkpoint.read_text())
    assert last["model"]["dropout"] == 0.5  # checkpoints record the dropout the weights were trained with


def test_a_typed_dropout_is_never_changed(monkeypatch, tmp_path):
    from rnnkit.training import train

    monkeypatch.setattr(probe, "measure", lambda *args: 50.0)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # this process's threads stay as they are
    text = tmp_path / "names.txt"
    text.write_text("\n".join(f"{a}{b}a" for a in "bcdfgklmnprst" for b in "aeiou") * 4 + "\n")
    args = build_parser().parse_args(["train", str(text), "--checkpoint_name", str(tmp_path / "run/ck"),
                                      "--time_budget", "3s", "--progress", "none", "--ngram", "0", "--dropout", "0"])
    result = train(train_config_from_args(args))
    assert not [r for r in read_metrics(tmp_path / "run") if r.get("event") == "dropout"]
    assert json.loads(result.checkpoint.read_text())["model"]["dropout"] == 0.0


def test_a_fine_tune_under_a_budget_keeps_the_checkpoints_shape():
    cfg = train_config_from_args(build_parser().parse_args(["train", "t.txt", "--time_budget", "1m", "--finetune", "cv/ck.json"]))
    assert "rnn_size" not in cfg.pending_auto() and "num_layers" not in cfg.pending_auto()
    assert "learning_rate" in cfg.pending_auto()


def test_a_shape_already_decided_is_the_only_one_measured():
    measured = []

    def speed(layers, width):
        measured.append((layers, width))
        return zen5(layers, width)

    typed = choose(1_000_000, 100.0, 65, speed, shape=(2, 512))
    assert measured == [(2, 512)] and (typed["num_layers"], typed["rnn_size"]) == (2, 512)
    assert typed["batch_size"] == 12  # 100 s x 15k characters/s: the batch still follows the budget
    cfg = TrainConfig(time_budget=60.0, rnn_size=64, num_layers=1, batch_size="auto")
    assert auto.decided_shape(cfg) == (1, 64)
    assert auto.decided_shape(TrainConfig(time_budget=60.0, rnn_size="auto")) is None


def test_evaluations_read_a_share_of_the_budget_not_a_huge_validation_split():
    # 9,500 symbols at 5,000 characters/s: an evaluation of a 6M-token split would outlast the budget
    big = choose(48_000_000, 120.0, 9_500, lambda layers, width: 5_000.0)
    assert big["eval_tokens"] == auto.MIN_EVAL_TOKENS
    fast = choose(1_000_000, 600.0, 65, zen5)
    rate = zen5(fast["num_layers"], fast["rnn_size"])
    assert fast["eval_tokens"] == int(auto.EVAL_SHARE * 600.0 * rate * auto.FORWARD_SPEEDUP)
    assert "validation tokens" in fast["reason"]
    assert auto.choose_without_budget(1_000_000)["eval_tokens"] is None  # torch-rnn: the whole split


def test_eval_tokens_cuts_what_each_evaluation_reads(tmp_path, small_corpus):
    from rnnkit.training import train

    result = train(TrainConfig(input_txt=[str(small_corpus)], checkpoint_name=str(tmp_path / "run/ck"), max_iters=3,
                               rnn_size=16, wordvec_size=8, batch_size=4, seq_length=16, eval_tokens=300,
                               progress="none", quiet=True))
    import h5py
    import torch.nn.functional as F

    from rnnkit.core.checkpoint import load_checkpoint
    from rnnkit.model.language_model import model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(result.checkpoint)).eval()
    with h5py.File(tmp_path / "run/corpus.h5") as f:
        val = torch.from_numpy(f["val"][:300].astype("int64"))
    lane = (len(val) - 1) // 4 // 16 * 16  # 4 lanes of whole 16-token batches, as the trainer cuts them
    x = val[: 4 * ((len(val) - 1) // 4)].view(4, -1)[:, :lane]
    y = val[1: 4 * ((len(val) - 1) // 4) + 1].view(4, -1)[:, :lane]
    with torch.no_grad():
        logits, _ = model(x)
    expected = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1) - 1).item()
    assert result.best_val_loss == pytest.approx(expected, rel=1e-5)


def test_eval_tokens_must_be_sensible():
    with pytest.raises(Exception, match="--eval_tokens must be 2 or more"):
        TrainConfig(input_h5="x.h5", input_json="x.json", eval_tokens=1)


def test_bf16_on_a_cpu_is_auto_only_where_it_can_train(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr("rnnkit.core.device.cpu_has_bf16_math", lambda: True)
    monkeypatch.setattr("rnnkit.core.device.cpu_bf16_rnn_failure", lambda model_type: None)
    config = TrainConfig(input_h5="x.h5", input_json="x.json", time_budget=60.0)
    assert auto.cpu_amp(config, cpu) == "bf16"
    assert auto.cpu_amp(TrainConfig(input_h5="x.h5", input_json="x.json", time_budget=60.0, amp="off"), cpu) == "off"
    monkeypatch.setattr("rnnkit.core.device.cpu_bf16_rnn_failure", lambda model_type: "no bf16 LSTM primitive")
    assert auto.cpu_amp(config, cpu) == "auto"  # the probe fails: float32
    monkeypatch.setattr("rnnkit.core.device.cpu_has_bf16_math", lambda: False)
    assert auto.cpu_amp(config, cpu) == "auto"
