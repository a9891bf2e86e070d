"""The shared parts of rnnkit's pages, without the server's dependencies (export uses them too):
the stylesheet (static/style.css) and the controls (static/controls.html)."""

from __future__ import annotations

import re
from importlib import resources

SERVE_ONLY = re.compile(r"\s*<!-- serve-only.*?<!-- /serve-only -->", re.S)


def page_with_style(page: str, serve: bool = True) -> str:
    """A page template with the shared stylesheet in its {{style}} slot and the shared controls in
    its {{controls}} slot; serve=False leaves out the controls only the server implements."""
    static = resources.files("rnnkit.serve") / "static"
    controls = (static / "controls.html").read_text(encoding="utf-8").split("\n", 1)[1]  # without its comment
    if not serve:
        controls = SERVE_ONLY.sub("", controls)
    page = page.replace("{{controls}}\n", controls, 1)
    return page.replace("{{style}}", (static / "style.css").read_text(encoding="utf-8"), 1)
