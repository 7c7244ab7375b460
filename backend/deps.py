"""FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query
from sqlalchemy.orm import Session

from backend.db import new_session


def get_db() -> Iterator[Session]:
    session = new_session()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_db)]

# Ids and counts fit every database's integer columns (PostgreSQL's INTEGER is 32-bit), so an
# absurd number is a 422, never a database overflow.
MAX_ID = 2**31 - 1
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="A run's id.")]
StudyId = Annotated[int, Path(ge=1, le=MAX_ID, description="A study's id.")]
OptionalId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Cursor = Annotated[int, Query(ge=0, le=2**62, description="Cursor: only points after it.")]
