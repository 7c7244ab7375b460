"""The FastAPI application: API routers, the stream, and the static lab."""

from __future__ import annotations

import logging
from pathlib import Path

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from backend.errors import DomainError
from backend.runs import router as runs_router
from backend.runs import stream
from backend.spec_errors import SpecInvalid
from backend.studies import router as studies_router
from backend.system import router as system_router

log = logging.getLogger(__name__)

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app() -> FastAPI:
    app = FastAPI(title="Époque", version="0.1.0",
                  description="A lab for seeing how neural-network training behaves.")
    app.include_router(system_router.router)
    app.include_router(runs_router.router)
    app.include_router(stream.router)
    app.include_router(studies_router.router)

    @app.exception_handler(SpecInvalid)
    async def _spec_invalid(_: Request, exc: SpecInvalid) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=422)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def _plotly() -> FileResponse:
        # Plotly.js ships inside the plotly Python package: no CDN, no npm, works offline.
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    if FRONTEND.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND, html=True), name="frontend")
    return app
