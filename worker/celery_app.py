"""The worker's Celery app: the backend's configuration plus the task module."""

from __future__ import annotations

import logging

from celery.signals import after_setup_logger, after_setup_task_logger

from backend import logredact
from backend.broker import make_celery
from backend.config import get_settings

app = make_celery(get_settings())
app.conf.include = ["worker.tasks"]


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_secrets(logger: logging.Logger, **_: object) -> None:
    logredact.install(logger.handlers)
