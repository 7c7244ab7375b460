"""Uploaded datasets: store a checked archive, list, and unpack it where a worker trains."""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.datasets.models import UploadedDataset
from backend.datasets.upload import Limits, check_archive
from backend.db import utcnow
from backend.errors import NotFound

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def limits_of(settings: Settings) -> Limits:
    return Limits(max_bytes=settings.max_upload_bytes, max_files=settings.max_upload_files,
                  max_uncompressed_bytes=settings.max_upload_uncompressed_bytes,
                  max_image_pixels=settings.max_image_pixels)


def _clean(name: str) -> str:
    return _UNSAFE.sub("_", name).strip(" .") or "_"


def create_dataset(*, session: Session, name: str, data: bytes, limits: Limits) -> UploadedDataset:
    checked = check_archive(data, limits)  # raises UploadRejected before anything is stored
    # Re-packed with clean names: what is stored is only what was checked.
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_STORED) as out:
        for label, filename, blob in checked.images:
            out.writestr(f"{_clean(label)}/{_clean(filename)}", blob)
    dataset = UploadedDataset(
        id=secrets.token_hex(6), name=name[:200], classes=[_clean(c) for c in checked.classes],
        counts={_clean(k): v for k, v in checked.counts.items()}, n_images=len(checked.images),
        size_bytes=len(data), created_at=utcnow(), archive=packed.getvalue(),
    )
    session.add(dataset)
    session.commit()
    return dataset


def list_datasets(*, session: Session) -> Sequence[UploadedDataset]:
    return session.scalars(select(UploadedDataset).order_by(UploadedDataset.created_at.desc())).all()


def get_dataset(*, session: Session, dataset_id: str) -> UploadedDataset:
    dataset = session.get(UploadedDataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id!r} not found")
    return dataset


def delete_dataset(*, session: Session, dataset_id: str) -> None:
    session.delete(get_dataset(session=session, dataset_id=dataset_id))
    session.commit()


def materialize(*, session: Session, dataset_id: str, data_root: Path) -> Path:
    """Unpack an uploaded dataset under ``data_root/uploads/<id>`` once (atomic rename)."""
    target = data_root / "uploads" / dataset_id
    if target.is_dir():
        return target
    dataset = get_dataset(session=session, dataset_id=dataset_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dataset_id}-", dir=target.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(dataset.archive)) as archive:
            archive.extractall(tmp)  # names were cleaned when the archive was stored
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():  # another worker may have won the race
            raise
    return target
