"""The web page in real headless Chromium: type a start text, press Generate, watch text stream in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_serve import make_checkpoint, running_server

CHROMIUM = Path(os.environ.get("RNNKIT_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium: bash .ci/install-browser)"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    checkpoint = make_checkpoint(tmp_path_factory.mktemp("run"))
    with running_server(checkpoint, "--max_length", "5000000") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.set_default_timeout(30_000)
            page.goto(url)
            yield page
        finally:
            browser.close()


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
