"""The embedded broker (kombu's SQLite transport) when several processes open a new broker
file at once: two workers started together on a new lab, as the lessons test starts them."""

from __future__ import annotations

import sqlite3
from typing import Any

from backend.broker import EmbeddedChannel, make_celery
from backend.config import get_settings


class _Missed:
    """A query whose look finds nothing: the other process's insert is not yet visible."""

    def filter(self, *_: Any) -> _Missed:
        return self

    def first(self) -> None:
        return None


def test_a_queue_row_another_process_inserted_meanwhile_is_taken(tmp_path, monkeypatch) -> None:
    """kombu looks for the queue's row, then inserts it, under a lock of its own process
    only. Here another process's insert lands between the looks and the insert (the looks are
    made to miss it): the channel takes the row instead of dying on the UNIQUE name."""
    broker = tmp_path / "broker.sqlite"
    monkeypatch.setenv("EPOQUE_BROKER_URL", f"sqla+sqlite:///{broker}")
    get_settings.cache_clear()
    app = make_celery(get_settings())
    with app.connection() as connection:
        channel = connection.default_channel
        assert isinstance(channel, EmbeddedChannel)
        query, misses = channel.session.query, [2]  # the session creates kombu's tables
        with sqlite3.connect(broker) as other:
            other.execute("INSERT INTO kombu_queue (name) VALUES ('cpu')")

        def late_query(*args: Any) -> Any:
            if misses[0]:  # kombu looks twice: before its lock and in it
                misses[0] -= 1
                return _Missed()
            return query(*args)

        monkeypatch.setattr(channel.session, "query", late_query)
        row = channel._get_or_create("cpu")
        assert row.name == "cpu" and misses == [0]
    with sqlite3.connect(broker) as db:
        assert db.execute("SELECT COUNT(*) FROM kombu_queue WHERE name = 'cpu'").fetchone() == (1,)
