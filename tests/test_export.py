"""`rnnkit export`: the ONNX step against PyTorch in onnxruntime, the HTML page in headless Chromium."""

from __future__ import annotations

import itertools
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_browser import needs_chromium
from helpers_serve import TEXT, ngram_record

from rnnkit.cli.parser import main
from rnnkit.core.checkpoint import save_checkpoint
from rnnkit.errors import (
    CheckpointError,
    ConfigError,
    InputFileError,
    OutputExistsError,
    RnnkitError,
)
from rnnkit.export import export
from rnnkit.model.language_model import LanguageModel, ModelConfig
from rnnkit.model.mixture import Histories, Mixture
from rnnkit.model.ngram import Level, NGram
from rnnkit.sampling.generator import Generator
from rnnkit.text.vocab import Vocab

MODELS = [("lstm", 2, False), ("gru", 2, False), ("rnn", 1, True)]  # type, layers, batchnorm


def save_model(folder: Path, model_type: str = "lstm", layers: int = 2, batchnorm: bool = False,
               text: str = TEXT, meta: dict | None = None, kind: str = "char") -> Path:
    """A random (untrained) model over `text`'s symbols, saved as folder/checkpoint_1.json."""
    torch.manual_seed(0)
    vocab = Vocab.build(sorted(set(text)), kind) if kind == "char" else Vocab(["<unk>", *dict.fromkeys(text.split())], kind)
    config = ModelConfig(vocab_size=len(vocab), model_type=model_type, wordvec_size=16, rnn_size=24,
                         num_layers=layers, batchnorm=batchnorm)
    model = LanguageModel(config)
    with torch.no_grad():
        model.head.weight.mul_(4)  # sharper distributions than the default init: a stiffer comparison
        if batchnorm:  # statistics as training would leave them, so folding them in is tested
            model.norm.running_mean.uniform_(-0.5, 0.5)
            model.norm.running_var.uniform_(0.5, 2.0)
            model.norm.weight.uniform_(0.5, 1.5)
            model.norm.bias.uniform_(-0.3, 0.3)
    folder.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(
        folder / "checkpoint_1.json",
        {f"model.{k}": t for k, t in model.state_dict().items()},
        {"kind": "language_model", "model": config.to_dict(), "vocab": vocab.to_json_dict(), "iteration": 1,
         **(meta or {})},
    )


def save_mixed_model(folder: Path, text: str = TEXT, ngram_text: str | None = None, order: int = 4,
                     weight: float = 0.5, measured: dict | None = None, **kwargs) -> Path:
    """save_model's model with an n-gram of `order` counted on `ngram_text` (default: `text`) mixed in,
    recorded in the checkpoint as rnnkit train --ngram records it."""
    record = ngram_record(folder, text, order, weight, ngram_text, **(measured or {}))
    return save_model(folder, text=text, meta={"ngram": record, **kwargs.pop("meta", {})}, **kwargs)


def torch_model(checkpoint: Path) -> tuple[LanguageModel, Vocab]:
    g = Generator.load(checkpoint, "cpu")
    return g.model.eval(), g.vocab


# ---- ONNX ------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type, layers, batchnorm", MODELS)
def test_onnx_step_matches_pytorch(tmp_path, model_type, layers, batchnorm):
    import onnxruntime as ort

    checkpoint = save_model(tmp_path / "run", model_type, layers, batchnorm)
    out = tmp_path / "model.onnx"
    assert export(checkpoint, "onnx", out).files == [out, tmp_path / "model.onnx.json"]
    model, vocab = torch_model(checkpoint)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = ["h", "c"] if model_type == "lstm" else ["h"]
    batch, rng = 3, np.random.default_rng(1)
    state = {n: np.zeros((layers, batch, 24), np.float32) for n in names}
    torch_state = None
    for _ in range(6):  # several steps, the state carried by each side
        ids = rng.integers(1, len(vocab) + 1, batch)
        logits, *new_state = session.run(None, {"ids": ids.astype(np.int64), **state})
        state = dict(zip(names, new_state))
        with torch.no_grad():
            ref, torch_state = model(torch.as_tensor(ids).unsqueeze(1), torch_state)
        assert logits.shape == (batch, len(vocab))
        np.testing.assert_allclose(softmax(logits), torch.softmax(ref[:, 0].double(), -1).numpy(), atol=1e-5, rtol=0)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x.astype(np.float64) - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_onnx_vocabulary_is_torch_rnn_json(tmp_path):
    checkpoint = save_model(tmp_path / "run")
    export(checkpoint, "onnx", tmp_path / "m.onnx")
    sidecar = json.loads((tmp_path / "m.onnx.json").read_text(encoding="utf-8"))
    assert Vocab.from_json_dict(sidecar).tokens == torch_model(checkpoint)[1].tokens
    assert sidecar["token_to_idx"]["\n"] == 1 and sidecar["idx_to_token"]["1"] == "\n"
    assert set(sidecar["rnnkit_onnx"]["inputs"]) == {"ids", "h", "c"}
    assert set(sidecar["rnnkit_onnx"]["outputs"]) == {"logits", "h_out", "c_out"}


def test_onnx_with_an_ngram_reproduces_the_mixed_distribution(tmp_path):
    """A runtime that mixes the graph's logits with the tables as FILE.json says samples what rnnkit samples."""
    import onnxruntime as ort
    from safetensors.numpy import load_file

    checkpoint = save_mixed_model(tmp_path / "run", weight=0.4)
    out = tmp_path / "m.onnx"
    result = export(checkpoint, "onnx", out)
    assert result.files == [out, tmp_path / "m.onnx.json", tmp_path / "m.onnx.ngram.safetensors"]
    assert any("4-gram, network weight 0.40" in note for note in result.notes)
    record = json.loads((tmp_path / "m.onnx.json").read_text(encoding="utf-8"))["ngram"]
    assert {k: record[k] for k in ("order", "weight", "file")} == {"order": 4, "weight": 0.4, "file": "m.onnx.ngram.safetensors"}
    ngram = NGram.from_state_dict(load_file(tmp_path / record["file"]))  # the reader the docs name
    g = Generator.load(checkpoint, "cpu")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for prime in ("\n", "The quick b"):  # fewer tokens than the n-gram reads, and more
        ids = list(g.vocab.encode(prime))
        state = {n: np.zeros((2, 1, 24), np.float32) for n in ("h", "c")}
        for i in ids:
            logits, *new_state = session.run(None, {"ids": np.array([i]), **state})
            state = dict(zip(state, new_state))
        history = Histories(np.array(ids), 1, g.mixture.context)  # the sampler's own history
        for _ in range(6):
            window = ([0] * record["order"] + ids)[-(record["order"] - 1):]
            mixed = np.log(record["weight"] * softmax(logits) + (1 - record["weight"]) * ngram.next_distributions(np.array([window])))
            with torch.no_grad():
                net = g.model(torch.as_tensor(ids).unsqueeze(0))[0][:, -1].numpy()
            expected = softmax(g.mixture.mix_logits(net, history.ids))
            np.testing.assert_allclose(softmax(mixed), expected, atol=1e-5, rtol=0)
            assert np.abs(expected - softmax(net)).max() > 0.02  # the n-gram does change the distribution
            ids.append(int(expected[0].argmax()) + 1)
            history.push(np.array([ids[-1]]))
            logits, *new_state = session.run(None, {"ids": np.array([ids[-1]]), **state})
            state = dict(zip(state, new_state))


def test_onnx_ngram_tables_are_kept_without_force(tmp_path):
    from safetensors.numpy import load_file

    checkpoint = save_mixed_model(tmp_path / "run")
    out, tables = tmp_path / "m.onnx", tmp_path / "m.onnx.ngram.safetensors"
    tables.write_text("someone's work")
    with pytest.raises(OutputExistsError, match="m.onnx.ngram.safetensors already exists"):
        export(checkpoint, "onnx", out)
    assert tables.read_text() == "someone's work" and not out.exists()
    export(checkpoint, "onnx", out, force=True)
    assert int(load_file(tables)["order"]) == 4


def test_no_ngram_exports_the_network_alone(tmp_path, capsys):
    checkpoint = save_mixed_model(tmp_path / "run")
    base = ["export", "--checkpoint", str(checkpoint), "--out"]
    assert main([*base, str(tmp_path / "mixed.html"), "--format", "html"]) == 0
    assert "4-gram, network weight 0.50 mixed in" in capsys.readouterr().err
    mixed = page_data(tmp_path / "mixed.html")["ngram"]
    assert (mixed["order"], mixed["weight"], len(mixed["levels"])) == (4, 0.5, 4)

    assert main([*base, str(tmp_path / "alone.html"), "--format", "html", "--no_ngram"]) == 0
    assert "--no_ngram left out the n-gram" in capsys.readouterr().err
    assert page_data(tmp_path / "alone.html")["ngram"] is None
    assert page_data(tmp_path / "alone.html")["info"]["val_loss_mixed"] is None  # the header shows the network's loss
    assert main([*base, str(tmp_path / "alone.onnx"), "--format", "onnx", "--no_ngram"]) == 0
    assert "ngram" not in json.loads((tmp_path / "alone.onnx.json").read_text(encoding="utf-8"))
    assert not (tmp_path / "alone.onnx.ngram.safetensors").exists()


def test_html_leaves_out_ngram_tables_too_large_for_a_page(tmp_path, monkeypatch):
    import rnnkit.export.html as html_export

    monkeypatch.setattr(html_export, "NGRAM_PAGE_LIMIT", 1000)
    result = export(save_mixed_model(tmp_path / "run"), "html", tmp_path / "page.html")
    assert page_data(tmp_path / "page.html")["ngram"] is None
    assert any("4-gram's tables would add" in note and "network alone" in note for note in result.notes)


def test_html_refuses_ngram_keys_a_page_cannot_hold_exactly(tmp_path):
    from rnnkit.export.html import export_html

    g = Generator.load(save_model(tmp_path / "run"), "cpu")
    one = np.ones(1, dtype=np.int64)
    g.mixture = Mixture(NGram(len(g.vocab), [Level(np.array([2**53 + 1]), one, one, one, 0.5)]), 0.5)
    with pytest.raises(RnnkitError, match=r"beyond the 2\*\*53 .* pass --no_ngram"):
        export_html(g, tmp_path / "page.html", None)
    assert not (tmp_path / "page.html").exists()


# ---- the command ----------------------------------------------------------------------------
def test_cli_writes_shareable_files_and_refuses_to_overwrite(tmp_path, capsys):
    checkpoint = save_model(tmp_path / "run")
    out = tmp_path / "page.html"
    assert main(["export", "--checkpoint", str(tmp_path / "run"), "--format", "html", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"wrote {out}" in err and "cannot tell new lines from old" in err  # the run names no training text
    assert stat.S_IMODE(out.stat().st_mode) & 0o044 == 0o044 & ~_umask()  # readable as open() would make it
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "html", "--out", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "html", "--out", str(out), "--force"]) == 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def classifier_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return save_checkpoint(folder / "checkpoint_1.json", {"w": torch.zeros(2)}, {"kind": "classifier"})


@pytest.mark.parametrize("case, says", [
    ("missing", "no such checkpoint"),
    ("bad_format", "invalid choice: 'pdf'"),
    ("classifier", "is a classifier checkpoint, not a language model"),
    ("word_html", "--format html handles character models; this one reads words"),
    ("train_text_onnx", "--train_text feeds the html page"),
    ("no_folder", "does not exist"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, case, says):
    run = tmp_path / "run"
    fmt, out, extra = "html", tmp_path / "x.html", []
    if case in ("bad_format", "train_text_onnx", "no_folder"):
        save_model(run)
    if case == "bad_format":
        fmt = "pdf"
    elif case == "classifier":
        classifier_checkpoint(run)
    elif case == "word_html":
        save_model(run, text="the cat sat on the mat", kind="word")
    elif case == "train_text_onnx":
        fmt, extra = "onnx", ["--train_text", str(tmp_path / "t.txt")]
    elif case == "no_folder":
        out = tmp_path / "nowhere" / "x.html"
    argv = ["export", "--checkpoint", str(run), "--format", fmt, "--out", str(out), *extra]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse refuses a bad --format itself
        code = e.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rnnkit: error: ") and says in lines[0], lines


def test_api_errors_are_typed(tmp_path):
    with pytest.raises(CheckpointError):
        export(tmp_path / "nope", "onnx", tmp_path / "m.onnx")
    with pytest.raises(ConfigError):
        export(tmp_path / "nope", "zip", tmp_path / "m.zip")
    (tmp_path / "m.onnx.json").write_text("{}")  # the vocabulary file counts as output too
    with pytest.raises(OutputExistsError):
        export(save_model(tmp_path / "run"), "onnx", tmp_path / "m.onnx")


def page_data(page: Path) -> dict:
    html = page.read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="rnnkit-model">') + len('<script type="application/json" id="rnnkit-model">')
    return json.loads(html[start:html.index("</script>", start)])


def test_html_embeds_the_training_lines_only_as_asked(tmp_path):
    checkpoint = save_model(tmp_path / "run")
    train = tmp_path / "train.txt"
    train.write_text("Anna\n  Bella \n\nAnna\n</script><!--\n", encoding="utf-8")
    export(checkpoint, "html", tmp_path / "a.html", train_text=train)
    assert page_data(tmp_path / "a.html")["train_lines"] == ["</script><!--", "Anna", "Bella"]  # escaped, so intact
    export(checkpoint, "html", tmp_path / "b.html", training_lines=False)
    assert page_data(tmp_path / "b.html")["train_lines"] is None
    with pytest.raises(InputFileError, match="no such file"):
        export(checkpoint, "html", tmp_path / "c.html", train_text=tmp_path / "gone.txt")
    assert not (tmp_path / "c.html").exists()


# ---- the HTML page in Chromium ---------------------------------------------------------------
def open_page(browser, path: Path):
    """The exported file opened from disk; fails the test on any script error or network request."""
    page = browser.new_page()
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("request", lambda r: None if r.url.startswith("file://") else problems.append(f"request: {r.url}"))
    page.goto(path.as_uri())
    page.wait_for_function("window.rnnkit !== undefined")
    page.problems = problems
    return page


@needs_chromium
@pytest.mark.parametrize("model_type, layers, batchnorm", MODELS)
def test_page_probabilities_match_pytorch(tmp_path, browser, model_type, layers, batchnorm):
    checkpoint = save_model(tmp_path / "run", model_type, layers, batchnorm)
    export(checkpoint, "html", tmp_path / "page.html")
    model, vocab = torch_model(checkpoint)
    page = open_page(browser, tmp_path / "page.html")
    for text in ["", "T", "The dog", "Anna\nBella\nCa", "The quick brown fox jumps over the lazy dog.\n" * 3]:
        ids = vocab.encode(text) if text else np.array([vocab.id_of("\n")])
        with torch.no_grad():
            logits = model(torch.as_tensor(ids).unsqueeze(0))[0][0, -1].double()
        for temperature in (1.0, 0.7):
            got = np.array(page.evaluate("([t, T]) => rnnkit.probabilities(t, T)", [text, temperature]))
            np.testing.assert_allclose(got, torch.softmax(logits / temperature, -1).numpy(), atol=1e-4, rtol=0)
    assert page.problems == []
    page.close()


@needs_chromium
def test_page_samples_repeat_with_a_seed(tmp_path, browser):
    export(save_model(tmp_path / "run"), "html", tmp_path / "page.html")
    page = open_page(browser, tmp_path / "page.html")
    call = "(seed) => rnnkit.generate({start_text: 'The dog', length: 200, temperature: 0.8, seed})"
    first, again, other = (page.evaluate(call, s) for s in (7, 7, 8))
    assert first == again != other
    assert first.startswith("The dog") and len(first) == len("The dog") + 200

    # the same through the page's controls
    page.fill("#start", "Anna")
    page.fill("#seed", "11")
    page.fill("#length", "300")
    outputs = []
    for _ in range(2):
        page.click("#generate")
        page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
        outputs.append(page.inner_text("#output"))
        assert "seed 11" in page.inner_text("#status")
    assert outputs[0] == outputs[1] and outputs[0].startswith("Anna") and len(outputs[0]) == 304
    assert page.inner_text("#output .prime") == "Anna"
    assert page.problems == []
    page.close()


def short_lines_run(folder: Path, ngram: bool = False) -> tuple[Path, set[str]]:
    """A model over a, b and newline, trained (in name) on every line of 1 to 4 of those letters.

    Untrained, it ends a line about one character in three, so most lines it writes are
    training lines: without the filter they show up, with it none may. ngram: with a 3-gram
    counted on those lines mixed in."""
    letters = {"".join(p) for n in range(1, 5) for p in itertools.product("ab", repeat=n)}
    train = letters | {"</script><!-- a line that must not break the page"}
    text_file = folder / "train.txt"
    folder.mkdir(parents=True)
    text_file.write_text("\n".join(sorted(train)) + "\n", encoding="utf-8")
    meta = {"data": {"sources": [str(text_file)]}}
    if ngram:
        checkpoint = save_mixed_model(folder / "run", "ab\n", "\n".join(sorted(letters)) + "\n", order=3,
                                      model_type="lstm", layers=1, meta=meta)
    else:
        checkpoint = save_model(folder / "run", "lstm", 1, text="ab\n", meta=meta)
    return checkpoint, train


@needs_chromium
def test_page_list_mode_writes_only_new_lines(tmp_path, browser):
    checkpoint, train = short_lines_run(tmp_path / "lines")
    export(checkpoint, "html", tmp_path / "page.html")
    page = open_page(browser, tmp_path / "page.html")
    assert page.evaluate("rnnkit.info.trainLines") == len(train)
    new = page.evaluate("rnnkit.lines({count: 20, novel: true, seed: 1})")
    assert len(new) == len(set(new)) == 20 and not set(new) & train
    repeats = page.evaluate("rnnkit.lines({count: 20, novel: false, seed: 1})")
    assert len(repeats) == 20 and set(repeats) & train  # the filter is what keeps them out

    page.select_option("#mode", "list")
    page.fill("#count", "6")
    page.fill("#seed", "2")
    assert page.is_checked("#novel") and not page.is_visible("#novel-note")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
    assert page.inner_text("#status").startswith("Done: 6 new lines")
    shown = page.inner_text("#output").split("\n")
    assert len(shown) == 6 and not set(shown) & train
    assert page.problems == []
    page.close()


@needs_chromium
def test_page_without_training_text_says_so(tmp_path, browser):
    export(save_model(tmp_path / "run"), "html", tmp_path / "page.html")  # the run names no training text
    page = open_page(browser, tmp_path / "page.html")
    page.select_option("#mode", "list")
    assert page.is_visible("#novel-note") and page.is_disabled("#novel") and not page.is_checked("#novel")
    page.fill("#count", "3")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
    assert page.inner_text("#status").startswith("Done: 3 lines") and len(page.inner_text("#output").split("\n")) == 3
    assert page.evaluate("rnnkit.info.trainLines") is None
    assert page.problems == []
    page.close()


# ---- the HTML page with an n-gram mixed in ----------------------------------------------------
def python_distribution(g: Generator, text: str, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """The mixed next-token distribution after `text` as rnnkit sample draws from it, and the network's alone."""
    ids = g.vocab.encode(text) if text else np.array([g.vocab.id_of("\n")])
    with torch.no_grad():
        net = g.model(torch.as_tensor(ids).unsqueeze(0))[0][:, -1].numpy()
    return softmax(g.mixture.mix_logits(net, ids[None]) / temperature)[0], softmax(net / temperature)[0]


@needs_chromium
def test_page_mixes_in_the_ngram_as_python_does(tmp_path, browser):
    checkpoint = save_mixed_model(tmp_path / "run", order=5, meta={"val_loss": 1.9}, measured={"val_loss_mixed": 1.7})
    export(checkpoint, "html", tmp_path / "page.html")
    g = Generator.load(checkpoint, "cpu")
    page = open_page(browser, tmp_path / "page.html")
    assert page.evaluate("rnnkit.info.ngram") == {"order": 5, "weight": 0.5}
    header = page.inner_text("#model")
    assert "+ 5-gram (network weight 0.50)" in header
    assert "val loss 1.700 (network alone 1.900)" in header  # the loss of what the page samples from, first
    # shorter than the 4 tokens the 5-gram reads (empty: after a newline), and longer
    for text in ["", "T", "Ann", "The quick brown", "Anna\nBella\nCa", "zzz"]:
        top = dict(g.next_tokens(text, k=len(g.vocab)))
        got = np.array(page.evaluate("([t, T]) => rnnkit.probabilities(t, T)", [text, 1.0]))
        np.testing.assert_allclose(got, [top[t] for t in g.vocab.tokens], atol=1e-4, rtol=0)
        expected, network = python_distribution(g, text, 0.7)
        got = np.array(page.evaluate("([t, T]) => rnnkit.probabilities(t, T)", [text, 0.7]))
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        assert np.abs(got - network).max() > 0.02  # the n-gram does change the distribution

    # sampling moves the history on: near-argmax in the page is Python's argmax, which the n-gram steers
    start = "The quick b"
    greedy = g.generate(start_text=start, length=40, sample=False)[0]
    assert greedy != Generator(g.model, g.vocab).generate(start_text=start, length=40, sample=False)[0]
    call = "(s) => rnnkit.generate({start_text: s, length: 40, temperature: 0.005, seed: 1})"
    assert page.evaluate(call, start) == greedy
    assert page.problems == []
    page.close()


@needs_chromium
def test_page_list_mode_with_an_ngram(tmp_path, browser):
    from rnnkit.sampling.generator import SampleOptions
    from rnnkit.sampling.lines import generate_lines

    checkpoint, train = short_lines_run(tmp_path / "lines", ngram=True)
    export(checkpoint, "html", tmp_path / "page.html")
    page = open_page(browser, tmp_path / "page.html")
    assert page.evaluate("rnnkit.info.ngram") == {"order": 3, "weight": 0.5}
    new = page.evaluate("rnnkit.lines({count: 20, novel: true, seed: 1})")
    assert len(new) == len(set(new)) == 20 and not set(new) & train
    # each line's history starts from a newline and the start text, as in rnnkit sample --lines
    g = Generator.load(checkpoint, "cpu")
    for start in ("", "b"):
        greedy = generate_lines(g, 1, options=SampleOptions(start_text=start, sample=False))
        call = "(s) => rnnkit.lines({count: 1, novel: false, start_text: s, temperature: 0.005, seed: 1})"
        assert page.evaluate(call, start) == greedy
    page.select_option("#mode", "list")
    page.fill("#count", "5")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Done')")
    assert page.inner_text("#status").startswith("Done: 5 new lines")
    assert page.problems == []
    page.close()
