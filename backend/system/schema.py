"""The spec's JSON Schema as the lab's form needs it: every field with its default.

pydantic leaves out the default of fields built with ``default_factory`` (lists, nested
groups); the form must show them, so they are filled in from the models themselves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from worker.engine import spec as spec_module


def _models() -> dict[str, type[BaseModel]]:
    return {name: obj for name, obj in vars(spec_module).items()
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel}


def _fill(schema: dict[str, Any], model: type[BaseModel]) -> None:
    for name, prop in schema.get("properties", {}).items():
        field = model.model_fields.get(name)
        if field is None or "default" in prop or field.is_required():
            continue
        prop["default"] = to_jsonable_python(field.get_default(call_default_factory=True))


def spec_schema() -> dict[str, Any]:
    schema = spec_module.Spec.model_json_schema()
    models = _models()
    _fill(schema, spec_module.Spec)
    for name, definition in schema.get("$defs", {}).items():
        if name in models:
            _fill(definition, models[name])
    return schema
