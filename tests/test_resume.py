"""Exact resume: a run stopped at K and resumed ends bit for bit where the same run left alone ends.

Dropout is on, so the resumed run needs the saved RNG states; weight decay too, so it needs
the decay back on the right parameter group; K falls inside an epoch, so it needs the
carried hidden state; N is in the next epoch, past a learning-rate decay.
The controls show the comparison is sharp enough to notice a lost part. At the end: a
damaged newest checkpoint is named, left alone, and the resume continues from the one before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import corpus_text, run_cli

from rnnkit.core.checkpoint import load_checkpoint, save_checkpoint
from rnnkit.training import TrainConfig, resume_config, train

K, N = 23, 60  # 49 batches per epoch with the settings below


def config(tmp_path, run: str, max_iters: int, model_type: str, amp: str = "auto") -> TrainConfig:
    return TrainConfig(amp=amp,
        input_h5=str(tmp_path / "c.h5"), input_json=str(tmp_path / "c.json"), checkpoint_name=str(tmp_path / run / "ck"),
        model_type=model_type, rnn_size=16, wordvec_size=8, num_layers=2, dropout=0.3, weight_decay=0.1, batch_size=4, seq_length=16,
        max_iters=max_iters, lr_decay_every=1, lr_decay_factor=0.5, checkpoint_every=0, progress="none", quiet=True,
        threads=1, seed=7, device="cpu",  # bit-identical is a CPU promise
    )


@pytest.fixture
def corpus(tmp_path):
    from rnnkit.text.corpus import preprocess

    (tmp_path / "t.txt").write_text(corpus_text()[:4000])
    preprocess(input_txt=[str(tmp_path / "t.txt")], output_h5=str(tmp_path / "c.h5"), output_json=str(tmp_path / "c.json"), quiet=True)
    return tmp_path


def final_state(result) -> dict[str, torch.Tensor]:
    """Weights and optimizer state of the last checkpoint."""
    t = load_checkpoint(result.checkpoint).tensors
    return {k: v for k, v in t.items() if k.startswith(("model.", "optim."))}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"differ: {differing}"


@pytest.mark.parametrize("model_type,amp", [("lstm", "off"), ("gru", "off"), ("lstm", "bf16")])
def test_interrupted_run_ends_bit_identical(corpus, model_type, amp):
    whole = train(config(corpus, "whole", N, model_type, amp))
    part = train(config(corpus, "part", K, model_type, amp))
    assert part.iteration == K and whole.iteration == N
    assert load_checkpoint(part.checkpoint).prefixed("hidden.")  # the carried state is saved
    resumed = train(resume_config(str(corpus / "part"), {"max_iters": N}))  # what --resume RUN_DIR does
    assert resumed.iteration == N
    assert_bit_identical(final_state(whole), final_state(resumed))
    # the training loss history carries on where it stopped, with no gap and no repeats
    from rnnkit.runs.metrics import read_metrics

    iters = [r["iteration"] for r in read_metrics(corpus / "part") if "train_loss" in r]
    assert iters == list(range(1, N + 1))


@pytest.mark.parametrize("lose", ["hidden state", "torch rng state"])
def test_resume_without_a_saved_part_diverges(corpus, lose):
    """Control: with one part of the state replaced in the checkpoint, the weights differ."""
    whole = train(config(corpus, "whole", N, "lstm"))
    part = train(config(corpus, "part", K, "lstm"))
    ckpt = load_checkpoint(part.checkpoint)
    meta = {k: v for k, v in ckpt.meta.items() if not k.startswith(("format", "weights_"))}
    if lose == "hidden state":
        tensors = {k: v for k, v in ckpt.tensors.items() if not k.startswith("hidden.")}
    else:  # dropout masks drawn from another point of the stream
        tensors = dict(ckpt.tensors, **{"rng.torch": torch.Generator().manual_seed(1).get_state()})
    save_checkpoint(part.checkpoint, tensors, meta)
    resumed = train(resume_config(str(corpus / "part"), {"max_iters": N}))
    a, b = final_state(whole), final_state(resumed)
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("model."))


# ---- a damaged newest checkpoint: resume falls back to the newest intact one -----------------
def damage(run, how: str) -> None:
    weights, meta = run / "ck_9.safetensors", run / "ck_9.json"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "flipped byte in weights":
        blob = bytearray(weights.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        weights.write_bytes(bytes(blob))
    elif how == "wrong checksum":
        meta.write_text(meta.read_text().replace(load_checkpoint(meta).meta["weights_sha256"], "0" * 64))
    elif how == "truncated JSON":
        meta.write_bytes(meta.read_bytes()[:100])
    elif how == "not a checkpoint JSON":
        meta.write_text("{}")


def run_to_9(corpus):
    """ck_3, ck_6, ck_9 in corpus/run."""
    cfg = config(corpus, "run", 9, "lstm")
    cfg.checkpoint_every = 3
    train(cfg)
    return corpus / "run"


def snapshot(run, names=("ck_9.json", "ck_9.safetensors")) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in names}


@pytest.mark.parametrize("how", ["truncated weights", "flipped byte in weights", "wrong checksum", "truncated JSON", "not a checkpoint JSON"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(corpus, capsys, how):
    run = run_to_9(corpus)
    damage(run, how)
    damaged = snapshot(run)
    capsys.readouterr()
    cfg = resume_config(str(run), {"max_iters": 8})
    assert Path(cfg.init_from).name == "ck_6.json"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and "ck_9.json" in lines[0] and lines[0].endswith("ck_6.json"), lines
    resumed = train(cfg)
    assert resumed.iteration == 8 and Path(resumed.checkpoint).name == "ck_8.json"
    assert_bit_identical(final_state(train(config(corpus, "whole", 8, "lstm"))), final_state(resumed))  # from ck_6, exactly
    assert snapshot(run) == damaged  # never deleted, never written over


def test_a_resumed_run_that_reaches_the_damaged_iteration_sets_it_aside(corpus, capsys):
    run = run_to_9(corpus)
    damage(run, "truncated weights")
    damaged = snapshot(run)
    resumed = train(resume_config(str(run), {"max_iters": 12}))
    assert resumed.iteration == 12
    assert snapshot(run, ("ck_9.json.damaged", "ck_9.safetensors.damaged")) == {f"{k}.damaged": v for k, v in damaged.items()}
    assert load_checkpoint(run / "ck_9.json").meta["iteration"] == 9  # written anew beside it
    assert "damaged checkpoint ck_9.json kept as ck_9.json.damaged and ck_9.safetensors.damaged" in capsys.readouterr().err


def test_resume_with_no_intact_checkpoint_is_one_line_error(corpus):
    from rnnkit.errors import CheckpointError

    run = run_to_9(corpus)
    for it in (3, 6, 9):
        (run / f"ck_{it}.json").write_bytes((run / f"ck_{it}.json").read_bytes()[:100])
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(CheckpointError, match=r"no intact checkpoint.*ck_9\.json.*ck_3\.json.*truncated or corrupted") as e:
        resume_config(str(run), {})
    assert "\n" not in str(e.value)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_the_cli_names_the_damaged_checkpoint_and_resumes_from_the_one_before(corpus):
    run = run_to_9(corpus)
    damage(run, "truncated JSON")
    damaged = snapshot(run)
    r = run_cli("train", "--resume", run, "--max_iters", "7")
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "damaged" in line]
    assert len(warning) == 1 and str(run / "ck_9.json") in warning[0] and str(run / "ck_6.json") in warning[0]
    assert load_checkpoint(run / "ck_7.json").meta["iteration"] == 7 and snapshot(run) == damaged
