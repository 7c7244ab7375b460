"""The API process validates specs and serves stored figures without torch: a real
`epoque serve --no-worker` answers every endpoint that does not compute with no torch mapped in
its memory; the ones that compute (previews here) load it on demand."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from bench.api_process import launch, stop
from tests.conftest import ROOT

HEAVY = ("torch", "torchvision", "sklearn", "numpy", "scipy")


def test_importing_the_api_and_the_spec_loads_no_torch() -> None:
    probe = (
        "import sys\n"
        "import backend.cli, backend.app\n"
        "from backend.app import create_app\n"
        "create_app()\n"
        "from worker.engine import Spec, parse_spec\n"
        "from worker.engine.spec import pack_key\n"
        "from worker.engine.datasets import CATALOG, describe_datasets\n"
        "pack_key(parse_spec({'data': {'dataset': 'moons'}}))\n"
        "describe_datasets()\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def _torch_mapped(pid: int) -> bool:
    """Whether torch's shared library is mapped into the process (torch was imported)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real `epoque serve --no-worker` on its own embedded database and broker (started as
    the benchmark of this process starts it)."""
    proc, base, _ = launch(str(tmp_path))
    try:
        yield base, proc.pid
    finally:
        stop(proc)


def _zip_of_two_classes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for label, colour in (("cats", (200, 0, 0)), ("dogs", (0, 0, 200))):
            for i in range(2):
                png = io.BytesIO()
                Image.new("RGB", (10, 10), colour).save(png, format="PNG")
                z.writestr(f"{label}/{i}.png", png.getvalue())
    return out.getvalue()


def test_the_api_process_serves_without_torch_until_something_computes(api) -> None:
    base, pid = api
    assert not _torch_mapped(pid)
    with httpx.Client(base_url=base, timeout=60) as c:
        def ok(response: httpx.Response, status: int = 200) -> dict | list:
            assert response.status_code == status, (response.request.url, response.text)
            return response.json()

        assert ok(c.get("/api/health"))["status"] == "ok"
        assert "properties" in ok(c.get("/api/spec/schema"))
        presets = ok(c.get("/api/presets"))
        run = ok(c.post("/api/runs", json={"data": {"dataset": "moons"}, "augment": []}), 201)
        bad = ok(c.post("/api/runs", json={"data": {"dataset": "imagenet"}}), 422)
        assert bad["detail"][0]["field"] == "data.dataset"
        assert run["id"] in [r["id"] for r in ok(c.get("/api/runs"))]
        ok(c.get(f"/api/runs/{run['id']}"))
        ok(c.get(f"/api/runs/{run['id']}/metrics"))
        assert c.get(f"/api/runs/{run['id']}/metrics.csv").status_code == 200
        ok(c.post(f"/api/runs/{run['id']}/cancel"))
        study = ok(c.post("/api/studies", json={"base": {"training": {"max_epochs": 2}},
                                                 "grid": {"optim.lr": [0.05, 0.1]},
                                                 "seeds": 2}), 201)
        assert len(study["runs"]) == 4
        ok(c.get("/api/studies"))
        ok(c.get(f"/api/studies/{study['id']}"))
        launched = ok(c.post(f"/api/presets/{presets[0]['id']}/launch"), 201)
        assert launched["kind"] in ("run", "study")
        datasets = {d["name"]: d for d in ok(c.get("/api/datasets"))}
        assert datasets["moons"]["kind"] == "2d" and datasets["digits"]["available"]
        upload = ok(c.post("/api/datasets", files={"file": ("pets.zip", _zip_of_two_classes(),
                                                            "application/zip")}), 201)
        assert upload["name"] in [d["name"] for d in ok(c.get("/api/datasets"))]
        guides = ok(c.get("/api/guides"))
        ok(c.get(f"/api/guides/{guides[0]['lesson']}"))
        assert not _torch_mapped(pid)

        # A preview computes: it loads torch in the API process, on demand.
        preview = ok(c.post("/api/previews/augment", json={
            "dataset": "digits", "augment": [{"op": "random_crop", "padding": 1}], "n": 2}))
        assert len(preview["samples"]) == 2
        assert _torch_mapped(pid)
