"""The ``epoque`` command as a user runs it: real subprocesses, a real ``epoque serve``."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import torch
from PIL import Image

from bench.api_process import stop
from tests.conftest import free_port, wait_for


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment without any EPOQUE_* setting of the caller's, plus the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOQUE_")}
    return {**env, "EPOQUE_DATA_DIR": str(tmp_path / "data"), **extra}


def epoque(args: list[str], env: dict[str, str], cwd: Path,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_train_writes_metrics_result_and_model(tmp_path: Path) -> None:
    spec = tmp_path / "two-epochs.yaml"
    spec.write_text("name: cli run\nmodel:\n  hidden: [32]\ntraining:\n  max_epochs: 2\n")
    done = epoque(["train", str(spec)], _env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "runs" / "two-epochs"  # the default folder: runs/<spec file name>
    summary = json.loads(done.stdout)
    assert summary["status"] == "succeeded" and summary["folder"] == "runs/two-epochs"

    with (out / "metrics.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["key", "x", "value"]
    by_key: dict[str, list[int]] = {}
    for key, x, _value in rows[1:]:
        by_key.setdefault(key, []).append(int(x))
    assert by_key["val_accuracy"] == [1, 2] and by_key["train_loss"] == [1, 2]
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "succeeded" and result["epochs_run"] == 2
    assert result == {"status": "succeeded", **summary["result"]}
    model = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert model["spec"]["name"] == "cli run" and model["classes"] == [str(i) for i in range(10)]
    assert any(t.shape[0] == 32 for t in model["state_dict"].values())  # hidden: [32]


def test_train_on_an_uploaded_folder_under_the_data_root(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / "uploads" / "colours1" / label).mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (10, 10), (colour[0], colour[1] + 3 * i, colour[2])).save(
                root / "uploads" / "colours1" / label / f"{i}.png")
    spec = tmp_path / "folder.yaml"
    spec.write_text("data:\n  dataset: folder:colours1\ntraining:\n  max_epochs: 1\n")
    done = epoque(["train", str(spec), "--data-root", str(root), "--out", str(tmp_path / "out")],
                  _env(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    model = torch.load(tmp_path / "out" / "model.pt", map_location="cpu", weights_only=True)
    assert model["classes"] == ["blue", "red"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: bad\noptim:\n  momentum: 0.9\n  lr: -1\n", r"bad\.yaml:4: optim\.lr: .*greater than 0"),
        ("training:\n  max_epochs: 2\n  patience_typo: 3\n",
         r"bad\.yaml:3: training\.patience_typo: Extra inputs are not permitted"),
        ("model:\n  hidden: [32, 0]\n", r"bad\.yaml:2: model\.hidden\.1: "),
        ("name: [unclosed\n", r"bad\.yaml:2: not valid YAML"),
        ("- just\n- a list\n", r"bad\.yaml:1: a spec is a mapping"),
    ],
)
def test_train_with_a_bad_file_names_file_line_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    done = epoque(["train", str(spec)], _env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert re.search(rf"^error: {re.escape(str(tmp_path))}/{expected}", done.stderr, re.MULTILINE), \
        done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., tuple[str, subprocess.Popen[str]]]]:
    """Start ``epoque serve`` on a free port; return its URL once it answers."""
    procs: list[subprocess.Popen[str]] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen[str]]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), *args],
            cwd=tmp_path, env=env or _env(tmp_path), stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        # What it writes to stderr, read as it comes (a full pipe would stall the server).
        proc.said = []  # type: ignore[attr-defined]
        proc.reader = threading.Thread(target=lambda: proc.said.extend(proc.stderr), daemon=True)  # type: ignore[attr-defined]
        proc.reader.start()  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, f"epoque serve exited with {proc.returncode}"
            try:
                return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 90, "epoque serve to answer")
        return url, proc

    yield _start
    for proc in procs:
        if proc.poll() is None:
            stop(proc)


def test_submit_sends_the_spec_to_a_running_lab(tmp_path: Path, serve) -> None:
    url, _ = serve("--no-worker")
    spec = tmp_path / "sweep.yaml"
    spec.write_text("name: submitted\noptim:\n  lr: 0.05\ntraining:\n  max_epochs: 3\n")
    done = epoque(["submit", str(spec), "--url", url], _env(tmp_path), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == "queued" and answer["url"] == f"{url}/#/runs/{answer['id']}"
    run = httpx.get(f"{url}/api/runs/{answer['id']}").json()
    assert run["name"] == "submitted" and run["spec"]["optim"]["lr"] == 0.05
    assert run["progress"]["max_epochs"] == 3

    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: nope\n")
    refused = epoque(["submit", str(bad), "--url", url], _env(tmp_path), cwd=tmp_path, timeout=60)
    assert refused.returncode == 2 and f"{bad}:2: optim.lr: " in refused.stderr
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = epoque(["submit", str(spec), "--url", nobody], _env(tmp_path), cwd=tmp_path,
                         timeout=60)
    assert unreachable.returncode == 1 and f"cannot reach {nobody}" in unreachable.stderr
    assert "Traceback" not in refused.stderr + unreachable.stderr
    assert [r["id"] for r in httpx.get(f"{url}/api/runs").json()] == [answer["id"]]


def test_generate_token_guards_writes_with_a_printed_token(tmp_path: Path, serve) -> None:
    url, proc = serve("--no-worker", "--generate-token")
    # Printed before the lab answers, so it is among what was said by then.
    match = re.search(r"^API token for this lab \(send as 'Authorization: Bearer …'\): (\S+)$",
                      "".join(proc.said), re.MULTILINE)
    assert match, "".join(proc.said)
    token = match.group(1)
    assert len(token) >= 24
    assert httpx.post(f"{url}/api/runs", json={}).status_code == 401
    assert httpx.post(f"{url}/api/runs", json={},
                      headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    made = httpx.post(f"{url}/api/runs", json={}, headers={"Authorization": f"Bearer {token}"})
    assert made.status_code == 201
    assert httpx.get(f"{url}/api/runs").status_code == 200  # reads stay open

    # `epoque submit` sends EPOQUE_API_TOKEN when it is set (the README has users export it).
    spec = tmp_path / "s.yaml"
    spec.write_text("name: with token\n")
    without = epoque(["submit", str(spec), "--url", url], _env(tmp_path), cwd=tmp_path, timeout=60)
    assert without.returncode == 1 and "401" in without.stderr
    with_token = epoque(["submit", str(spec), "--url", url],
                        _env(tmp_path, EPOQUE_API_TOKEN=token), cwd=tmp_path, timeout=60)
    assert with_token.returncode == 0, with_token.stderr
    assert json.loads(with_token.stdout)["status"] == "queued"

    # A token already set is kept: none is generated, none printed.
    url2, proc2 = serve("--no-worker", "--generate-token",
                        env=_env(tmp_path / "second", EPOQUE_API_TOKEN="set-by-the-operator"))
    assert httpx.post(f"{url2}/api/runs", json={},
                      headers={"Authorization": "Bearer set-by-the-operator"}).status_code == 201
    proc2.terminate()
    proc2.wait(timeout=20)
    proc2.reader.join(timeout=20)  # everything it said, to the end
    said = "".join(proc2.said)
    assert "Époque lab on" in said
    assert "API token for this lab" not in said and "set-by-the-operator" not in said
