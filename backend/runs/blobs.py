"""Large blobs (models, checkpoints) stored in pieces: any size a run may reach fits any
database (one value is at most 1 GB on PostgreSQL and on SQLite).

A blob is owned by (kind, run id) and stored as rows (kind, run id, seq, data) of at most
CHUNK_BYTES each; its rows go with the run (ON DELETE CASCADE). Writes and reads go one
piece at a time, so a download streams and a write never holds the blob twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.db import new_session
from backend.runs.models import BlobChunk

CHUNK_BYTES = 8 * 2**20
KINDS = ("model", "checkpoint")


def write_blob(session: Session, kind: str, run_id: int, data: bytes,
               chunk_bytes: int = CHUNK_BYTES) -> int:
    """Replace the blob (kind, run id) with ``data`` in the session's transaction; its size."""
    delete_blob(session, kind, run_id)
    view = memoryview(data)
    for seq, start in enumerate(range(0, max(len(view), 1), chunk_bytes)):
        session.execute(BlobChunk.__table__.insert(), {
            "kind": kind, "run_id": run_id, "seq": seq,
            "data": bytes(view[start:start + chunk_bytes])})
    return len(view)


def delete_blob(session: Session, kind: str, run_id: int) -> None:
    session.execute(delete(BlobChunk).where(BlobChunk.kind == kind, BlobChunk.run_id == run_id))


def _pieces(session: Session, kind: str, run_id: int) -> int:
    return session.scalar(select(func.count()).select_from(BlobChunk).where(
        BlobChunk.kind == kind, BlobChunk.run_id == run_id)) or 0


def _piece(session: Session, kind: str, run_id: int, seq: int) -> bytes:
    return session.scalar(select(BlobChunk.data).where(
        BlobChunk.kind == kind, BlobChunk.run_id == run_id, BlobChunk.seq == seq)) or b""


def read_blob(session: Session, kind: str, run_id: int) -> bytes:
    return b"".join(_piece(session, kind, run_id, seq)
                    for seq in range(_pieces(session, kind, run_id)))


def stream_blob(kind: str, run_id: int) -> Iterator[bytes]:
    """The blob piece by piece, read in a session of its own (a response streams it after
    the request's session has closed); a piece at a time in memory."""
    with new_session() as session:
        for seq in range(_pieces(session, kind, run_id)):
            yield _piece(session, kind, run_id, seq)
