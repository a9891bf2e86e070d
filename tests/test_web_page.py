"""The web page in real headless Chromium: type a start text, press Generate, watch text stream in."""

from __future__ import annotations

import itertools

import httpx
import pytest
from helpers_browser import needs_chromium
from helpers_serve import TEXT, make_checkpoint, ngram_record, running_server

pytestmark = needs_chromium


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.set_default_timeout(30_000)
    page.goto(url)
    return page


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    checkpoint = make_checkpoint(tmp_path_factory.mktemp("run"))
    with running_server(checkpoint, "--max_length", "5000000") as url:
        yield url


@pytest.fixture(scope="module")
def page(server, browser):
    page = open_page(browser, server)
    yield page
    page.close()


def test_generate_streams_text(page):
    from playwright.sync_api import expect

    expect(page.locator("#model")).to_contain_text("LSTM 1×32")  # GET /model filled it in
    page.fill("#start", "The dog")
    page.fill("#temperature", "0.5")
    page.fill("#length", "300")
    expect(page.locator("#temperature-value")).to_have_text("0.50")
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done: 300 characters")
    output = page.locator("#output").inner_text()
    assert output.startswith("The dog") and len(output) == len("The dog") + 300
    assert page.locator("#output .prime").inner_text() == "The dog"  # the start text, dimmed
    expect(page.locator("#generate")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()


def test_the_header_names_the_ngram_and_the_loss_of_what_is_sampled(tmp_path, browser):
    from playwright.sync_api import expect

    record = ngram_record(tmp_path / "run", TEXT, order=3, weight=0.25, val_loss_mixed=1.7)
    checkpoint = make_checkpoint(tmp_path / "run", meta={"ngram": record, "val_loss": 1.9})
    with running_server(checkpoint) as url:
        page = open_page(browser, url)
        expect(page.locator("#model")).to_contain_text("+ 3-gram, network weight 0.25")
        expect(page.locator("#model")).to_contain_text("val loss 1.700 (network alone 1.900)")
        page.close()
    with running_server(checkpoint, "--no_ngram") as url:  # the network alone: its own loss, no n-gram
        page = open_page(browser, url)
        expect(page.locator("#model")).to_contain_text("val loss 1.900")
        assert "gram" not in page.locator("#model").inner_text() and "alone" not in page.locator("#model").inner_text()
        page.close()


def test_stop_ends_a_long_generation(page):
    from playwright.sync_api import expect

    page.fill("#start", "")
    page.fill("#length", "5000000")  # minutes of text even for the fast sampler: it cannot finish before Stop
    page.click("#generate")
    page.wait_for_function("document.querySelector('#output').textContent.length > 20")
    expect(page.locator("#status")).to_contain_text("Generating…")
    page.click("#stop")
    expect(page.locator("#status")).to_contain_text("Stopped after")
    assert 20 < len(page.locator("#output").inner_text()) < 5_000_000
    expect(page.locator("#generate")).to_be_enabled()


def test_errors_are_shown(page):
    from playwright.sync_api import expect

    page.fill("#start", "x" * 10_001)  # over the server's start text limit
    page.click("#generate")
    expect(page.locator("#status.error")).to_contain_text("start_text must be at most 10000 characters")


# ---- top-k, top-p, seed and list mode -----------------------------------------------------------
def fill_and_generate(page, values: dict[str, str]) -> None:
    """Set each control (the mode is a select, the rest are filled), then press Generate."""
    for selector, value in values.items():
        if selector == "#mode":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#generate")


def test_seed_top_k_and_top_p_reach_the_server(page, server):
    from playwright.sync_api import expect

    fill_and_generate(page, {"#mode": "text", "#start": "The dog", "#temperature": "1.5", "#length": "200",
                             "#seed": "42", "#top-k": "3", "#top-p": "0.9"})
    expect(page.locator("#status")).to_contain_text("Done: 200 characters")
    expect(page.locator("#status")).to_contain_text("seed 42")
    body = {"start_text": "The dog", "length": 200, "temperature": 1.5, "top_k": 3, "top_p": 0.9, "seed": 42}
    expected = httpx.post(f"{server}/generate", json=body, timeout=30).json()["samples"][0]
    assert page.locator("#output").inner_text() == expected  # the same settings give the same text
    page.fill("#top-k", "")
    page.fill("#top-p", "")


def test_an_empty_seed_is_drawn_and_shown_so_a_run_repeats(page):
    from playwright.sync_api import expect

    fill_and_generate(page, {"#mode": "text", "#start": "Anna", "#length": "100", "#seed": ""})
    expect(page.locator("#status")).to_contain_text("Done: 100 characters")
    first = page.locator("#output").inner_text()
    seed = page.locator("#status").inner_text().rsplit("seed ", 1)[1]
    page.fill("#seed", seed)
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done: 100 characters in")
    assert page.locator("#output").inner_text() == first


def test_list_mode_without_training_text_says_so(page):
    from playwright.sync_api import expect

    page.fill("#start", "")
    page.fill("#seed", "5")
    page.select_option("#mode", "list")
    expect(page.locator("#length")).to_be_hidden()
    expect(page.locator("#novel-note")).to_contain_text("cannot tell new lines from old")
    expect(page.locator("#novel")).to_be_disabled()
    page.fill("#count", "4")
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done: 4 lines")
    assert len(page.locator("#output").inner_text().split("\n")) == 4
    page.select_option("#mode", "text")


def test_lines_api_checks_its_fields(server):
    def post(body):
        return httpx.post(f"{server}/lines", json=body, timeout=30)

    info = httpx.get(f"{server}/model", timeout=10).json()["lines"]
    assert info["max_count"] == 100 and info["novel"] is False and "training text" in info["novel_note"]
    for body, field in [({"count": 0}, "count"), ({"count": 101}, "count"), ({"novel": "yes"}, "novel"),
                        ({"novel": True}, "novel"), ({"min_chars": 9, "max_chars": 3}, "max_chars"),
                        ({"top_k": 0}, "top_k"), ({"length": 5}, "length")]:
        r = post(body)
        assert r.status_code == 400 and r.json()["field"] == field, (body, r.json())
    r = post({"count": 3, "seed": 1, "start_text": "A"})
    assert r.status_code == 200 and len(r.json()["lines"]) == 3 and all(x.startswith("A") for x in r.json()["lines"])
    assert post({"count": 3, "seed": 1, "start_text": "A"}).json() == r.json()  # seeded: repeatable


@pytest.fixture(scope="module")
def lines_server(tmp_path_factory):
    """A model over a, b and newline whose training text is every line of 1 to 4 of those letters:
    untrained, it ends a line about one character in three, so most lines it writes are training lines."""
    folder = tmp_path_factory.mktemp("lines")
    train = {"".join(p) for n in range(1, 5) for p in itertools.product("ab", repeat=n)}
    (folder / "train.txt").write_text("\n".join(sorted(train)) + "\n", encoding="utf-8")
    checkpoint = make_checkpoint(folder / "run", text="ab\n", meta={"data": {"sources": [str(folder / "train.txt")]}})
    with running_server(checkpoint) as url:
        yield url, train


def test_list_mode_writes_only_new_lines(lines_server, browser):
    from playwright.sync_api import expect

    url, train = lines_server
    page = open_page(browser, url)
    page.select_option("#mode", "list")
    expect(page.locator("#novel")).to_be_checked()
    expect(page.locator("#novel")).to_be_enabled()
    expect(page.locator("#novel-note")).to_be_hidden()
    page.fill("#count", "8")
    page.fill("#seed", "3")
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done: 8 new lines")
    shown = page.locator("#output").inner_text().split("\n")
    assert len(shown) == len(set(shown)) == 8 and not set(shown) & train
    body = {"count": 8, "novel": True, "seed": 3, "temperature": 0.8, "start_text": "", "skip_unknown": True}
    assert httpx.post(f"{url}/lines", json=body, timeout=30).json()["lines"] == shown  # what the page asked for

    page.uncheck("#novel")  # without the filter, training lines come back: the filter is what keeps them out
    page.fill("#count", "20")
    page.click("#generate")
    expect(page.locator("#status")).to_contain_text("Done: 20 lines")
    assert set(page.locator("#output").inner_text().split("\n")) & train
    page.close()
