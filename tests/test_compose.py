"""docker-compose.yml is valid: Debian's docker-compose parses it (no engine runs here)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def test_compose_file_validates_and_wires_the_distributed_mode() -> None:
    if shutil.which("docker-compose") is None:
        pytest.fail("Debian's docker-compose is missing (.ci/run installs it)")
    checked = subprocess.run(["docker-compose", "-f", str(COMPOSE), "--profile", "gpu", "config"],
                             capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stderr
    config = yaml.safe_load(checked.stdout)
    services = config["services"]
    assert set(services) == {"api", "worker", "gpu-worker", "redis", "postgres"}
    for name in ("api", "worker", "gpu-worker"):
        env = services[name]["environment"]
        assert env["EPOQUE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["EPOQUE_BROKER_URL"].startswith("redis://")
    assert "--no-worker" in services["api"]["command"]
    assert "--generate-token" in services["api"]["command"]  # beyond loopback: a token
    gpu = services["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
