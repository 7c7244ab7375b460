"""Keep secrets out of logs.

The browser's stream URL carries the API token as ``?token=…`` (a WebSocket cannot send an
Authorization header) and uvicorn logs every URL, so each log line passes through this filter:
token query values and the configured secrets (the API token, passwords in the database and
broker URLs) become ``***`` before any handler writes them.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit

TOKEN_QUERY = re.compile(r"(\btoken=)[^&\s\"'#]+")
MASK = "***"


def configured_secrets() -> list[str]:
    """The API token and the passwords inside the database and broker URLs."""
    from backend.config import get_settings

    settings = get_settings()
    found = [settings.api_token.get_secret_value() if settings.api_token else ""]
    for url in (settings.db_url, settings.broker_url or ""):
        found.append(unquote(urlsplit(url).password or ""))
    return [s for s in found if len(s) >= 4]


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return TOKEN_QUERY.sub(rf"\1{MASK}", text)


class RedactSecrets(logging.Filter):
    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.secrets = configured_secrets()

    def _clean(self, value: object) -> object:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, (int, float, type(None))):
            return value
        text = str(value)  # e.g. an exception whose message holds a URL
        cleaned = redact(text, self.secrets)
        return value if cleaned == text else cleaned

    def filter(self, record: logging.LogRecord) -> bool:
        # Argument by argument: uvicorn's access formatter unpacks record.args itself.
        record.msg = self._clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._clean(v) for k, v in record.args.items()}
        return True


def install(handlers: list[logging.Handler] | None = None) -> None:
    """Add the filter to the given handlers (default: the root logger's)."""
    redacting = RedactSecrets()
    for handler in handlers if handlers is not None else logging.getLogger().handlers:
        handler.addFilter(redacting)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging config with every handler passing through RedactSecrets."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": "backend.logredact.RedactSecrets"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    return config
