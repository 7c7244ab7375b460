"""Uploads of huge images: the API process's extra memory while three are processed at once.

Issue 16 measured +1.9 GB in the API for one 490 KB zip of ten 4096² BMPs (5.8 GB for three):
every image was decoded in the API process. Now the API copies each zip to disk and hands its
images to spawned decoder processes (EPOQUE_DATASET_PROCESSES). This starts a fresh
`epoque serve --no-worker`, reads its resident memory after one small upload (Pillow, numpy and
the decoder pool started), then sends three such zips at once and samples its memory every
20 ms until all three are answered. The decoders' own peak and the API's CPU time are noted.
A second row: the API's CPU time while one zip of 200 4096² PNGs is processed (13.4 s before).
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
from PIL import Image

from bench.api_process import cpu_seconds, launch, rss_mb, stop
from bench.common import Row

EXTRA_TARGET_MB = 300.0
API_CPU_TARGET_S = 1.0


def _zip(side: int, per_class: int, fmt: str = "BMP") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            blob = io.BytesIO()
            Image.new("RGB", (side, side), colour).save(blob, format=fmt)
            for i in range(per_class):
                z.writestr(f"{label}/{i}.{fmt.lower()}", blob.getvalue())
    return out.getvalue()


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _tree_rss(pid: int) -> float:
    total = 0.0
    for child in _children(pid):
        try:
            total += rss_mb(child) + _tree_rss(child)
        except (OSError, RuntimeError):
            pass
    return total


def run(smoke: bool = False) -> list[Row]:
    side, per_class = (1024, 2) if smoke else (4096, 5)
    data = _zip(side, per_class)
    proc, base, _ = launch(tempfile.mkdtemp(prefix="epoque-bench-uploads-"))
    try:
        with httpx.Client(base_url=base, timeout=600) as c:
            c.post("/api/datasets", files={"file": ("warm.zip", _zip(16, 2))}).raise_for_status()
        baseline = rss_mb(proc.pid)
        cpu_before = cpu_seconds(proc.pid)
        answers: list[int] = []

        def upload(k: int) -> None:
            with httpx.Client(base_url=base, timeout=600) as c:
                answers.append(c.post("/api/datasets",
                                      files={"file": (f"huge{k}.zip", data)}).status_code)

        threads = [threading.Thread(target=upload, args=(k,)) for k in range(3)]
        peak, decoders = baseline, 0.0
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(proc.pid))
            decoders = max(decoders, _tree_rss(proc.pid))
            time.sleep(0.02)
        for t in threads:
            t.join()
        cpu = cpu_seconds(proc.pid) - cpu_before
        # Issue 16's other case: 200 4096² PNGs in a 55 KB zip took 13.4 s of the API's CPU.
        pngs = _zip(side, 2 if smoke else 100, "PNG")
        cpu_png = cpu_seconds(proc.pid)
        started = time.perf_counter()
        with httpx.Client(base_url=base, timeout=900) as c:
            c.post("/api/datasets", files={"file": ("pngs.zip", pngs)}).raise_for_status()
        png_seconds = time.perf_counter() - started
        cpu_png = cpu_seconds(proc.pid) - cpu_png
    finally:
        stop(proc)
    if answers != [201, 201, 201]:
        raise RuntimeError(f"uploads answered {answers}")
    extra = peak - baseline
    return [Row(f"API process's extra memory while 3 uploads of {2 * per_class} {side}² BMPs "
                f"({len(data) // 1024} KB zips) are processed at once", "target",
                EXTRA_TARGET_MB, "Époque", extra, "MB", f"≤ {EXTRA_TARGET_MB:.0f} MB",
                extra <= EXTRA_TARGET_MB,
                note=f"API {baseline:.0f} → peak {peak:.0f} MB, its CPU {cpu:.2f} s; "
                     f"decoder processes' peak {decoders:.0f} MB"),
            Row(f"API process's CPU time while one zip of {4 if smoke else 200} {side}² PNGs "
                f"({len(pngs) // 1024} KB) is processed", "target", API_CPU_TARGET_S, "Époque",
                cpu_png, "s", f"≤ {API_CPU_TARGET_S:.0f} s", cpu_png <= API_CPU_TARGET_S,
                note=f"answered 201 after {png_seconds:.1f} s, decoded in the decoder process")]
