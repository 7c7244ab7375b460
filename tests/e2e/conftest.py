"""Browser tests: the real `epoque serve` (API, embedded broker, one worker) and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Hold, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
# What the browser tests write (screenshots, server logs): never a tracked file. The pictures
# the README shows land in ARTIFACTS/docs; `make screenshots` copies them to docs/img on purpose.
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_SHOTS = ARTIFACTS / "docs"
REPO = Path(__file__).resolve().parents[2]

def _epoque() -> str:
    beside = Path(sys.executable).parent / "epoque"
    found = str(beside) if beside.exists() else shutil.which("epoque")
    if not found:
        pytest.fail("the `epoque` command is not installed (pip install -e .)")
    return found


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@contextmanager
def serve(data_dir: Path, log_path: Path, *, port: int | None = None, worker: bool = True,
          env: dict[str, str] | None = None) -> Iterator[str]:
    """`epoque serve` on the embedded database and broker in ``data_dir``; yields its base URL
    once it answers (and, with ``worker``, once a worker listens), and stops it on exit."""
    port = port or free_port()
    full_env = {**os.environ, "EPOQUE_DATA_DIR": str(data_dir), **(env or {})}
    for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL"):
        full_env.pop(key, None)  # the embedded SQLite database and broker, whatever the shell says
    args = [_epoque(), "serve", "--port", str(port)] + ([] if worker else ["--no-worker"])
    with log_path.open("ab") as log:
        proc = subprocess.Popen(args, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            ready = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    health = httpx.get(f"{base}/api/health", timeout=2).json()
                    # A worker must be listening, or a launched run would only wait in the queue.
                    if health.get("workers") or not worker:
                        ready = True
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.25)
            if not ready:
                pytest.fail(f"`epoque serve` did not become ready; see {log_path}")
            yield base
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           artifacts: Path, hold_folder: Path) -> Iterator[str]:
    """The lab of one test module: its own data dir and embedded worker, so every module starts
    from an empty queue and a run one module leaves behind cannot slow the next. A module's
    ``SERVER_ENV`` adds settings (e.g. a pack decision that does not depend on timing)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    log_path = artifacts / f"server-{name}.log"
    log_path.unlink(missing_ok=True)
    env = {"EPOQUE_TEST_HOLD_DIR": str(hold_folder), **getattr(request.module, "SERVER_ENV", {})}
    with serve(tmp_path_factory.mktemp(f"epoque-data-{name}"), log_path, env=env) as base:
        yield base


@pytest.fixture(scope="module")
def hold_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hold")


@pytest.fixture
def hold(hold_folder: Path, server: str) -> Iterator[Hold]:
    """The module server's worker holds runs as the test says (worker/testhold.py); every
    hold is lifted when the test ends, so the next test's runs go freely."""
    yield Hold(hold_folder)
    for path in hold_folder.iterdir():
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"browser tests need Debian's Chromium at {CHROMIUM}: run scripts/provision "
                    "(or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: object, server: str) -> Iterator[object]:
    """A fresh page; any uncaught script error or failed load in the lab fails the test.
    A test that provokes an error answer on purpose adds its text to ``page.expected_errors``;
    one marked ``console_422`` sends a bad spec on purpose (Chromium logs the 422 answer)."""
    context = browser.new_context(base_url=server, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.expected_errors = []
    if request.node.get_closest_marker("console_422"):
        page.expected_errors.append("status of 422")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: object) -> None:
        if msg.type == "error" and not any(e in msg.text for e in page.expected_errors):
            errors.append(msg.text + " @ " + str(msg.location.get("url")))

    page.on("console", on_console)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page reported script errors: {errors}"
