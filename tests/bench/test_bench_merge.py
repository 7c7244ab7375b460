"""`python -m bench --only NAME` replaces its own rows of BENCHMARKS.md and keeps the others."""

from __future__ import annotations

from bench.__main__ import merge

OLD = """# Benchmarks

Measured once.

| benchmark | baseline | Époque | ratio | target | met |
|---|---|---|---|---|---|
| kept | a | b | 1 | t | yes |
| redone | a | b | 1 | t | yes |

A note under the table.
"""
NEW = """# Benchmarks

| benchmark | baseline | Époque | ratio | target | met |
|---|---|---|---|---|---|
| redone | a | c | 2 | t | **no** |
| added | a | d | 3 | t | yes |
"""


def test_a_partial_run_replaces_its_rows_and_keeps_the_rest() -> None:
    lines = merge(OLD, NEW, ["x"]).splitlines()
    rows = [line for line in lines if line.startswith("| ") and "benchmark" not in line]
    assert rows == ["| kept | a | b | 1 | t | yes |", "| redone | a | c | 2 | t | **no** |",
                    "| added | a | d | 3 | t | yes |"]
    assert "A note under the table." in lines and "Measured once." in lines
    assert lines[-1].startswith("Re-measured ") and "--only x" in lines[-1]
