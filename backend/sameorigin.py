"""Browsers' cross-site requests and DNS rebinding, refused whether or not a token is set.

- Host: the Host header must name the lab (``EPOQUE_ALLOWED_HOSTS``; by default the loopback
  names and the configured host), else 400. A page on evil.example whose name was re-pointed
  at this machine (DNS rebinding) reaches the lab with ``Host: evil.example``: it gets nothing.
- Origin: a state-changing request (POST, PUT, PATCH, DELETE) or a WebSocket upgrade sent by a
  browser from another site carries that site's ``Origin`` (or, when a browser leaves it out,
  a ``Referer``); unless it is the lab's own origin (the scheme and the Host it was asked
  for), 403. Without this a plain HTML form on any site could cancel runs, launch presets or
  upload zips on a lab without a token, and any page could read a run's stream. Requests with
  neither header (scripts, curl, ``epoque submit``) are no browser's cross-site request: they
  pass, and the token (when set) still guards them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from backend.auth import WRITE_METHODS

DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def split_host(host: str) -> tuple[str, str | None]:
    """('name', 'port' or None) of a Host header value; IPv6 literals lose their brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":") or None
    name, _, port = host.partition(":")
    return name, port or None


def host_allowed(name: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def same_origin(origin: str, scheme: str, host: str) -> bool:
    """Whether ``origin`` (an Origin header, or a Referer URL) is scheme://host of this request;
    default ports count as written or left out."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file: pages) and anything odd
    if (parts.scheme == "https") != (scheme in ("https", "wss")):
        return False
    default = DEFAULT_PORTS[parts.scheme]
    theirs, ours = split_host(parts.netloc), split_host(host)
    return theirs[0] == ours[0] and (theirs[1] or default) == (ours[1] or default)


class SameOrigin:
    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app, self.allowed = app, frozenset(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if host and not host_allowed(split_host(host)[0], self.allowed):
            await _refuse(scope, send, 400, "the Host header does not name this lab (its "
                          "allowed hosts are set by EPOQUE_ALLOWED_HOSTS)")
            return
        if scope["type"] == "websocket" or scope.get("method") in WRITE_METHODS:
            origin = headers.get(b"origin") or headers.get(b"referer")
            if origin is not None and not same_origin(origin.decode("latin-1"),
                                                      scope.get("scheme", "http"), host):
                await _refuse(scope, send, 403, "cross-site request refused: its Origin (or "
                              "Referer) is not this lab's own")
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    if scope["type"] == "websocket":  # closed before the handshake: the browser sees a 403
        await send({"type": "websocket.close", "code": 4000 + status, "reason": detail})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps({"detail": detail}).encode()})
