"""The Celery app as both sides configure it, and the one way the API enqueues a run.

The broker only carries "run id N" (or a pack's run ids); everything else lives in the database.
"""

from __future__ import annotations

from functools import lru_cache

from celery import Celery
from kombu.transport import sqlalchemy as kombu_sqlalchemy
from sqlalchemy.exc import IntegrityError, OperationalError

from backend.config import Settings, get_settings

RUN_TASK = "epoque.run_training"
PACK_TASK = "epoque.run_pack"  # runs that differ only in seed, trained as one stacked network
LANDSCAPE_TASK = "epoque.landscape"  # a run's loss landscape (run id, resolution)
QUEUES = ("cpu", "gpu")


class EmbeddedChannel(kombu_sqlalchemy.Channel):
    """kombu's SQLite channel, safe when several processes open a new broker file at once.
    kombu creates the tables, then each queue's row, after a look, under a lock of its own
    process only: two workers started together on a new lab both saw no row, the second
    insert failed on the UNIQUE name, and that worker died before it registered. Whatever
    another process created first is there when looked at again."""

    def _open(self):  # type: ignore[no-untyped-def]
        try:
            return super()._open()
        except (IntegrityError, OperationalError):  # the other process's tables now exist
            return super()._open()

    def _get_or_create(self, queue):  # type: ignore[no-untyped-def]
        try:
            return super()._get_or_create(queue)
        except IntegrityError:  # the other process's row now exists
            self.session.rollback()
            return super()._get_or_create(queue)


def make_celery(settings: Settings) -> Celery:
    app = Celery("epoque", broker=settings.broker)
    options: dict[str, object] = {}
    if settings.embedded_broker:
        # kombu hands these options to create_engine, so the polling interval cannot go here:
        # it is an attribute of the transport class (default 1 s, too slow for a live lab).
        kombu_sqlalchemy.Transport.polling_interval = settings.broker_poll_seconds
        kombu_sqlalchemy.Transport.Channel = EmbeddedChannel
        options = {"connect_args": {"timeout": 30}}
    else:
        # Training runs can last hours. Redis re-delivers an unacked message after this, so keep
        # it long; a dead worker's run is recovered through the database, not through redelivery.
        options = {"visibility_timeout": 24 * 3600}
    app.conf.update(
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        task_default_queue="cpu",
        worker_hijack_root_logger=False,
        broker_heartbeat=0,
    )
    return app


@lru_cache
def celery_client() -> Celery:
    return make_celery(get_settings())


def enqueue_run(run_id: int, queue: str) -> None:
    celery_client().send_task(RUN_TASK, args=[run_id], queue=queue)


def enqueue_class_run(run_id: int, class_id: int, queue: str) -> None:
    """A class's run: the worker that takes this message claims whichever queued run of the
    class comes next in the fair order (backend/classes/fairqueue.py), maybe not ``run_id``."""
    celery_client().send_task(RUN_TASK, args=[run_id],
                              kwargs={"class_id": class_id, "queue": queue}, queue=queue)


def enqueue_pack(run_ids: list[int], queue: str) -> None:
    celery_client().send_task(PACK_TASK, args=[run_ids], queue=queue)


def enqueue_landscape(run_id: int, resolution: int, queue: str) -> None:
    celery_client().send_task(LANDSCAPE_TASK, args=[run_id, resolution], queue=queue)


def check_broker() -> str:
    """'ok' or the reason the broker cannot be reached (for /api/health)."""
    try:
        with celery_client().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001  (health reports any failure as text)
        return f"unreachable: {type(exc).__name__}"
