"""Messages fit for anyone to read: no file paths, object reprs or SQL.

Error texts come from deep down (torch, PIL, SQLAlchemy, the engine's loaders) and were shown
as they were: ``run.error`` held absolute paths, a preview showed ``<_io.BytesIO object at
0x…>``, a failed write showed its SQL. ``public_text`` keeps the reason and drops the rest;
the API's error handlers, run views and the worker's stored errors all go through it.
"""

from __future__ import annotations

import re

from sqlalchemy.exc import SQLAlchemyError

from backend.config import get_settings

# SQLAlchemy appends the statement, its parameters and a link to its error pages.
_SQL = re.compile(r"\s*\[(?:SQL|parameters): .*?\](?=\s*(?:\[|\(Background|$))", re.DOTALL)
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")
_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
# An absolute path: a slash-led run of path characters with at least two parts.
_PATH = re.compile(r"(?<![\w:/.~>-])/(?:[\w.@+~-]+/)+[\w.@+~-]*")


def _short_path(match: re.Match[str]) -> str:
    path = match.group(0)
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return f"…/{last}{'/' if path.endswith('/') else ''}"


def public_text(text: str) -> str:
    data_dir = str(get_settings().data_dir.resolve())
    text = text.replace(data_dir, "<data dir>")
    text = _SQL.sub("", text)
    text = _BACKGROUND.sub("", text)
    text = _REPR.sub("the file", text)
    return _PATH.sub(_short_path, text)


def public_error(exc: BaseException) -> str:
    """``Type: reason`` of an exception, for a run's stored error."""
    if isinstance(exc, SQLAlchemyError):
        orig = getattr(exc, "orig", None)
        reason = str(orig).strip() if orig is not None else type(exc).__name__
        return public_text(f"the database refused this run's write: {reason}")
    return public_text(f"{type(exc).__name__}: {exc}")
