"""Health and the spec's JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from backend.broker import check_broker
from backend.deps import SessionDep
from backend.system.schema import spec_schema as build_spec_schema
from backend.workers.service import live_workers

router = APIRouter(prefix="/api", tags=["system"])

SPEC_SCHEMA = build_spec_schema()


@router.get("/health")
async def health(session: SessionDep) -> dict[str, Any]:
    try:
        await run_in_threadpool(session.execute, text("SELECT 1"))
        database = "ok"
        workers = [
            {"name": w.name, "device": w.device, "threads": w.threads, "queues": w.queues.split(","),
             "current_run_id": w.current_run_id, "heartbeat_at": w.heartbeat_at.isoformat()}
            for w in await run_in_threadpool(live_workers, session=session)
        ]
    except Exception as exc:  # noqa: BLE001  (health reports any failure as text)
        database, workers = f"unreachable: {type(exc).__name__}", []
    broker = await run_in_threadpool(check_broker)
    ok = database == "ok" and broker == "ok"
    return {"status": "ok" if ok else "degraded", "database": database, "broker": broker,
            "workers": workers}


@router.get("/spec/schema")
def spec_schema() -> dict[str, Any]:
    return SPEC_SCHEMA
