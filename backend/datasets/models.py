"""Uploaded datasets: a row per upload and its processed images in chunk rows, so that every
worker (on any machine) can read them; the zip itself is never kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

from backend.db import Base, UTCDateTime

# processing: its images are being decoded; ready: it can train; failed: ``error`` says why.
DATASET_STATUSES = ("processing", "ready", "failed")


class UploadedDataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    classes: Mapped[list[str]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    n_images: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)  # of the zip as uploaded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="ready")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # (C, H, W) every image was resized to at ingestion: the network's input shape.
    input_shape: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    # Bytes of the processed images in ``dataset_chunks`` (counted against the lab's budget;
    # while processing, the most they can take).
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)  # images decoded so far
    # Version 1 kept the zip here; no longer written (0011 empties it).
    archive: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))


class DatasetChunk(Base):
    """One piece of a dataset's processed images (an .npz file, at most CHUNK_BYTES each);
    deleted with its dataset (ON DELETE CASCADE)."""

    __tablename__ = "dataset_chunks"

    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
