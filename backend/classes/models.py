"""Tables of the classrooms domain: a class and the students who joined it.

Tokens are stored as SHA-256 digests only: a leaked database gives nobody a way in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import true

from backend.db import Base, UTCDateTime


class Classroom(Base):
    __tablename__ = "classes"
    __table_args__: ClassVar[dict[str, Any]] = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    presets: Mapped[list[str]] = mapped_column(JSON)  # preset ids; the first is the default
    locked: Mapped[list[str]] = mapped_column(JSON)  # spec field paths fixed to the preset's
    max_runs_per_student: Mapped[int] = mapped_column(Integer)
    max_queued_per_student: Mapped[int] = mapped_column(Integer)
    # Whether students see (read-only) their classmates' runs; the teacher always does.
    show_classmates: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # {"preset": id, "max_epochs": n} or None: the board's challenge ranking.
    challenge: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    join_code: Mapped[str] = mapped_column(String(32), unique=True)
    teacher_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Student(Base):
    __tablename__ = "class_students"
    __table_args__: ClassVar[dict[str, Any]] = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("classes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
