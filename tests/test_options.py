"""One source of truth per setting: TrainConfig's fields make `rnnkit train`'s flags, and the
parser (not sys.argv) says which flags were typed."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from rnnkit.cli import build_parser, main
from rnnkit.core.checkpoint import latest_checkpoint, read_meta
from rnnkit.core.options import defaults, fields_where, typed_options
from rnnkit.runs.compare import NOT_COMPARED
from rnnkit.training import TrainConfig, train
from rnnkit.training.auto import AUTO_FIELDS


def train_args(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_every_flagged_field_is_a_train_flag_with_the_fields_default():
    parser = build_parser()
    flagged = [f for f in dataclasses.fields(TrainConfig) if f.metadata.get("flag")]
    assert {"rnn_size", "batch_size", "time_budget", "amp", "checkpoint_name"} <= {f.name for f in flagged}
    for f in flagged:
        value = f.default if f.default is not None else None
        if f.metadata["parse"] is None or value is None:
            continue
        typed = vars(parser.parse_args(["train", f"--{f.name}", str(value)]))[f.name]
        assert typed == value, f.name  # the flag parses its own default back to the field's value
    assert defaults(TrainConfig)["rnn_size"] == 128 and defaults(TrainConfig)["auto_choice"] == {}


def test_only_typed_flags_are_reported_in_every_spelling():
    args = train_args("t.txt", "-rnn_size", "auto", "--learning-rate", "0.01", "--time_budget", "2m", "--quiet")
    assert typed_options(args, TrainConfig) == {"rnn_size": "auto", "learning_rate": 0.01, "time_budget": 120.0, "quiet": True}
    assert typed_options(train_args("t.txt"), TrainConfig) == {}


def test_bad_values_are_one_line_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        train_args("--time_budget", "soon")
    assert e.value.code == 2 and "give a positive duration" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_args("--rnn_size", "big")


def test_compare_and_auto_read_their_lists_from_the_fields():
    assert fields_where(TrainConfig, "auto") == AUTO_FIELDS
    assert set(AUTO_FIELDS) == {"rnn_size", "num_layers", "batch_size", "seq_length", "learning_rate", "dropout", "weight_decay",
                                "early_stopping", "lr_plateau", "checkpoint_every", "ngram", "eval_tokens"}
    assert {"checkpoint_name", "quiet", "threads", "auto_choice"} <= NOT_COMPARED
    assert not {"rnn_size", "dropout", "learning_rate", "seed"} & NOT_COMPARED


def test_resume_overrides_come_from_main_s_own_argv(tmp_path, monkeypatch):
    (tmp_path / "t.txt").write_text("abc def ghi\n" * 300)
    train(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "run/ck"), rnn_size=8,
                      wordvec_size=4, num_layers=1, batch_size=2, seq_length=8, max_iters=4, checkpoint_every=2,
                      progress="none", quiet=True, device="cpu"))
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel.json"])  # a notebook: not what main() was given
    assert main(["train", "--resume", str(tmp_path / "run"), "--max_iters", "6", "--quiet"]) == 0
    newest = latest_checkpoint(tmp_path / "run")
    assert newest.name == "ck_6.json" and read_meta(newest)["options"]["max_iters"] == 6
