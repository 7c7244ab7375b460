"""index.html asks for every module and stylesheet up front (a new one must be listed there,
or the lab's first paint waits for the import chain again)."""

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
