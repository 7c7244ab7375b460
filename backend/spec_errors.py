"""A rejected spec as a 422 that names each field path and the reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from backend.errors import DomainError


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


class SpecInvalid(DomainError):
    status_code = 422

    def __init__(self, exc: ValidationError, prefix: tuple[str, ...] = ()) -> None:
        self.detail = [
            {
                "loc": [*prefix, *err["loc"]],
                "field": _field((*prefix, *err["loc"])) or "(spec)",
                "msg": err["msg"].removeprefix("Value error, "),
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        first = self.detail[0] if self.detail else {"field": "(spec)", "msg": "invalid"}
        super().__init__(f"{first['field']}: {first['msg']}")
