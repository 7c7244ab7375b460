"""Expand a base spec and a grid of dotted field paths into one spec per grid point."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from worker.engine.spec import Spec, parse_spec


class GridError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _set_path(spec: dict[str, Any], path: str, value: Any) -> None:
    node = spec
    *parents, leaf = path.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise GridError(f"grid.{path}", f"{part!r} is not a group of fields")
        node = child
    node[leaf] = value


def grid_size(grid: dict[str, list[Any]]) -> int:
    """How many points the grid has, from the value counts alone: nothing is expanded, so a
    tiny request naming 6 keys × 25 values (244 M points) is refused in microseconds."""
    for path, values in grid.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"grid.{path}", "needs a non-empty list of values")
    return math.prod(len(values) for values in grid.values())


def grid_points(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    keys = list(grid)
    return (dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys)))


def expand(base: dict[str, Any], grid: dict[str, list[Any]], max_points: int) -> list[tuple[dict[str, Any], Spec]]:
    """(grid point, validated spec) for each point; errors name ``grid.<path>``. The size is
    checked before the first point is built."""
    size = grid_size(grid)
    if size > max_points:
        raise GridError("grid", f"{size} grid points; the limit max_grid_points is "
                                f"{max_points}")
    out = []
    for point in grid_points(grid):
        raw = copy.deepcopy(base)
        for path, value in point.items():
            _set_path(raw, path, value)
        try:
            spec = parse_spec(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in err["loc"])
            path = next((p for p in point if loc == p or loc.startswith(p + ".")), None)
            field = f"grid.{path}" if path else f"base.{loc}"
            shown = f" (value {point[path]!r})" if path else ""
            raise GridError(field, err["msg"].removeprefix("Value error, ") + shown) from None
        out.append((point, spec))
    return out
