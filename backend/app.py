"""The FastAPI application: API routers, the stream, and the static lab."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import plotly
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from backend.allow import AllowHeader
from backend.auth import TokenGuard
from backend.broker import enqueue_run
from backend.classes import router as classes_router
from backend.classes.guard import ClassGuard
from backend.config import get_settings
from backend.datasets import router as datasets_router
from backend.datasets import service as datasets_service
from backend.db import new_session
from backend.errors import DomainError, TooMany
from backend.guides import router as guides_router
from backend.limits import BodyLimit
from backend.presets import router as presets_router
from backend.previews import router as previews_router
from backend.public_text import public_text
from backend.runs import lr_range_router, stream
from backend.runs import router as runs_router
from backend.runs.recovery import recover_stale_runs
from backend.sameorigin import SameOrigin
from backend.spec_errors import SpecInvalid, request_errors
from backend.strict_body import strict_json_body
from backend.studies import router as studies_router
from backend.system import router as system_router
from worker.engine import datasets as engine_datasets

log = logging.getLogger(__name__)

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


# The only routes that take multipart uploads: elsewhere the JSON body limit holds, whatever
# the content type says.
UPLOAD_PATHS = ("/api/datasets", "/api/previews/image")

_ERROR = {"application/json": {"schema": {"type": "object", "properties": {"detail": {}}}}}
# Answers any operation may give, documented once for all of them.
COMMON_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"description": "The body could not be parsed, or the Host header does not name "
               "the lab.", "content": _ERROR},
    401: {"description": "The API token is required for writes.", "content": _ERROR},
    403: {"description": "A browser's cross-site request (its Origin is not the lab's).",
          "content": _ERROR},
    404: {"description": "No such run, study, dataset or preset.", "content": _ERROR},
    405: {"description": "Not a method of this resource (Allow lists those that are).",
          "content": _ERROR},
    409: {"description": "The run has already ended, or has no model yet.", "content": _ERROR},
    413: {"description": "A size limit was exceeded (named in detail).", "content": _ERROR},
    422: {"description": "Invalid input: detail names each field and the reason.",
          "content": _ERROR},
    429: {"description": "The queue is full; retry after Retry-After seconds.", "content": _ERROR},
    503: {"description": "The broker could not take the work.", "content": _ERROR},
}


def _recover_once() -> None:
    settings = get_settings()
    with new_session() as session:
        actions = recover_stale_runs(session=session,
                                     timeout_seconds=settings.heartbeat_timeout_seconds,
                                     max_attempts=settings.max_attempts)
    for run_id, queue, action in actions:
        if action == "requeued":
            enqueue_run(run_id, queue)


async def _recovery_loop() -> None:
    """Look for runs whose worker died, a few times per heartbeat timeout."""
    period = max(get_settings().heartbeat_timeout_seconds / 4, 0.5)
    while True:
        try:
            await run_in_threadpool(_recover_once)
        except Exception:
            log.warning("recovery sweep failed", exc_info=True)
        await asyncio.sleep(period)


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    # Everything imported so far (torch no longer: the spec and the dataset catalog import
    # none) is there for good. Frozen, the collector no longer walks it: a full collection,
    # which a stream replay of 10,000 points triggers, took 270 ms here and now takes about
    # 5 ms (measured with torch loaded).
    gc.freeze()
    try:
        await run_in_threadpool(datasets_service.fail_interrupted)
    except Exception:  # no tables yet (migrations not applied): nothing was being processed
        log.warning("could not look for interrupted uploads", exc_info=True)
    task = asyncio.create_task(_recovery_loop())
    try:
        yield
    finally:
        task.cancel()
        datasets_service.shutdown_pool()


def create_app() -> FastAPI:
    app = FastAPI(title="Époque", version="0.1.0", lifespan=_lifespan,
                  description="A lab for seeing how neural-network training behaves.",
                  responses=COMMON_RESPONSES, dependencies=[Depends(strict_json_body)])
    app.include_router(system_router.router)
    app.include_router(runs_router.router)
    app.include_router(lr_range_router.router)
    app.include_router(stream.router)
    app.include_router(studies_router.router)
    app.include_router(datasets_router.router)
    app.include_router(presets_router.router)
    app.include_router(guides_router.router)
    app.include_router(previews_router.router)
    app.include_router(classes_router.router)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422s in the same shape as a rejected spec: the field path without the
        # "body"/"query" prefix, and the reason.
        return JSONResponse({"detail": request_errors(exc.errors())}, status_code=422)

    @app.exception_handler(SpecInvalid)
    async def _spec_invalid(_: Request, exc: SpecInvalid) -> JSONResponse:
        return JSONResponse({"detail": [{**d, "msg": public_text(d["msg"])} for d in exc.detail]},
                            status_code=422)

    @app.exception_handler(TooMany)
    async def _too_many(_: Request, exc: TooMany) -> JSONResponse:
        return JSONResponse({"detail": public_text(exc.message)}, status_code=429,
                            headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": public_text(exc.message)}, status_code=exc.status_code)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def _plotly() -> FileResponse:
        # Plotly.js ships inside the plotly Python package: no CDN, no npm, works offline.
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    settings = get_settings()
    # The API itself never reaches out to the internet: a preview of a torchvision set whose
    # files are absent says so; workers download them (worker/engine/datasets.py).
    engine_datasets.ALLOW_DOWNLOAD = False
    app.add_middleware(AllowHeader, openapi=app.openapi)
    app.add_middleware(BodyLimit, max_body=settings.max_body_bytes,
                       max_upload=settings.max_upload_bytes, upload_paths=UPLOAD_PATHS)
    token = settings.api_token
    if token is not None and token.get_secret_value():
        app.add_middleware(TokenGuard, token=token.get_secret_value())
    # Before the token guard: a class token's principal is resolved and confined first.
    app.add_middleware(ClassGuard)
    # Added last, so it runs first: a foreign Host or a cross-site browser request is refused
    # before anything else looks at it, token or not.
    app.add_middleware(SameOrigin, allowed_hosts=settings.allowed_host_names)

    if FRONTEND.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND, html=True), name="frontend")
    return app
