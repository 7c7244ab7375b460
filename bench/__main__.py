"""`make bench`: run every benchmark and write BENCHMARKS.md (``--smoke``: tiny sizes, no file).

Usage: python -m bench [--smoke] [--only NAME ...] [--out BENCHMARKS.md] [--device cpu|cuda[:N]]

``--device`` is the device of the GPU benchmark (bench/gpu.py, also EPOQUE_BENCH_DEVICE); the
other benchmarks ignore it. ``make bench DEVICE=cuda`` passes it.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

from bench.common import Row, cores

BENCHMARKS = ["quality", "engine_speed", "threads", "persisted", "ensembles", "metrics_history",
              "stream", "studies", "first_paint", "gpu", "api_process", "attacks",
              "classroom", "uploads", "presets"]


def device_arg(value: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"{value!r}: expected cpu, cuda or cuda:N")
    return value


def machine() -> str:
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    return (f"{cores()} cores ({platform.processor() or platform.machine()}), Python "
            f"{platform.python_version()}, torch {torch.__version__}, device: {device}")


def render(rows: list[tuple[str, Row]], seconds: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        (f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC on {machine()}, "
         f"in {seconds:.0f} s, by `make bench`. Every figure is a median of several "
         "repetitions; each ratio compares Époque with a baseline measured in the same run."),
        "",
        "| benchmark | baseline | Époque | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in rows:
        met = "—" if r.ok is None else ("yes" if r.ok else "**no**")
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.benchmark} | {r.baseline}: {r.baseline_value:.4g} {r.unit} | {r.epoque}: "
            f"{r.epoque_value:.4g} {r.unit} | {r.ratio:.3f}{note} | {r.target} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, checks they still run")
    parser.add_argument("--only", nargs="*", default=None, choices=BENCHMARKS)
    parser.add_argument("--out", default="BENCHMARKS.md")
    parser.add_argument("--device", type=device_arg, default=None,
                        help="device of the GPU benchmark: cpu (default; it is then skipped "
                        "outside --smoke), cuda or cuda:N")
    args = parser.parse_args(argv)
    if args.device:
        os.environ["EPOQUE_BENCH_DEVICE"] = args.device  # bench.gpu.DEVICE_ENV
    # As the API and worker processes do (gc.freeze after start-up), so that the runs timed
    # here in process and those timed in a worker pay the same for garbage collection.
    gc.freeze()
    started = time.perf_counter()
    rows: list[tuple[str, Row]] = []
    for name in args.only or BENCHMARKS:
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        for row in module.run(smoke=args.smoke):
            rows.append((name, row))
            print(f"[bench]   {row.benchmark}: ratio {row.ratio:.3f} ({row.target})",
                  file=sys.stderr, flush=True)
    text = render(rows, time.perf_counter() - started)
    if args.smoke:
        print(text)
        return 0
    out = Path(args.out)
    if args.only and out.exists():
        # A partial run replaces its own rows and keeps every other row of the file.
        text = merge(out.read_text(), text, args.only)
    out.write_text(text)
    print(text)
    return 0


def merge(old: str, new: str, names: list[str]) -> str:
    """``old`` (a BENCHMARKS.md) with the table rows of ``new`` in place of the rows they share
    a benchmark name with, the rest of ``new``'s rows appended to the table, and a line saying
    when which benchmarks were re-measured."""
    fresh = [line for line in new.splitlines() if line.startswith("| ") and
             not line.startswith(("| benchmark ", "|---"))]
    by_name = {line.split(" | ")[0]: line for line in fresh}
    lines, placed = [], set()
    for line in old.splitlines():
        name = line.split(" | ")[0]
        if line.startswith("| ") and name in by_name:
            lines.append(by_name[name])
            placed.add(name)
        else:
            lines.append(line)
    table_end = max((i for i, line in enumerate(lines) if line.startswith("|")), default=len(lines) - 1)
    added = [line for name, line in by_name.items() if name not in placed]
    stamp = (f"Re-measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC by "
             f"`python -m bench --only {' '.join(names)}` on {machine()}: "
             f"{len(fresh)} row(s).")
    lines[table_end + 1:table_end + 1] = [*added]
    return "\n".join(lines).rstrip("\n") + "\n\n" + stamp + "\n"


if __name__ == "__main__":
    sys.exit(main())
