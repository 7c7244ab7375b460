"""405 answers that list exactly the methods a resource supports (``Allow``).

A method no API route takes fell through to the static lab mounted at ``/``, which answered
405 with ``Allow: GET, HEAD`` for every path: wrong for ``POST /api/runs`` and the rest. This
middleware answers those itself, from the app's own OpenAPI paths (what it documents is what
it takes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

_PARAM = re.compile(r"\\{[^}/]+\\}")


class AllowHeader:
    def __init__(self, app: ASGIApp, openapi: Callable[[], dict[str, Any]],
                 prefix: str = "/api/") -> None:
        self.app, self.openapi, self.prefix = app, openapi, prefix
        self._paths: list[tuple[re.Pattern[str], set[str]]] | None = None
        self._literal: dict[str, set[str]] = {}

    def _allowed(self, path: str) -> set[str] | None:
        """The methods documented for ``path`` (None: the API has no such path)."""
        if self._paths is None:  # built once every route is in place
            self._paths = [
                (re.compile("^" + _PARAM.sub("[^/]+", re.escape(template)) + "$"),
                 {m.upper() for m in ops})
                for template, ops in self.openapi().get("paths", {}).items()]
            self._literal = {template: {m.upper() for m in ops}
                             for template, ops in self.openapi().get("paths", {}).items()
                             if "{" not in template}
        found = [methods for pattern, methods in self._paths if pattern.match(path)]
        # A path the API names literally (/api/classes/join) is that resource, not also an
        # instance of a template beside it (/api/classes/{class_id}): the router tries it first.
        literal = [methods for template, methods in self._literal.items() if template == path]
        if literal:
            return set().union(*literal)
        return set().union(*found) if found else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            allowed = self._allowed(scope["path"])
            method = scope["method"]
            if allowed is not None and method not in allowed and not (
                    method == "HEAD" and "GET" in allowed):
                await _refuse(send, allowed)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, allowed: set[str]) -> None:
    body = json.dumps({"detail": "Method Not Allowed"}).encode()
    await send({"type": "http.response.start", "status": 405, "headers": [
        (b"content-type", b"application/json"), (b"allow", ", ".join(sorted(allowed)).encode())]})
    await send({"type": "http.response.body", "body": body})
