"""List corpora: each line is an item, evaluated from the start-of-line context with its newline."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from conftest import corpus_text

from rnnkit.text.items import item_batches, list_items
from rnnkit.training import TrainConfig, Trainer, prepare_run

NAMES = [f"{a}{b}{c}{d}" for a in "bdgkmprst" for b in "aeiou" for c in "lnr" for d in ("a", "o", "ie", "")]


def test_a_list_splits_into_complete_lines_and_running_text_does_not():
    nl = 9
    data = np.array([1, 2, nl, 3, nl, 4, 5, 6, nl] * 30 + [7], dtype=np.uint8)
    items = list_items(data, nl)
    assert items is not None and len(items) == 89  # 90 lines, the first dropped (a split starts mid-line)
    assert all(item[-1] == nl for item in items) and [list(i) for i in items[:2]] == [[3, nl], [4, 5, 6, nl]]
    prose = np.array(([1] * 60 + [nl]) * 40, dtype=np.uint8)  # 60-token lines: running text
    assert list_items(prose, nl) is None and list_items(data, None) is None
    space = 8
    verse = np.array(([1, 2, nl] * 5 + [nl]) * 20, dtype=np.uint8)  # short lines in stanzas: blank lines
    code = np.array(([1, nl] + [space, 2, nl] * 3) * 20, dtype=np.uint8)  # short lines, indented
    assert list_items(verse, nl, (space,)) is None and list_items(code, nl, (space,)) is None


def test_item_batches_start_from_the_newline_and_mask_the_padding():
    nl = 9
    items = [np.array([3, nl]), np.array([4, 5, 6, nl])]
    (x, y, mask), = item_batches(items, nl)
    assert x.tolist() == [[nl, 3, nl, nl], [nl, 4, 5, 6]]
    assert y.tolist() == [[3, nl, nl, nl], [4, 5, 6, nl]]
    assert mask.tolist() == [[True, True, False, False], [True, True, True, True]]


def trainer_for(tmp_path, text: str) -> Trainer:
    (tmp_path / "t.txt").write_text(text)
    cfg = prepare_run(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "run/ck"),
                                  rnn_size=16, wordvec_size=8, num_layers=1, batch_size=4, seq_length=16,
                                  max_iters=1, progress="none", quiet=True, device="cpu"))
    return Trainer(cfg)


def test_a_list_corpus_is_scored_line_by_line(tmp_path):
    trainer = trainer_for(tmp_path, "\n".join(NAMES * 2) + "\n")
    items, nl = trainer.data.val_items, trainer.data.newline_id
    assert items is not None and len(items) > 20
    total, count = 0.0, 0
    with torch.no_grad():
        for item in items:  # one line at a time from a zero state, the newline as its context
            x = torch.tensor([[nl, *item[:-1].tolist()]])
            logits, _ = trainer.model(x)
            total += F.cross_entropy(logits[0], torch.tensor(item.astype(np.int64)) - 1, reduction="sum").item()
            count += len(item)
    assert math.isclose(trainer.evaluate(), total / count, rel_tol=1e-5)


def test_running_text_is_scored_along_lanes(tmp_path):
    trainer = trainer_for(tmp_path, corpus_text()[:30_000])
    assert trainer.data.val_items is None and trainer.evaluate() is not None


def test_training_on_a_list_reports_how_many_sampled_lines_are_new(tmp_path):
    from conftest import run_cli

    from rnnkit.runs.metrics import read_metrics

    (tmp_path / "names.txt").write_text("\n".join(NAMES) + "\n")
    r = run_cli("train", tmp_path / "names.txt", "--checkpoint_name", tmp_path / "run/ck", "--rnn_size", "16",
                "--num_layers", "1", "--batch_size", "4", "--seq_length", "16", "--max_iters", "30", "--progress", "none")
    assert r.returncode == 0, r.stderr
    assert "sampled lines are new" in r.stderr
    record = next(rec for rec in read_metrics(tmp_path / "run") if "new_lines" in rec)
    assert 0.0 <= record["new_lines"] <= 1.0 and record["lines_sampled"] > 0
