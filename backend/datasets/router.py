"""HTTP routes of datasets: the built-in ones and uploads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from backend.config import get_settings
from backend.datasets import service
from backend.datasets.models import UploadedDataset
from backend.datasets.upload import UploadRejected
from backend.deps import SessionDep
from backend.errors import DomainError
from worker.engine.datasets import describe_datasets

router = APIRouter(prefix="/api/datasets", tags=["datasets"])


class UploadError(DomainError):
    def __init__(self, exc: UploadRejected) -> None:
        super().__init__(exc.message)
        self.status_code = 413 if exc.too_large else 422


def _out(d: UploadedDataset) -> dict[str, Any]:
    return {"name": f"folder:{d.id}", "id": d.id, "title": d.name, "kind": "image",
            "classes": d.classes, "counts": d.counts, "n_images": d.n_images,
            "size_bytes": d.size_bytes, "created_at": d.created_at.isoformat(), "uploaded": True}


@router.get("")
def list_datasets(session: SessionDep) -> list[dict[str, Any]]:
    builtin = describe_datasets(get_settings().data_dir / "datasets")  # cached by the engine
    return [*builtin, *(_out(d) for d in service.list_datasets(session=session))]


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_dataset(
    session: SessionDep,
    file: Annotated[UploadFile, File(description="A zip with one folder of images per class.")],
    name: Annotated[str | None, Form(max_length=200)] = None,
) -> dict[str, Any]:
    settings = get_settings()
    data = await file.read(settings.max_upload_bytes + 1)  # never more than the limit + 1
    try:
        dataset = await run_in_threadpool(
            lambda: service.create_dataset(session=session, name=name or file.filename or "upload",
                                           data=data, limits=service.limits_of(settings)))
    except UploadRejected as exc:
        raise UploadError(exc) from None
    return _out(dataset)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, session: SessionDep) -> Response:
    service.delete_dataset(session=session, dataset_id=dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
