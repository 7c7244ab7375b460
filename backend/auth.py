"""API token: with ``EPOQUE_API_TOKEN`` set, every write and the stream need it.

Reads stay open (the lab's pages and charts), writes (runs, studies, datasets, cancel, lr,
uploads, deletes: every route that takes POST, PUT, PATCH or DELETE) answer 401 without
``Authorization: Bearer <token>``. Browsers cannot set
headers on a WebSocket, so the stream also takes ``?token=``. The token is compared in
constant time and never logged or returned.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import parse_qs

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Writes anyone may make, token or not: a student joins a class with its join code only.
OPEN_WRITES = {("POST", "/api/classes/join")}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def generate_token() -> str:
    return secrets.token_urlsafe(24)


def needs_token(scope: Scope) -> bool:
    """Whether the route this request reaches is a write or a stream: decided by the app's own
    routes (every one, wherever its path), not by a path prefix."""
    if scope["type"] == "http" and scope.get("method") not in WRITE_METHODS:
        return False
    if scope["type"] not in ("http", "websocket"):
        return False
    for route in scope["app"].router.routes:
        if isinstance(route, Mount):
            continue  # the static lab: files only, it takes no writes
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return True
    return False


class TokenGuard:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token.encode()

    def _ok(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        if given.lower().startswith(b"bearer "):
            given = given[7:].strip()
        else:
            given = b""
        if not given and scope["type"] == "websocket":
            query = parse_qs(scope.get("query_string", b"").decode())
            given = (query.get("token") or [""])[0].encode()
        return secrets.compare_digest(given, self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A class token's principal (backend/classes/guard.py, which ran first) is already
        # confined to its class.
        principal = (scope.get("state") or {}).get("principal")
        open_write = (scope.get("method"), scope.get("path", "").rstrip("/")) in OPEN_WRITES
        if not needs_token(scope) or open_write or principal is not None or self._ok(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401, "reason": "API token required"})
            return
        body: dict[str, Any] = {"detail": "this lab needs its API token for changes: send "
                                          "'Authorization: Bearer <token>'"}
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})
