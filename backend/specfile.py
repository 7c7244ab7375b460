"""Read a spec from a YAML or JSON file, with errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from worker.engine.spec import Spec, parse_spec


class SpecFileError(Exception):
    """A message ready for the user: ``file:line: field: reason``."""


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest YAML node on the error's path."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(part)), None)
            key = next((k for k, _ in node.value if k.value == str(part)), None)
            if key is None:
                break
            node, line = match, key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def load_spec_file(path: str | Path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecFileError(f"{where}: not valid YAML: {reason}") from None
    if data is not None and not isinstance(data, dict):
        raise SpecFileError(f"{path}:1: a spec is a mapping of fields, not {type(data).__name__}")
    try:
        return parse_spec(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "(spec)"
            line = _line_of(root, err["loc"])
            where = f"{path}:{line}" if line else str(path)
            lines.append(f"{where}: {field}: {err['msg'].removeprefix('Value error, ')}")
        raise SpecFileError("\n".join(lines)) from None
