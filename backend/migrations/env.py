"""Alembic environment: migrates the database named by the caller (or the settings)."""

from __future__ import annotations

from alembic import context

from backend.classes import models as _classes  # noqa: F401
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
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by dropping it; with foreign keys on, the drop would
            # delete every row that references it (ON DELETE CASCADE): points, models...
            # The pragma only takes effect outside a transaction, hence the commits.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if sqlite:  # the connection goes back to the pool shared with the app
                connection.commit()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
