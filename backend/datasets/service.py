"""Uploaded datasets: receive a zip onto disk, check it, decode its images in a pool of
processes, store them once (chunk rows, so every worker can read them), list, delete, and
unpack them where a worker trains.

The API process never decodes an image: it copies the upload to a temporary file (a megabyte
at a time), reads the zip's directory, and hands batches of entries to ``ingest.decode_batch``
in ``EPOQUE_DATASET_PROCESSES`` spawned processes. What it keeps is the processed images:
3×32×32 bytes each.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.config import Settings, get_settings
from backend.datasets.models import DatasetChunk, UploadedDataset
from backend.datasets.upload import Limits, Listing, UploadRejected, check_directory
from backend.db import new_session, utcnow
from backend.errors import Conflict, NotFound
from worker.engine.datasets.catalog import FOLDER_IMAGE_SHAPE, DatasetUnavailable

log = logging.getLogger(__name__)

CHUNK_BYTES = 8 * 2**20
BATCH = 64  # images per pool task: progress is reported after each
SAMPLES_PER_CLASS = 8
IMAGE_BYTES = math.prod(FOLDER_IMAGE_SHAPE)


class TooManyDatasets(Conflict):
    pass


def limits_of(settings: Settings) -> Limits:
    return Limits(max_bytes=settings.max_upload_bytes, max_files=settings.max_upload_files,
                  max_uncompressed_bytes=settings.max_upload_uncompressed_bytes,
                  max_image_pixels=settings.max_image_pixels)


def uploads_root(settings: Settings) -> Path:
    """Where processed uploads are unpacked: the data root every run reads datasets from."""
    return settings.data_dir / "datasets" / "uploads"


# --- receiving ------------------------------------------------------------------------------


def receive(source: BinaryIO, settings: Settings) -> Path:
    """Copy an upload to a temporary file under the data dir, a megabyte at a time; refused
    past max_upload_bytes (nothing kept)."""
    folder = settings.data_dir / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".zip", dir=folder)
    total = 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(2**20):
                total += len(chunk)
                if total > settings.max_upload_bytes:
                    raise UploadRejected(f"upload is over {settings.max_upload_bytes} bytes; the "
                                         f"limit max_upload_bytes is {settings.max_upload_bytes}",
                                         too_large=True)
                out.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _held(session: Session) -> tuple[int, int]:
    """(datasets, bytes) held now: ready ones and those being processed."""
    count, size = session.execute(
        select(func.count(), func.coalesce(func.sum(UploadedDataset.stored_bytes), 0))
        .where(UploadedDataset.status != "failed")).one()
    return int(count), int(size)


def start_upload(*, session: Session, name: str, path: Path, settings: Settings,
                 ) -> tuple[UploadedDataset, Listing]:
    """Check the zip's directory and the quotas; store the dataset as ``processing``."""
    listing = check_directory(path, limits_of(settings))
    need = len(listing.entries) * IMAGE_BYTES
    count, held = _held(session)
    if count >= settings.max_datasets:
        raise TooManyDatasets(f"this lab holds {count} datasets; the limit max_datasets is "
                              f"{settings.max_datasets}: delete one first")
    if held + need > settings.max_dataset_bytes:
        raise UploadRejected(
            f"its {len(listing.entries)} images would take {need} bytes once processed, and the "
            f"datasets stored take {held}; the limit max_dataset_bytes is "
            f"{settings.max_dataset_bytes}: delete one first", too_large=True)
    dataset = UploadedDataset(
        id=secrets.token_hex(6), name=name[:200], classes=listing.classes,
        counts=listing.counts, n_images=len(listing.entries), size_bytes=path.stat().st_size,
        created_at=utcnow(), status="processing", input_shape=list(FOLDER_IMAGE_SHAPE),
        stored_bytes=need, processed=0)
    session.add(dataset)
    session.commit()
    return dataset, listing


# --- processing -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _pool(processes: int) -> ProcessPoolExecutor:
    # Spawned, not forked: a fork would copy the API's threads' state; the children import
    # ingest.py alone.
    return ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"))


def shutdown_pool() -> None:
    if _pool.cache_info().currsize:
        _pool(get_settings().dataset_processes).shutdown(wait=False, cancel_futures=True)
        _pool.cache_clear()


class Gone(Exception):
    """The dataset was deleted while it was processed."""


def _progress(dataset_id: str, done: int) -> None:
    with new_session() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        if dataset is None:
            raise Gone(dataset_id)
        dataset.processed = done
        session.commit()


def _fail(dataset_id: str, message: str) -> None:
    with new_session() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        if dataset is not None:
            dataset.status, dataset.error, dataset.stored_bytes = "failed", message, 0
            session.commit()


def _npz(X: Any, y: Any) -> bytes:
    import numpy as np

    out = io.BytesIO()
    np.savez(out, X=X, y=y)
    return out.getvalue()


def _store(dataset_id: str, X: Any, y: Any, settings: Settings) -> None:
    blob = _npz(X, y)
    with new_session() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        if dataset is None:
            raise Gone(dataset_id)
        view = memoryview(blob)
        for seq, start in enumerate(range(0, max(len(view), 1), CHUNK_BYTES)):
            session.add(DatasetChunk(dataset_id=dataset_id, seq=seq,
                                     data=bytes(view[start:start + CHUNK_BYTES])))
        dataset.status, dataset.processed, dataset.stored_bytes = "ready", len(y), len(blob)
        session.commit()
        _unpack(dataset, blob, uploads_root(settings) / dataset_id)


async def process(*, dataset_id: str, path: Path, listing: Listing, settings: Settings) -> None:
    """Decode every image in the pool, store them, mark the dataset ready; or mark it failed
    and raise UploadRejected with the first refusal. The temporary zip is removed."""
    import numpy as np

    from backend.datasets import ingest  # Pillow and numpy: imported by the first upload

    loop = asyncio.get_running_loop()
    shape, n = FOLDER_IMAGE_SHAPE, len(listing.entries)
    X = np.empty((n, *shape), dtype=np.uint8)
    y = np.array([label for _, label in listing.entries], dtype=np.int64)
    budget = settings.max_upload_uncompressed_bytes
    try:
        for start in range(0, n, BATCH):
            names = [entry for entry, _ in listing.entries[start:start + BATCH]]
            batch = await loop.run_in_executor(
                _pool(settings.dataset_processes), ingest.decode_batch, str(path), names, shape,
                settings.max_image_pixels, budget)
            if batch.error is not None:
                raise UploadRejected(batch.error, too_large=batch.too_large)
            budget -= batch.used_bytes
            X[start:start + len(names)] = np.frombuffer(batch.pixels, dtype=np.uint8).reshape(
                len(names), *shape)
            await asyncio.to_thread(_progress, dataset_id, start + len(names))
        await asyncio.to_thread(_store, dataset_id, X, y, settings)
    except Gone:
        log.info("dataset %s was deleted while it was processed", dataset_id)
        raise UploadRejected("the dataset was deleted while its images were processed") from None
    except UploadRejected as exc:
        await asyncio.to_thread(_fail, dataset_id, exc.message)
        raise
    except BrokenProcessPool:
        _pool.cache_clear()  # a decoder died (out of memory?): the next upload gets a new pool
        message = "the image decoder stopped while processing this upload (out of memory?)"
        await asyncio.to_thread(_fail, dataset_id, message)
        raise UploadRejected(message) from None
    finally:
        path.unlink(missing_ok=True)


def fail_interrupted() -> int:
    """At start: uploads a previous API process was processing will never finish."""
    with new_session() as session:
        stale = session.scalars(select(UploadedDataset)
                                .where(UploadedDataset.status == "processing")).all()
        for dataset in stale:
            dataset.status, dataset.stored_bytes = "failed", 0
            dataset.error = "the lab restarted while this upload was processed: upload it again"
        session.commit()
    shutil.rmtree(get_settings().data_dir / "tmp", ignore_errors=True)
    return len(stale)


# --- reading --------------------------------------------------------------------------------


def list_datasets(*, session: Session) -> Sequence[UploadedDataset]:
    return session.scalars(select(UploadedDataset).order_by(UploadedDataset.created_at.desc())).all()


def get_dataset(*, session: Session, dataset_id: str) -> UploadedDataset:
    dataset = session.get(UploadedDataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id!r} not found")
    return dataset


def usable(*, session: Session, dataset_id: str) -> UploadedDataset:
    """The dataset, if a run can train on it; DatasetUnavailable says why not."""
    dataset = session.get(UploadedDataset, dataset_id)
    if dataset is None:
        raise DatasetUnavailable(f"dataset 'folder:{dataset_id}' does not exist (deleted, or "
                                 "never uploaded here)")
    if dataset.status == "processing":
        raise DatasetUnavailable(f"dataset 'folder:{dataset_id}' is still being processed "
                                 f"({dataset.processed} of {dataset.n_images} images)")
    if dataset.status != "ready":
        raise DatasetUnavailable(f"dataset 'folder:{dataset_id}' cannot train: {dataset.error}")
    return dataset


def _unpack(dataset: UploadedDataset, blob: bytes, target: Path) -> None:
    """Write ``data.npz`` and ``meta.json`` (what the engine's catalog and loader read) into
    ``target`` at once (a renamed folder: a reader sees all or nothing)."""
    if (target / "meta.json").is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dataset.id}-", dir=target.parent))
    try:
        (tmp / "data.npz").write_bytes(blob)
        (tmp / "meta.json").write_text(json.dumps({
            "classes": dataset.classes, "counts": dataset.counts, "n": dataset.n_images,
            "input_shape": dataset.input_shape, "name": dataset.name}, ensure_ascii=False))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "meta.json").is_file():  # another process may have won the race
            raise


def materialize(*, session: Session, dataset_id: str, data_root: Path) -> Path:
    """Unpack a ready dataset's processed images under ``data_root/uploads/<id>`` once;
    DatasetUnavailable when it was deleted, failed or is still processing."""
    dataset = usable(session=session, dataset_id=dataset_id)
    target = data_root / "uploads" / dataset_id
    if not (target / "meta.json").is_file():
        pieces = session.scalars(select(DatasetChunk.data).where(
            DatasetChunk.dataset_id == dataset_id).order_by(DatasetChunk.seq))
        _unpack(dataset, b"".join(pieces), target)
        sweep_unpacked(session=session, data_root=data_root)
    return target


def sweep_unpacked(*, session: Session, data_root: Path) -> list[str]:
    """Remove the unpacked copies of datasets deleted since (a worker on another machine keeps
    one per dataset it trained on; the API deletes only its own). Folders being written
    (hidden, '.<id>-…') and folders put there by hand (no meta.json) are left alone."""
    folder = data_root / "uploads"
    try:
        unpacked = [p for p in folder.iterdir()
                    if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").is_file()]
    except OSError:
        return []
    known = set(session.scalars(select(UploadedDataset.id).where(
        UploadedDataset.id.in_([p.name for p in unpacked]))))
    gone = [p for p in unpacked if p.name not in known]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return sorted(p.name for p in gone)


@lru_cache(maxsize=8)
def _samples(dataset_id: str, path_str: str, per_class: int) -> list[list[str]]:
    import numpy as np

    from backend.datasets import ingest

    with np.load(Path(path_str) / "data.npz") as data:
        X, y = data["X"], data["y"]
    out = []
    for label in range(int(y.max()) + 1 if len(y) else 0):
        rows = np.flatnonzero(y == label)[:per_class]
        out.append([base64.b64encode(ingest.thumbnail_png(X[i])).decode() for i in rows])
    return out


def samples(*, session: Session, dataset_id: str, settings: Settings,
            per_class: int = SAMPLES_PER_CLASS) -> dict[str, Any]:
    """A few processed images per class, as PNGs (base64), as the network will see them."""
    get_dataset(session=session, dataset_id=dataset_id)
    path = materialize(session=session, dataset_id=dataset_id,
                       data_root=settings.data_dir / "datasets")
    dataset = get_dataset(session=session, dataset_id=dataset_id)
    images = _samples(dataset_id, str(path), per_class)
    return {"id": dataset_id, "input_shape": dataset.input_shape,
            "classes": [{"name": name, "count": dataset.counts.get(name, 0),
                         "samples": images[i] if i < len(images) else []}
                        for i, name in enumerate(dataset.classes)]}


# --- deleting -------------------------------------------------------------------------------


def delete_dataset(*, session: Session, dataset_id: str, settings: Settings | None = None) -> None:
    """Its row and chunks (ON DELETE CASCADE), its unpacked files, and on SQLite the freed
    pages (the database file shrinks)."""
    settings = settings or get_settings()
    session.delete(get_dataset(session=session, dataset_id=dataset_id))
    session.commit()
    shutil.rmtree(uploads_root(settings) / dataset_id, ignore_errors=True)
    _samples.cache_clear()
    if session.get_bind().dialect.name == "sqlite":
        try:
            with session.get_bind().connect() as conn:
                raw = conn.connection.driver_connection
                # Each step of this pragma frees one page, and the driver's execute() steps
                # once: executescript (sqlite3_exec) steps it to the end.
                raw.executescript("PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);")
        except Exception:  # best effort: space is reused by later writes anyway
            log.warning("freeing SQLite pages after a dataset's deletion failed", exc_info=True)


def chunk_count(*, session: Session, dataset_id: str) -> int:
    return session.scalar(select(func.count()).select_from(DatasetChunk)
                          .where(DatasetChunk.dataset_id == dataset_id)) or 0

