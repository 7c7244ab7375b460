"""The ``epoque`` command: serve, worker, train, submit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from backend import logredact
from backend.supervisor import Supervisor

log = logging.getLogger("epoque")


def _embedded_worker() -> subprocess.Popen[bytes]:
    """One Celery worker child; it dies with us even if we are killed."""
    try:
        import ctypes

        # Loaded here, in the parent: the forked child (of a process with threads by now, as
        # the supervisor restarts workers while serving) only makes the call.
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        prctl = None

    def _die_with_parent() -> None:
        if prctl is not None:
            prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: sent when the supervising thread ends

    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "worker"],
        preexec_fn=_die_with_parent,  # noqa: PLW1509  (no lock taken, no import)
    )


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    # SIGQUIT: Celery's cold shutdown; a warm one would wait for a training run to finish.
    child.send_signal(signal.SIGQUIT)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.app import create_app
    from backend.auth import generate_token, is_loopback
    from backend.config import get_settings
    from backend.logredact import uvicorn_log_config
    from backend.migrate import upgrade

    settings = get_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    if host != settings.host:  # the app allows Host headers naming its host: --host's
        os.environ["EPOQUE_HOST"] = host
        get_settings.cache_clear()
        settings = get_settings()
    if args.generate_token and settings.api_token is None:
        token = generate_token()
        os.environ["EPOQUE_API_TOKEN"] = token
        get_settings.cache_clear()
        settings = get_settings()
        # Shown once, on the console of whoever started the lab; never logged.
        print(f"API token for this lab (send as 'Authorization: Bearer …'): {token}",
              file=sys.stderr, flush=True)
    if not is_loopback(host) and settings.api_token is None:
        print(f"error: serving on {host} (beyond this machine) needs an API token: set "
              "EPOQUE_API_TOKEN=<a long random string>, or start with --generate-token to "
              "have one made and printed", file=sys.stderr)
        return 2
    upgrade()
    supervisor = None
    if not args.no_worker:
        # Restarted whenever it dies (the OOM killer's SIGKILL included), with a back-off.
        supervisor = Supervisor(_embedded_worker)
        threading.Thread(target=supervisor.run, name="embedded-worker", daemon=True).start()
    # The event loop gets the GIL back every 1 ms instead of 5: threads streaming CSV pieces
    # or model downloads hold it in turns, and /api/health waited several intervals per
    # request behind them (p95 0.19 s beside six 300,000-point CSV downloads).
    sys.setswitchinterval(0.001)
    try:
        log.info("Époque lab on http://%s:%s", host, port)
        uvicorn.run(create_app(), host=host, port=port, log_level="info",
                    log_config=uvicorn_log_config())
    finally:
        child = supervisor.stop() if supervisor is not None else None
        if child is not None:
            _stop(child)  # type: ignore[arg-type]
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from worker.celery_app import app
    from worker.tasks import worker_device

    queues = args.queues or ("gpu,cpu" if worker_device().startswith("cuda") else "cpu")
    app.worker_main([
        "worker", "--pool=solo", "--concurrency=1", f"--queues={queues}",
        f"--hostname=epoque-{os.getpid()}@%h", f"--loglevel={args.loglevel}",
        "--without-gossip", "--without-mingle",
    ])
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from backend.config import get_settings
    from backend.specfile import SpecFileError, load_spec_file
    from worker.headless import train_to_folder

    try:
        spec = load_spec_file(args.spec)
    except SpecFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out or Path("runs") / Path(args.spec).stem)
    data_root = Path(args.data_root) if args.data_root else get_settings().data_dir / "datasets"
    outcome = train_to_folder(spec, out, threads=args.threads, data_root=data_root)
    print(json.dumps({"status": outcome.status, "result": outcome.result, "folder": str(out)},
                     indent=2))
    return 0 if outcome.status == "succeeded" else 1


def cmd_submit(args: argparse.Namespace) -> int:
    import httpx

    from backend.specfile import SpecFileError, load_spec_file

    try:
        spec = load_spec_file(args.spec)
    except SpecFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # A lab with a token takes writes only with it; the same variable the lab reads.
    token = os.environ.get("EPOQUE_API_TOKEN", "").strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.post(f"{args.url.rstrip('/')}/api/runs",
                              json=spec.model_dump(mode="json"), headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 201:
        print(f"error: {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    run = response.json()
    print(json.dumps({"id": run["id"], "status": run["status"],
                      "url": f"{args.url.rstrip('/')}/#/runs/{run['id']}"}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="epoque", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="API + lab + an embedded worker")
    serve.add_argument("--host", help="default EPOQUE_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default EPOQUE_PORT or 8000")
    serve.add_argument("--no-worker", action="store_true", help="do not start a worker")
    serve.add_argument("--generate-token", action="store_true",
                       help="make an API token (printed once) unless EPOQUE_API_TOKEN is set")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="a Celery worker that trains runs")
    worker.add_argument("--queues", help="comma-separated: cpu, gpu (default by device)")
    worker.add_argument("--loglevel", default="INFO")
    worker.set_defaults(func=cmd_worker)

    train = sub.add_parser("train", help="one run headless, results to a folder")
    train.add_argument("spec", help="YAML or JSON spec file")
    train.add_argument("--out", help="result folder (default runs/<spec name>)")
    train.add_argument("--threads", type=int, default=None, help="torch threads (default: chosen from the cores and the model size)")
    train.add_argument("--data-root", help="dataset files (default <EPOQUE_DATA_DIR>/datasets)")
    train.set_defaults(func=cmd_train)

    submit = sub.add_parser("submit", help="send a spec to a running lab")
    submit.add_argument("spec", help="YAML or JSON spec file")
    submit.add_argument("--url", default="http://127.0.0.1:8000")
    submit.set_defaults(func=cmd_submit)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logredact.install()
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
