"""One source of truth per setting for `rnnkit classify`: the fields of EventSource and the
classifier's TrainConfig make the flags, and the parser (not sys.argv) says which were typed."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from rnnkit.classify.config import TrainConfig, resolve_options
from rnnkit.classify.events import EventSource, parse_columns
from rnnkit.classify.synth import synth_sequences, write_synth_csv
from rnnkit.classify.train import train_classifier
from rnnkit.cli import build_parser, main
from rnnkit.cli.classify import (
    EVAL_SETTINGS,
    PREDICT_SETTINGS,
    _settings,
    _train_config,
)
from rnnkit.core.checkpoint import latest_checkpoint, read_meta
from rnnkit.core.options import fallbacks, parse_duration, typed_options

CONFIGS = (EventSource, TrainConfig)


def classify_args(*argv: str):
    return build_parser().parse_args(["classify", *argv])


def flagged(config_class: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(config_class) if f.metadata.get("flag")]


def a_value(f: dataclasses.Field) -> str:
    """A value the field's flag accepts."""
    choices = f.metadata["argparse"].get("choices")
    by_parse = {int: "3", float: "0.5", parse_duration: "2m", parse_columns: "a,b", str: choices[0] if choices else "x"}
    return by_parse[f.metadata["parse"]]


@pytest.mark.parametrize("config_class", CONFIGS)
def test_every_flagged_field_is_a_train_flag_in_every_spelling(config_class):
    for f in flagged(config_class):
        value = [] if f.metadata["parse"] is None else [a_value(f)]
        spellings = {f"--{f.name}", f"-{f.name}", f"--{f.name.replace('_', '-')}"}
        parsed = [typed_options(classify_args("train", spelling, *value), config_class) for spelling in spellings]
        assert all(p == parsed[0] and list(p) == [f.name] for p in parsed), f.name
    assert {f.name for f in dataclasses.fields(EventSource) if not f.metadata.get("flag")} == {"fixed_schema"}
    assert {f.name for f in dataclasses.fields(TrainConfig) if not f.metadata.get("flag")} == {"source"}


def test_only_typed_flags_are_reported():
    args = classify_args("train", "--events", "e.csv", "-rnn_size", "16", "--learning-rate", "0.01", "--time_budget", "2m",
                         "--quiet", "--numeric_cols", "none", "--skip_bad_rows")
    assert typed_options(args, EventSource) == {"events": "e.csv", "numeric_cols": [], "skip_bad_rows": True}
    assert typed_options(args, TrainConfig) == {"rnn_size": 16, "learning_rate": 0.01, "time_budget": 120.0, "quiet": True}
    assert typed_options(classify_args("train"), EventSource) == typed_options(classify_args("train"), TrainConfig) == {}


def test_flags_make_the_config_the_python_api_makes():
    args = classify_args("train", "--events", "e.csv", "--sequence_col", "s", "--categorical_cols", "a, b,",
                         "--max_length", "20", "--truncate", "keep_first", "--class_weights", "none",
                         "--checkpoint_name", "cv/clf", "--gpu", "-1")
    source = EventSource("e.csv", sequence_col="s", categorical_cols=["a", "b"])
    same = TrainConfig(source, max_length=20, truncate="keep_first", class_weights="none", checkpoint_name="cv/clf", gpu=-1)
    assert _train_config(args) == same and _train_config(args).run_dir == "cv"


def test_the_fallbacks_are_the_documented_defaults_and_shown_in_help(capsys):
    assert fallbacks(TrainConfig) == dict(max_length=200, truncate="keep_last", embedding_size=16, rnn_size=64,
                                          num_layers=1, dropout=0.0, learning_rate=2e-3)
    cfg = TrainConfig(EventSource("e.csv"), rnn_size=32)
    assert resolve_options(cfg, None) == {**fallbacks(TrainConfig), "rnn_size": 32}
    with pytest.raises(SystemExit):
        classify_args("train", "--help")
    shown = " ".join(capsys.readouterr().out.split())
    assert "events per sequence the model reads (default 200)" in shown and "LSTM hidden size (default 64)" in shown


@pytest.mark.parametrize("command, settings, not_theirs", [
    ("predict", PREDICT_SETTINGS, "--labels"),
    ("eval", EVAL_SETTINGS, "--rnn_size"),
])
def test_predict_and_eval_take_their_settings_with_the_fields_defaults(command, settings, not_theirs, capsys):
    values = {"events": "e.csv", "device": "cpu", "gpu": "-1", "labels": "l.csv", "buys": "b.dat"}
    argv = [x for name in settings for x in (f"--{name}", values.get(name)) if x is not None]
    args = classify_args(command, "--checkpoint", "run", *argv)
    typed = {**typed_options(args, EventSource), **typed_options(args, TrainConfig)}
    assert set(typed) - {"force"} == set(settings)  # --force is theirs: overwrite the output
    assert _settings(classify_args(command, "--checkpoint", "run", "--events", "e.csv"), PREDICT_SETTINGS) == \
        {"events": "e.csv", "skip_bad_rows": False, "device": "auto", "gpu": None}
    with pytest.raises(SystemExit) as e:
        classify_args(command, "--checkpoint", "run")
    assert e.value.code == 2 and "--events" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        classify_args(command, "--checkpoint", "run", "--events", "e.csv", not_theirs, "8")


def test_resume_overrides_come_from_the_parser_not_sys_argv(tmp_path, monkeypatch):
    events = tmp_path / "e.csv"
    write_synth_csv(events, synth_sequences(60, seed=0, min_events=3, max_events=6))
    source = EventSource(str(events), sequence_col="session_id", order_col="timestamp")
    train_classifier(TrainConfig(source, run_dir=str(tmp_path / "run"), rnn_size=8, embedding_size=4, batch_size=16,
                                 max_epochs=1, device="cpu", quiet=True), log=lambda *_: None)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel.json", "--batch_size", "3"])
    assert main(["classify", "train", "--resume", str(tmp_path / "run"), "--max_epochs", "2", "--quiet"]) == 0
    options = read_meta(latest_checkpoint(tmp_path / "run"))["options"]
    assert options["max_epochs"] == 2 and options["batch_size"] == 16 and options["rnn_size"] == 8  # the run's own
