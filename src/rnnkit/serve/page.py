"""The shared look of rnnkit's pages, without the server's dependencies (export uses it too)."""

from __future__ import annotations

from importlib import resources


def page_with_style(page: str) -> str:
    """A page template with the shared stylesheet (static/style.css) put in its {{style}} slot."""
    css = (resources.files("rnnkit.serve") / "static" / "style.css").read_text(encoding="utf-8")
    return page.replace("{{style}}", css, 1)
