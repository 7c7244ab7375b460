"""The worker's Celery app: the backend's configuration plus the task module."""

from __future__ import annotations

from backend.broker import make_celery
from backend.config import get_settings

app = make_celery(get_settings())
app.conf.include = ["worker.tasks"]
