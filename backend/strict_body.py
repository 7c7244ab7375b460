"""JSON bodies validated strictly: ``true`` is not an integer, ``2.5`` is not a count.

FastAPI validates a parsed body in pydantic's lax mode, where ``seeds: true`` became 1 and
``members: 2.0`` became 2, though the schema says integer. This dependency, on the whole app,
validates each JSON body again in strict JSON mode against the route's own body model
(strings still name literals, arrays still make tuples, integers still pass as floats), so
the API accepts what its schema says and no more.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.requests import HTTPConnection
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

_adapters: dict[Any, TypeAdapter[Any]] = {}


async def strict_json_body(connection: HTTPConnection) -> None:
    if not isinstance(connection, Request):  # a WebSocket has no body
        return
    request = connection
    route = request.scope.get("route")
    field = getattr(route, "body_field", None) if isinstance(route, APIRoute) else None
    content_type = request.headers.get("content-type", "")
    if field is None or not content_type.startswith("application/json"):
        return
    body = await request.body()  # Starlette keeps it: the route's own parsing reuses it
    if not body:
        return
    annotation = field.field_info.annotation
    adapter = _adapters.get(annotation)
    if adapter is None:
        adapter = _adapters[annotation] = TypeAdapter(annotation)
    try:
        adapter.validate_json(body, strict=True)
    except ValidationError as exc:
        # Only the type errors lax mode lets through; everything else is the route's to say.
        errors = [e for e in exc.errors(include_url=False, include_context=False)
                  if e["type"] in _STRICT_ONLY]
        if errors:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


# Types of error that strict mode adds (a bool or a float where an integer is due, a number
# where a string is due, …); other errors come from the route's own validation as before.
_STRICT_ONLY = frozenset({"int_type", "float_type", "string_type", "bool_type", "int_from_float",
                          "list_type", "dict_type", "model_type", "model_attributes_type",
                          "tuple_type"})
