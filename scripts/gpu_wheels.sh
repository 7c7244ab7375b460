#!/usr/bin/env bash
# Run HERE (a machine that reaches PyPI), in the repository root, before scripts/gpu_check.sh is
# sent to the GPU machine: that machine reaches no registry and has PyTorch, numpy, scikit-learn
# and scipy but not the lab's web stack (pydantic, FastAPI, SQLAlchemy, Celery, ...). This puts
# into .whl/ (git-ignored) a wheel of every package `epoque serve` needs that the GPU machine's
# image lacks (/work/.library/device/KINDS.md lists what it has), at the versions of this
# machine's environment, for CPython 3.12 on manylinux x86_64 (what the GPU machine runs).
# gpu_check.sh installs them there with `pip --target`. Usage: scripts/gpu_wheels.sh [PYTHON]
set -euo pipefail
PY=${1:-${PY:-/work/main/.venv/bin/python}}
mkdir -p .whl
pins=$("$PY" - <<'PYEOF'
import re
from importlib.metadata import PackageNotFoundError, distribution

# What `epoque serve` and its worker import beyond the engine.
ROOTS = ["fastapi", "uvicorn", "websockets", "sqlalchemy", "alembic", "celery", "kombu",
         "pydantic", "pydantic-settings", "python-multipart", "plotly", "pyyaml", "httpx"]
# On the GPU machine's image already (KINDS.md, 2026-11-17), except typing-extensions, which
# pydantic needs recent: carried at this machine's version.
THERE = {"anyio", "certifi", "click", "filelock", "h11", "httpcore", "httpx", "idna",
         "jinja2", "markupsafe", "narwhals", "numpy", "packaging", "python-dateutil", "pyyaml",
         "six", "sniffio", "tqdm", "uvloop", "msgpack", "psutil", "pygments", "rich",
         "annotated-doc", "typing-inspect", "mypy-extensions"}
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
seen, todo, pins = set(), [norm(r) for r in ROOTS], []
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        continue
    if name not in THERE:
        pins.append(f"{dist.metadata['Name']}=={dist.version}")
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        if ";" in req and ("python_version < \"3.1" in req or "sys_platform == \"win32\"" in req):
            continue
        todo.append(norm(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0]))
print(" ".join(sorted(pins)))
PYEOF
)
echo "wheels for: $pins"
# shellcheck disable=SC2086
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl $pins
du -sh .whl
