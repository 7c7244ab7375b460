#!/usr/bin/env bash
# Every GPU check of issue 19 in one go, for a session lent a GPU machine. Prepare HERE first:
#   scripts/gpu_wheels.sh            # .whl/: the web stack's wheels for the GPU machine
# then run on the device machine, from the repository root, in one call:
#   run(command="scripts/gpu_check.sh", carry=[".whl"], timeout_s=600)
# Parts (default all, in this order): tests (pytest -m cuda tests/engine/test_cuda.py),
# bench (python -m bench --only gpu), e2e (scripts/gpu_e2e.py: `epoque serve` with its worker
# on the device, a run and a seed study through the REST API, results and streamed points).
# Each part has its own time limit (T_TESTS 200 s, T_BENCH 240 s, T_E2E 120 s: 560 s with the
# setup inside one 600 s call; a part cut short says FAIL, exit 124, and keeps its partial log),
# so one that hangs leaves the others their time. `scripts/gpu_check.sh bench` runs one part.
# Everything
# is written to $OUT (at most 8 files come back from the device tool): machine.txt,
# test_cuda.log, bench_gpu.log, bench_gpu.md, gpu_e2e.json, gpu_e2e_server.log, summary.txt.
#
# EPOQUE_BENCH_DEVICE=cpu runs the same script on a machine without a GPU, to check it: the CUDA
# tests are skipped (they fail without CUDA, by design), the benchmark runs in --smoke sizes,
# and the lab runs with its worker on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PY=${PY:-python3}
DEVICE=${EPOQUE_BENCH_DEVICE:-cuda}
export EPOQUE_BENCH_DEVICE=$DEVICE PYTHONUNBUFFERED=1
T_TESTS=${T_TESTS:-200}
T_BENCH=${T_BENCH:-240}
T_E2E=${T_E2E:-120}
PARTS=${*:-tests bench e2e}
summary="$OUT/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }

# The web stack: from .whl/ where this Python lacks it (the GPU machine), never from a registry.
if ! "$PY" -c "import pydantic, fastapi, sqlalchemy, celery, plotly" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        note "FAIL setup: $PY lacks the web stack and there is no .whl/ (run scripts/gpu_wheels.sh here first)"
        exit 2
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || { note "FAIL setup: pip install --target"; exit 2; }
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true
    "$PY" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available(), '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'); print('cpus', __import__('os').cpu_count())"
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

status=0
for part in $PARTS; do
    start=$(date +%s)
    case $part in
    tests)
        if [ "${DEVICE%%:*}" = cuda ]; then
            # --noconftest: the suite's conftest needs PostgreSQL's driver and the test
            # services; the CUDA tests need neither.
            timeout "$T_TESTS" "$PY" -m pytest --noconftest -m cuda tests/engine/test_cuda.py \
                -s -q -p no:cacheprovider -o addopts="" >"$OUT/test_cuda.log" 2>&1
            rc=$?
        else
            echo "skipped: the CUDA tests need a GPU (EPOQUE_BENCH_DEVICE=$DEVICE)" >"$OUT/test_cuda.log"
            rc=0
        fi
        ;;
    bench)
        smoke=""
        [ "${DEVICE%%:*}" = cuda ] || smoke="--smoke"
        timeout "$T_BENCH" "$PY" -m bench --only gpu --device "$DEVICE" $smoke \
            --out "$OUT/bench_gpu.md" >"$OUT/bench_gpu.log" 2>&1
        rc=$?
        ;;
    e2e)
        timeout "$T_E2E" "$PY" scripts/gpu_e2e.py "$OUT" --seeds "${E2E_SEEDS:-16}" \
            --epochs "${E2E_EPOCHS:-10}" >/dev/null 2>&1
        rc=$?
        ;;
    *)
        note "unknown part $part"; rc=2 ;;
    esac
    if [ $rc -eq 0 ]; then word=ok; else word=FAIL; status=1; fi
    note "$word $part (exit $rc, $(( $(date +%s) - start )) s)"
done
# The figures, at the end of the summary: what the device tool's output tail shows first.
grep -h "^\[gpu\]" "$OUT/test_cuda.log" 2>/dev/null | tee -a "$summary"
grep -E "passed|failed|error" "$OUT/test_cuda.log" 2>/dev/null | tail -1 | tee -a "$summary"
if [ -f "$OUT/bench_gpu.md" ]; then grep "^|" "$OUT/bench_gpu.md"; else
    grep "^|" "$OUT/bench_gpu.log" 2>/dev/null; fi | tee -a "$summary"  # --smoke prints only
[ -f "$OUT/gpu_e2e.json" ] && "$PY" - "$OUT/gpu_e2e.json" <<'PYEOF' | tee -a "$summary"
import json, sys
f = json.load(open(sys.argv[1]))
run, study = f.get("run", {}), f.get("study", {})
print(f"e2e on {f['device']}: server up in {f.get('start_seconds')} s; run {run.get('status')} "
      f"in {run.get('seconds')} s, test accuracy {run.get('test_accuracy')}, speed "
      f"{(run.get('speed') or {}).get('chosen') or (run.get('speed') or {}).get('why')}, "
      f"{(run.get('stream') or {}).get('points')} points streamed; study of {study.get('runs')} "
      f"runs {study.get('statuses')} in {study.get('seconds')} s, packs {study.get('packs')}; "
      f"failures {f.get('failures')}")
PYEOF
exit $status
