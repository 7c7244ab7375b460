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
              "stream", "studies", "first_paint", "gpu", "api_process", "presets"]


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
    else:
        Path(args.out).write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
