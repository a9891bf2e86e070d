"""The fast paths of issue 8 behave like the slow ones: NumPy sampling step, Gumbel
sampling, the time budget and its learning-rate schedule, bf16 and the CPU probes.
(`auto` sizes: test_auto.py.)"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import run_cli
from threadpoolctl import threadpool_info, threadpool_limits

from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.sampling import cpu_step
from rnnkit.sampling.generator import Generator, SampleOptions, pick_next_np
from rnnkit.text.vocab import Vocab
from rnnkit.training import TrainConfig, train
from rnnkit.training.schedule import FLOOR, WARMUP_ITERS, LRSchedule

VOCAB = Vocab.build("abcdefghijklmnop \n.", "char")


def model_of(model_type="lstm", layers=2, batchnorm=False, seed=0) -> LanguageModel:
    torch.manual_seed(seed)
    model = LanguageModel(ModelConfig(len(VOCAB), model_type, 12, 32, layers, batchnorm=batchnorm)).eval()
    if batchnorm:  # statistics and affine terms that are not the identity
        with torch.no_grad():
            model.norm.running_mean.normal_()
            model.norm.running_var.uniform_(0.5, 2.0)
            model.norm.weight.normal_()
            model.norm.bias.normal_()
    return model


@pytest.mark.parametrize("streams", [1, 4])  # NumPy's products, then oneDNN's where this torch has it
@pytest.mark.parametrize("model_type,layers,batchnorm", [
    ("lstm", 2, False), ("lstm", 3, True), ("gru", 2, False), ("gru", 1, True), ("rnn", 2, False), ("rnn", 3, True),
])
def test_numpy_step_gives_the_torch_models_probabilities(model_type, layers, batchnorm, streams):
    model = model_of(model_type, layers, batchnorm)
    ids = torch.randint(1, len(VOCAB) + 1, (streams, 30), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        _, state = model(ids[:, :1])
        streams = cpu_step.CpuLM(model).start(state, streams)
        for t in range(1, ids.shape[1]):
            logits, state = model(ids[:, t:t + 1], state)
            fast = streams.step(ids[:, t].numpy())
            want = torch.softmax(logits[:, -1], -1).numpy()
            got = np.exp(fast - fast.max(-1, keepdims=True))
            got /= got.sum(-1, keepdims=True)
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("options", [
    dict(), dict(temperature=0.6), dict(top_k=3), dict(top_p=0.7), dict(sample=False),
    dict(num_samples=3, temperature=1.4, top_p=0.9), dict(num_samples=4, stop_at="."), dict(start_text="ab ba"),
])
def test_a_seed_gives_the_same_text_on_both_paths(options):
    gen = Generator(model_of(), VOCAB)
    fast = gen.generate(length=300, seed=11, **options)
    gen.fast_path = False
    assert gen.generate(length=300, seed=11, **options) == fast
    assert gen.generate(length=300, seed=12, **options) != fast or options.get("sample") is False


def test_the_numpy_path_runs_on_cpu(monkeypatch):
    calls = []
    step = cpu_step.CpuStreams.step
    monkeypatch.setattr(cpu_step.CpuStreams, "step", lambda self, ids: calls.append(1) or step(self, ids))
    Generator(model_of(), VOCAB).generate(length=20, seed=0)
    assert len(calls) == 19  # every token after the first comes from a NumPy step


def test_many_streams_use_onednns_packed_products_and_one_stream_numpys():
    if not cpu_step.onednn_works():
        pytest.skip("this PyTorch build has no oneDNN packed products")
    lm = cpu_step.CpuLM(model_of())
    assert all(isinstance(p, cpu_step.NumpyProduct) for p in [*lm.products(1).hh, lm.products(1).head])
    many = lm.products(cpu_step.ONEDNN_MIN_STREAMS)
    assert all(isinstance(p, cpu_step.OneDnnProduct) for p in [*many.hh, many.head])


def test_onednn_products_restore_the_callers_torch_threads(monkeypatch):
    if not cpu_step.onednn_works():
        pytest.skip("this PyTorch build has no oneDNN packed products")
    monkeypatch.setattr(cpu_step, "machine_is_idle", lambda: False)  # a busy machine: one thread
    model = model_of()
    with torch.inference_mode():
        _, state = model(torch.ones(1, 1, dtype=torch.long))
    streams = cpu_step.CpuLM(model).start(state, 16)
    before = torch.get_num_threads()
    seen = []
    product = streams.products.head
    monkeypatch.setattr(streams.products, "head", lambda x: seen.append(torch.get_num_threads()) or product(x))
    streams.step(np.ones(16, np.int64))
    assert torch.get_num_threads() == before
    assert streams.threads == 1 and seen == [1]


def test_changed_weights_are_not_served_from_the_cache():
    gen = Generator(model_of(), VOCAB)
    before = gen.generate(length=200, seed=3)
    with torch.no_grad():
        gen.model.head.bias[VOCAB.id_of("a") - 1] += 20.0  # 'a' now dominates
    after = gen.generate(length=200, seed=3)
    assert after != before and after[0].count("a") > 150


def test_gumbel_sampling_follows_the_softmax():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05, 0.0]], np.float32) + 1e-30)
    rng = np.random.default_rng(0)
    draws = 40_000
    counts = np.zeros(5)
    opts = SampleOptions()
    for _ in range(draws // 1000):
        noise = -np.log(-np.log(rng.random((1000, 5), dtype=np.float32)))
        picks = np.argmax(logits + noise, -1)
        counts += np.bincount(picks, minlength=5)
    np.testing.assert_allclose(counts / draws, [0.5, 0.3, 0.15, 0.05, 0.0], atol=0.01)
    # pick_next_np with temperature flattens the distribution as softmax(logits / T) does
    t = 2.0
    want = np.exp(logits[0] / t) / np.exp(logits[0] / t).sum()
    counts[:] = 0
    for _ in range(draws // 1000):
        noise = -np.log(-np.log(rng.random((1000, 5), dtype=np.float32)))
        picks = pick_next_np(np.repeat(logits, 1000, 0), SampleOptions(temperature=t), noise)
        counts += np.bincount(picks, minlength=5)
    np.testing.assert_allclose(counts / draws, want, atol=0.01)
    assert opts.temperature == 1.0


def test_time_budget_stops_training_near_the_budget(tmp_path, small_corpus):
    result = train(TrainConfig(input_txt=[str(small_corpus)], checkpoint_name=str(tmp_path / "run/checkpoint"),
                               time_budget=4.0, rnn_size=16, wordvec_size=8, batch_size=4, seq_length=16,
                               progress="none", quiet=True))
    assert result.stopped == "time_budget"
    assert result.iteration > 20
    assert result.seconds < 4.0 + 20  # the last evaluation and checkpoint come after the budget
    assert result.best_checkpoint is not None and result.best_checkpoint.exists()


def test_budget_schedule_warms_up_then_ends_at_its_floor():
    cfg = SimpleNamespace(learning_rate=0.01, lr_decay_every=5, lr_decay_factor=0.5, time_budget=100.0)
    s = LRSchedule(cfg, batches_per_epoch=10)
    assert s.lr(1, 0.0) == pytest.approx(0.01 / WARMUP_ITERS)
    assert s.lr(WARMUP_ITERS, 0.0) == pytest.approx(0.01)
    lrs = [s.lr(10_000, t) for t in range(0, 101, 5)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(0.01 * FLOOR)
    assert s.lr(10_000, 250.0) == pytest.approx(0.01 * FLOOR)  # past the budget it stays there


def blas_threads() -> int:
    return max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")


def test_sampling_holds_numpys_blas_to_one_thread_unless_sharing_pays(monkeypatch):
    assert any(pool["user_api"] == "blas" for pool in threadpool_info())  # NumPy's wheel bundles OpenBLAS
    with threadpool_limits(limits=2, user_api="blas"):
        monkeypatch.setattr(cpu_step, "machine_is_idle", lambda: True)
        with cpu_step.blas_threads_for(1):
            assert blas_threads() == 1
        assert blas_threads() == 2
        with cpu_step.blas_threads_for(32):
            assert blas_threads() == 2
        monkeypatch.setattr(cpu_step, "machine_is_idle", lambda: False)
        with cpu_step.blas_threads_for(32), cpu_step.blas_threads_for(32):
            assert blas_threads() == 1
        assert blas_threads() == 2


@pytest.mark.parametrize("amp,want", [("auto", None), ("off", None), ("bf16", torch.bfloat16)])
def test_amp_on_a_cpu_is_float32_unless_bf16_is_asked_for(amp, want):
    from rnnkit.core import device

    assert device.autocast_dtype(amp, torch.device("cpu")) is want


def test_amp_fp16_on_a_cpu_is_a_one_line_error(tmp_path):
    (tmp_path / "t.txt").write_text("abc def\n" * 400)
    r = run_cli("train", str(tmp_path / "t.txt"), "-checkpoint_name", str(tmp_path / "cv" / "ck"),
                "-rnn_size", "8", "-batch_size", "2", "-seq_length", "8", "-max_iters", "2", "-amp", "fp16", "-device", "cpu")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "--amp fp16 is for CUDA" in r.stderr


def test_bf16_on_a_cpu_trains_where_the_probe_passes_and_stops_in_one_line_where_it_fails(tmp_path):
    from rnnkit.core import device

    (tmp_path / "t.txt").write_text("abc def\n" * 400)
    r = run_cli("train", str(tmp_path / "t.txt"), "-checkpoint_name", str(tmp_path / "cv" / "ck"),
                "-rnn_size", "8", "-batch_size", "2", "-seq_length", "8", "-max_iters", "2", "-amp", "bf16", "-device", "cpu")
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2":  # the ISA-limited pass of `make test`
        assert device.cpu_bf16_rnn_failure("lstm") is not None, "oneDNN has no bf16 LSTM on AVX2: the ISA limit did not apply"
    if device.cpu_bf16_rnn_failure("lstm") is None:
        assert r.returncode == 0, r.stderr
        from rnnkit.core.checkpoint import load_checkpoint

        weights = load_checkpoint(tmp_path / "cv" / "ck_2.json").prefixed("model.")
        assert weights and all(t.dtype == torch.float32 for t in weights.values())
    else:
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
        assert "--amp bf16" in r.stderr and "use --amp off" in r.stderr and "internal error" not in r.stderr
        assert not (tmp_path / "cv").exists()  # stopped before preprocessing wrote anything


def test_a_failed_bf16_probe_stops_training_before_anything_is_written(tmp_path, monkeypatch):
    from rnnkit.core import device
    from rnnkit.errors import ConfigError

    monkeypatch.setattr(device, "cpu_bf16_rnn_failure", lambda model_type: "no bf16 primitive")
    (tmp_path / "t.txt").write_text("abc def\n" * 400)
    with pytest.raises(ConfigError, match=r"--amp bf16: .*cannot train a GRU in bfloat16 \(no bf16 primitive\); use --amp off"):
        train(TrainConfig(input_txt=[str(tmp_path / "t.txt")], checkpoint_name=str(tmp_path / "cv" / "ck"), model_type="gru",
                          rnn_size=8, batch_size=2, seq_length=8, max_iters=2, amp="bf16", device="cpu", progress="none"))
    assert not (tmp_path / "cv").exists()


def test_the_bf16_probe_runs_a_real_backward_pass():
    from rnnkit.core import device

    device.cpu_bf16_rnn_failure.cache_clear()
    failure = device.cpu_bf16_rnn_failure("lstm")
    assert failure is None or (isinstance(failure, str) and failure and "\n" not in failure)  # a reason, one line
    assert device.cpu_bf16_rnn_failure.cache_info().misses == 1 and device.cpu_bf16_rnn_failure("lstm") == failure
    assert device.cpu_bf16_rnn_failure.cache_info().hits == 1  # probed once per process and cell type


def test_a_failed_onednn_check_falls_back_to_numpy_products_and_says_so_once(monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("no such primitive")

    monkeypatch.setattr(cpu_step, "_onednn_ok", None)
    monkeypatch.setattr(cpu_step.OneDnnProduct, "__init__", broken)
    assert cpu_step.onednn_works() is False and cpu_step.onednn_works() is False
    assert capsys.readouterr().err.count("oneDNN's packed products failed") == 1
    many = cpu_step.CpuLM(model_of()).products(8)
    assert all(isinstance(p, cpu_step.NumpyProduct) for p in [*many.hh, many.head])
    gen = Generator(model_of(), VOCAB)
    fast = gen.generate(length=100, seed=3, num_samples=4)
    gen.fast_path = False
    assert gen.generate(length=100, seed=3, num_samples=4) == fast  # the fallback samples what torch samples


def test_the_isa_limit_of_the_second_pass_is_in_force():
    """`make test` runs this file again under ATEN_CPU_CAPABILITY=avx2 / ONEDNN_MAX_CPU_ISA=AVX2."""
    wanted = os.environ.get("ATEN_CPU_CAPABILITY")
    got = torch.backends.cpu.get_cpu_capability()
    if wanted:
        assert got.lower() == wanted.lower()
    else:
        assert got in ("DEFAULT", "NO AVX", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256", "SVE")