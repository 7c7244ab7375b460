"""Class tokens: who a request with a teacher's or a student's token is, and what it may reach.

A request whose bearer token (or, on the stream, ``?token=``) is a class token is resolved here
once, before any route, and the principal is left in ``scope["state"]`` for the routes that
act on it (POST /api/runs, the class routes). What it may reach is decided by the route's path,
in one place, so no run route needs to know about classes:

- a run of another class (or no class): 404, as if it did not exist;
- a classmate's run: readable when the class shows classmates (the teacher: always); a write
  on it (cancel, η, delete) is 403, only the teacher may act on any run of the class;
- another class: 403;
- any other write (studies, uploads, presets, creating classes): 403, a class token launches
  and steers runs of its class and nothing else.

An unknown class token is 401. The lab's API token guard (auth.TokenGuard) lets a resolved
principal through: this guard has already confined it to its class.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.auth import WRITE_METHODS
from backend.classes.models import Classroom
from backend.classes.service import CLASS_PREFIXES, Principal, may_change, resolve
from backend.db import new_session
from backend.runs.models import Run

_RUN = re.compile(r"^/api/runs/(\d+)(/[^/]*)?/?$")
_CLASS = re.compile(r"^/api/classes/(\d+)(/.*)?$")
# Writes on a classmate's run that change nothing of it (a prediction with its model).
_HARMLESS_RUN_WRITES = {"/predict"}
# Writes a class token may make besides those on runs: launch a run.
_CLASS_WRITES = {"/api/runs"}


def class_token(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or [])
    given = headers.get(b"authorization", b"").decode("latin-1")
    token = given[7:].strip() if given.lower().startswith("bearer ") else ""
    if not token and scope["type"] == "websocket":
        token = (parse_qs(scope.get("query_string", b"").decode()).get("token") or [""])[0]
    return token if token.startswith(CLASS_PREFIXES) else None


def verdict(principal: Principal, method: str, path: str) -> tuple[int, str] | None:
    """(status, reason) when ``principal`` may not make this request; None when it may."""
    write = method in WRITE_METHODS
    if match := _RUN.match(path):
        run_id, action = int(match[1]), match[2] or ""
        with new_session() as session:
            run = session.get(Run, run_id)
            if run is None:
                return None  # the route answers its own 404
            if run.class_id != principal.class_id:
                return 404, f"run {run_id} not found"
            if may_change(principal, run):
                return None
            if write and action not in _HARMLESS_RUN_WRITES:
                return 403, (f"run {run_id} is a classmate's: only its student or the "
                             f"teacher may change it")
            klass = session.get(Classroom, principal.class_id)
            if klass is not None and not klass.show_classmates:
                return 403, (f"run {run_id} is a classmate's, and this class does not "
                             f"show classmates' runs")
        return None
    if match := _CLASS.match(path):
        if int(match[1]) != principal.class_id:
            return 403, "this token belongs to another class"
        return None
    if write and path.rstrip("/") not in _CLASS_WRITES:
        return 403, "a class token launches and steers the runs of its class, nothing else"
    return None


class ClassGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        token = class_token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        principal = await run_in_threadpool(_resolve, token)
        if principal is None:
            await _refuse(scope, send, 401, "this class token is not valid (was the class "
                                            "deleted?); join the class again")
            return
        scope.setdefault("state", {})["principal"] = principal
        refused = await run_in_threadpool(verdict, principal, scope.get("method", "GET"),
                                          scope["path"])
        if refused is not None:
            await _refuse(scope, send, *refused)
            return
        await self.app(scope, receive, send)


def _resolve(token: str) -> Principal | None:
    with new_session() as session:
        return resolve(session=session, token=token)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4000 + status, "reason": detail})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
