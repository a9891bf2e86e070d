"""The torch-rnn workflow end to end, through the real command line."""

import json

import h5py
from conftest import run_cli


def test_preprocess_train_sample(tmp_path, small_corpus):
    r = run_cli("preprocess", "--input_txt", small_corpus, "--output_h5", tmp_path / "s.h5", "--output_json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert "Total vocabulary size:" in r.stdout and "Training size: 80000" in r.stdout
    # torch-rnn's single-dash spelling and the kebab-case one work too
    r = run_cli("train", "-input_h5", tmp_path / "s.h5", "--input-json", tmp_path / "s.json", "-rnn_size", "16",
                "-num_layers", "1", "-batch_size", "4", "-seq_length", "16", "-max_iters", "12", "-print_every", "4",
                "-checkpoint_every", "6", "-checkpoint_name", tmp_path / "cv/checkpoint", "-gpu", "-1")
    assert r.returncode == 0, r.stderr
    assert "Epoch 0.00 / 50, i = 4 / 12, loss =" in r.stdout  # torch-rnn's progress line
    assert "val_loss" in r.stdout
    cv = tmp_path / "cv"
    for it in (6, 12):
        assert (cv / f"checkpoint_{it}.json").exists() and (cv / f"checkpoint_{it}.safetensors").exists()
    meta = json.loads((cv / "checkpoint_12.json").read_text())
    assert meta["iteration"] == 12 and meta["model"]["rnn_size"] == 16
    r = run_cli("sample", "-checkpoint", cv / "checkpoint_12.json", "-length", "300", "-seed", "1", "-gpu", "-1")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.rstrip("\n")) == 300
    again = run_cli("sample", "--checkpoint", cv / "checkpoint_12.safetensors", "--length", "300", "--seed", "1")
    assert again.stdout == r.stdout  # seeded, and a checkpoint named by its weights file works


def test_train_raw_text_in_one_command(tmp_path, small_corpus):
    r = run_cli("train", small_corpus, "--checkpoint_name", tmp_path / "run/ck", "--rnn_size", "16",
                "--batch_size", "4", "--seq_length", "16", "--max_iters", "5", "--quiet")
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "run/corpus.h5") as f:
        assert len(f["train"]) == 80_000
    r = run_cli("sample", "--checkpoint", tmp_path / "run", "--length", "50", "--start_text", "ROMEO:")
    assert r.returncode == 0 and r.stdout.startswith("ROMEO:")


def test_existing_run_is_not_overwritten(tmp_path, small_corpus):
    args = ("train", small_corpus, "--checkpoint_name", tmp_path / "run/ck", "--rnn_size", "8",
            "--batch_size", "2", "--seq_length", "8", "--max_iters", "2", "--quiet")
    assert run_cli(*args).returncode == 0
    before = (tmp_path / "run/ck_2.safetensors").read_bytes()
    r = run_cli(*args)
    assert r.returncode == 2 and "--resume" in r.stderr and "Traceback" not in r.stderr
    assert (tmp_path / "run/ck_2.safetensors").read_bytes() == before
    assert run_cli(*args, "--force").returncode == 0


def test_word_level_model(tmp_path, small_corpus):
    r = run_cli("preprocess", "--input_txt", small_corpus, "--output_h5", tmp_path / "w.h5",
                "--output_json", tmp_path / "w.json", "--tokens", "word", "--max_vocab", "500")
    assert r.returncode == 0, r.stderr
    r = run_cli("train", "--input_h5", tmp_path / "w.h5", "--input_json", tmp_path / "w.json", "--rnn_size", "16",
                "--batch_size", "4", "--seq_length", "8", "--max_iters", "3", "--checkpoint_name", tmp_path / "w/ck", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("sample", "--checkpoint", tmp_path / "w", "--length", "30", "--seed", "0")
    assert r.returncode == 0 and " " in r.stdout and "  " not in r.stdout


def test_files_laid_out_by_torch_rnn_train_unchanged(tmp_path, corpus):
    """An HDF5/JSON pair written the way torch-rnn's scripts/preprocess.py writes it."""
    import numpy as np

    text = corpus[:20_000]
    token_to_idx = {}
    for ch in text:  # ids by first appearance, 1-based
        token_to_idx.setdefault(ch, len(token_to_idx) + 1)
    ids = np.array([token_to_idx[c] for c in text], dtype=np.uint8)
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f.create_dataset("train", data=ids[:16_000])
        f.create_dataset("val", data=ids[16_000:18_000])
        f.create_dataset("test", data=ids[18_000:])
    (tmp_path / "t.json").write_text(json.dumps(
        {"token_to_idx": token_to_idx, "idx_to_token": {v: k for k, v in token_to_idx.items()}}))
    r = run_cli("train", "-input_h5", tmp_path / "t.h5", "-input_json", tmp_path / "t.json", "-rnn_size", "16",
                "-batch_size", "4", "-seq_length", "16", "-max_iters", "4", "-checkpoint_name", tmp_path / "cv/checkpoint", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run_cli("sample", "-checkpoint", tmp_path / "cv/checkpoint_4.json", "-length", "40", "-start_text", "First")
    assert r.returncode == 0 and r.stdout.startswith("First")
