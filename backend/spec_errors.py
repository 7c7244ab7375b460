"""A rejected spec as a 422 that names each field path and the reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from backend.errors import DomainError


class SpecInvalid(DomainError):
    status_code = 422

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        self.detail = detail
        first = detail[0] if detail else {"field": "(spec)", "msg": "invalid"}
        super().__init__(f"{first['field']}: {first['msg']}")

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: tuple[str, ...] = ()) -> SpecInvalid:
        return cls([
            {
                "loc": [*prefix, *err["loc"]],
                "field": ".".join(str(p) for p in (*prefix, *err["loc"])) or "(spec)",
                "msg": err["msg"].removeprefix("Value error, "),
                "type": err["type"],
            }
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ])

    @classmethod
    def one(cls, field: str, message: str) -> SpecInvalid:
        return cls([{"loc": field.split("."), "field": field, "msg": message,
                     "type": "value_error"}])
