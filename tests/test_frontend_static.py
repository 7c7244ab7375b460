"""The static lab's files: index.html asks for every module and stylesheet up front (a new one
must be listed there, or the first paint waits for the import chain again), and no module
parses strings as HTML."""

from __future__ import annotations

import re
from pathlib import Path

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"


def test_index_preloads_every_module_and_stylesheet() -> None:
    html = (FRONTEND / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)">', html))
    styles = set(re.findall(r'<link rel="stylesheet" href="([^"]+)"', html))
    modules = {p.name for p in FRONTEND.glob("*.js")} - {"app.js"}
    sheets = {p.name for p in FRONTEND.glob("*.css")}
    assert modules - preloaded == set(), "modules missing from index.html's modulepreload links"
    assert sheets - styles == set(), "stylesheets missing from index.html"
    assert preloaded <= modules and styles <= sheets, "index.html names files that do not exist"
    # Plotly must not block the first paint: preloaded, then run by plotly-loader.js.
    assert '<script src="/vendor/plotly.min.js"' not in html


def test_no_module_writes_html_strings_into_the_page() -> None:
    """Server data reaches the DOM as text (textContent, attributes), never parsed as HTML."""
    sinks = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|"
                       r"createContextualFragment|DOMParser")
    for module in sorted(FRONTEND.glob("*.js")):
        code = "\n".join(line for line in module.read_text().splitlines()
                         if not line.lstrip().startswith(("//", "*", "/*")))
        assert not sinks.search(code), f"{module.name} writes HTML: {sinks.search(code).group()}"
