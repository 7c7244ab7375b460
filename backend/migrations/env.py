"""Alembic environment: migrates the database named by the caller (or the settings)."""

from __future__ import annotations

from alembic import context

from backend.datasets import models as _datasets  # noqa: F401
from backend.db import Base, engine_for
from backend.runs import models as _runs  # noqa: F401  (registers tables on Base.metadata)
from backend.studies import models as _studies  # noqa: F401
from backend.workers import models as _workers  # noqa: F401

config = context.config
url = config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with engine_for(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
