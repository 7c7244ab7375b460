"""Names a package exports but imports only when first used (PEP 562 module ``__getattr__``).

The engine's packages re-export names whose modules need torch (or numpy, scikit-learn); the
API imports the same packages for the spec and the dataset catalog, and must not pay for torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(namespace: dict[str, Any], module_of: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the package whose globals are ``namespace``: ``name`` is
    imported from ``module_of[name]`` (relative to the package, e.g. ``".train"``) on first
    use, then kept in the package like an eager import would have."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
