"""A rejected spec as a 422 that names each field path and the reason."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from backend.errors import DomainError


def _detail(errors: Any, prefix: tuple[Any, ...] = (), strip: int = 0) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [*prefix, *list(err["loc"])[strip:]]
        out.append({"loc": loc, "field": ".".join(str(p) for p in loc) or "(spec)",
                    "msg": str(err["msg"]).removeprefix("Value error, "), "type": err["type"]})
    return out


def request_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's request errors; ("body", …) and ("query", …) locations lose their prefix."""
    return [
        *_detail([e for e in errors if e["loc"][:1] == ("body",)], strip=1),
        *_detail([e for e in errors if e["loc"][:1] != ("body",)], strip=1),
    ]


class SpecInvalid(DomainError):
    status_code = 422

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        self.detail = detail
        first = detail[0] if detail else {"field": "(spec)", "msg": "invalid"}
        super().__init__(f"{first['field']}: {first['msg']}")

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: tuple[str, ...] = ()) -> SpecInvalid:
        return cls(_detail(
            exc.errors(include_url=False, include_context=False, include_input=False), prefix))

    @classmethod
    def one(cls, field: str, message: str) -> SpecInvalid:
        return cls([{"loc": field.split("."), "field": field, "msg": message,
                     "type": "value_error"}])
