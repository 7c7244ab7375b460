"""Request bodies larger than the limits are refused before they are read (413, named limit).

A declared Content-Length over the limit is refused at once; a body sent without one (chunked)
is counted as it arrives and cut off at the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int, max_upload: int,
                 upload_paths: tuple[str, ...] = ()) -> None:
        self.app, self.max_body, self.max_upload = app, max_body, max_upload
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        multipart = (headers.get(b"content-type", b"").startswith(b"multipart/")
                     and scope.get("path", "").rstrip("/") in self.upload_paths)
        # Uploads carry their own limit (plus room for the multipart envelope); only the
        # upload routes take them, so a multipart content type elsewhere lifts nothing.
        limit, name = ((self.max_upload + 64 * 1024, "max_upload_bytes") if multipart
                       else (self.max_body, "max_body_bytes"))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, name, limit)
            return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited, guarded_send)
        if refused:
            await _refuse(send, name, limit)


async def _refuse(send: Send, name: str, limit: int) -> None:
    body = json.dumps({"detail": f"request body larger than {name} ({limit} bytes)"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
