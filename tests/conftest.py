"""Shared fixtures: real databases (SQLite file, this machine's PostgreSQL), real brokers."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# Tests own one Redis database index; TEST_REDIS_DB moves it, so that two checkouts can test at once.
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('TEST_REDIS_DB', '11')}"

# No setting of the shell reaches the tests (the README tells users to export several), and
# modules that read the settings at import (worker/celery_app.py builds its Celery app, and
# get_settings() creates the data dir) see a throwaway data dir, never ./data in the checkout.
for _key in [k for k in os.environ if k.startswith("EPOQUE_")]:
    del os.environ[_key]
_IMPORT_DATA_DIR = tempfile.mkdtemp(prefix="epoque-tests-")
atexit.register(shutil.rmtree, _IMPORT_DATA_DIR, ignore_errors=True)
os.environ["EPOQUE_DATA_DIR"] = _IMPORT_DATA_DIR

# Markers follow from what a test uses, so none is forgotten (`-m "not postgres"` and the like).
_MARK_BY_FIXTURE = {"pg_url": "postgres", "pg_server": "postgres", "redis_url": "redis"}
_MARK_BY_MODULE = {"test_secrets.py": ("redis", "postgres")}  # its own redis-server binary


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marks = {mark for name, mark in _MARK_BY_FIXTURE.items() if name in item.fixturenames}
        callspec = getattr(item, "callspec", None)  # db_url's and the like's "postgres" case
        if callspec is not None and any(isinstance(v, str) and v == "postgres"
                                        for v in callspec.params.values()):
            marks.add("postgres")
        marks.update(_MARK_BY_MODULE.get(item.path.name, ()))
        if "e2e" in item.path.parts:
            marks.add("browser")
        for mark in sorted(marks):
            item.add_marker(mark)


def _clear_cached_settings() -> None:
    from backend.broker import celery_client
    from backend.config import get_settings

    get_settings.cache_clear()
    celery_client.cache_clear()


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts from the defaults, with a data dir of its own: no EPOQUE_* variable set
    by the shell or an earlier test, no settings or Celery client cached from another test."""
    for key in [k for k in os.environ if k.startswith("EPOQUE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("EPOQUE_DATA_DIR", str(tmp_path / "data"))
    _clear_cached_settings()
    yield
    _clear_cached_settings()


def _pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 (.ci/run starts it)")
    return PG_ADMIN


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    name = f"epoque_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    from backend.db import engine_for

    engine_for(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}").dispose()
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.fail("Redis is not reachable on 127.0.0.1:6379 (.ci/run starts it)")
    client.flushdb()  # our own database index: leftovers of an earlier test would be consumed
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'epoque.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., dict[str, str]]:
    """Point the settings at a database and broker, apply the migrations, return the env."""
    from backend.migrate import upgrade

    def _configure(database_url: str | None = None, broker_url: str | None = None) -> dict[str, str]:
        # TestClient's requests name the host "testserver": allowed here besides loopback.
        env = {"EPOQUE_DATA_DIR": str(tmp_path / "data"),
               "EPOQUE_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost,::1"}
        if database_url:
            env["EPOQUE_DATABASE_URL"] = database_url
        if broker_url:
            env["EPOQUE_BROKER_URL"] = broker_url
        for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        _clear_cached_settings()
        upgrade()
        return env

    return _configure


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], subprocess.Popen[bytes]]]:
    """Start real ``epoque worker`` processes; they are stopped at the end of the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def _start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        """``args``: more ``epoque worker`` options (``--queues gpu``); the log is ``proc.log``."""
        path = tmp_path / f"worker-{len(procs)}.log"
        log = open(path, "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker", "--loglevel", "INFO", *args],
            # On the CPU unless the test says otherwise: the tests compare its figures with
            # runs trained on the CPU (a GPU machine would pick CUDA for "auto").
            cwd=ROOT, env={"EPOQUE_DEVICE": "cpu", **os.environ, **env}, stdout=log,
            stderr=subprocess.STDOUT,
        )
        proc.log = path  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


class Hold:
    """Drives worker/testhold.py: the workers a test starts stop each run at the end of an
    epoch until the test lets it go on, so "still running at epoch N" needs no timing."""

    RELEASED = 10**9

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _write(self, name: str, epoch: int) -> None:
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(str(epoch))
        tmp.replace(self.folder / name)  # atomic: the worker never reads half a number

    def every_run_at(self, epoch: int) -> None:
        """Every run (without a limit of its own) waits at the end of ``epoch``."""
        self._write("all", epoch)

    def run_until(self, run_id: int, epoch: int) -> None:
        """Run ``run_id`` goes on to the end of ``epoch`` and waits there."""
        self._write(f"run-{run_id}", epoch)

    def release(self, run_id: int) -> None:
        self.run_until(run_id, self.RELEASED)

    def release_all(self) -> None:
        """Lift ``every_run_at`` (runs with a limit of their own keep it)."""
        (self.folder / "all").unlink(missing_ok=True)

    def held_runs(self) -> set[int]:
        """The runs waiting now."""
        return {int(p.name[len("run-"):-len(".held")]) for p in self.folder.glob("run-*.held")}

    def held_at(self, run_id: int, epoch: int, timeout: float = 120) -> None:
        """Wait until run ``run_id`` waits at the end of ``epoch`` (its points stored)."""
        held = self.folder / f"run-{run_id}.held"

        def there() -> bool:
            try:
                return held.read_text() == str(epoch)
            except FileNotFoundError:
                return False

        wait_for(there, timeout, f"run {run_id} held at epoch {epoch}", every=0.02)


@pytest.fixture
def hold(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Hold:
    """Workers started after this fixture honour the hold (its folder is in their env)."""
    folder = tmp_path / "hold"
    folder.mkdir()
    monkeypatch.setenv("EPOQUE_TEST_HOLD_DIR", str(folder))
    return Hold(folder)
