"""HTTP routes of datasets: the built-in ones and uploads."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from backend.config import get_settings
from backend.datasets import service
from backend.datasets.models import UploadedDataset
from backend.datasets.upload import UploadRejected
from backend.db import new_session
from backend.deps import SessionDep
from backend.errors import DomainError
from worker.engine.datasets import describe_datasets, split_sizes

router = APIRouter(prefix="/api/datasets", tags=["datasets"])

# Uploads being processed after their 202: referenced, so the event loop does not drop them.
_JOBS: set[asyncio.Task[None]] = set()


class UploadError(DomainError):
    def __init__(self, exc: UploadRejected) -> None:
        super().__init__(exc.message)
        self.status_code = 413 if exc.too_large else 422


def _out(d: UploadedDataset) -> dict[str, Any]:
    ready = d.status == "ready"
    out = {"name": f"folder:{d.id}", "id": d.id, "title": d.name, "kind": "image",
           "classes": d.classes, "counts": d.counts, "n_images": d.n_images,
           "input_shape": d.input_shape, "available": ready, "status": d.status,
           "progress": {"done": d.processed, "total": d.n_images},
           "sizes": split_sizes(d.n_images, None, 0.2, 0.2) if ready else None,
           "size_bytes": d.size_bytes, "stored_bytes": d.stored_bytes,
           "created_at": d.created_at.isoformat(), "uploaded": True,
           "description": f"Uploaded: {d.name}, {d.n_images} images resized to "
                          + "×".join(map(str, (d.input_shape or [])[1:])) + "."}
    if d.error:
        out["reason"] = d.error
    return out


@router.get("")
def list_datasets(session: SessionDep) -> list[dict[str, Any]]:
    builtin = describe_datasets(get_settings().data_dir / "datasets")  # cached by the engine
    return [*builtin, *(_out(d) for d in service.list_datasets(session=session))]


@router.get("/{dataset_id}")
def get_dataset(dataset_id: str, session: SessionDep) -> dict[str, Any]:
    return _out(service.get_dataset(session=session, dataset_id=dataset_id))


@router.get("/{dataset_id}/samples")
def dataset_samples(dataset_id: str, session: SessionDep,
                    per_class: Annotated[int, Query(ge=1, le=32)] = 8) -> dict[str, Any]:
    """A few images of each class as the network sees them (PNG, base64)."""
    try:
        return service.samples(session=session, dataset_id=dataset_id, settings=get_settings(),
                               per_class=per_class)
    except ValueError as exc:  # DatasetUnavailable: still processing, or failed
        raise service.Conflict(str(exc)) from None


def _discard(dataset_id: str) -> None:
    with new_session() as session:
        try:
            service.delete_dataset(session=session, dataset_id=dataset_id)
        except service.NotFound:
            pass


@router.post("", status_code=status.HTTP_201_CREATED,
             responses={202: {"description": "Accepted (wait=false): being processed; "
                              "GET /api/datasets/{id} follows its progress."}})
async def upload_dataset(
    session: SessionDep,
    response: Response,
    file: Annotated[UploadFile, File(description="A zip with one folder of images per class.")],
    name: Annotated[str | None, Form(max_length=200)] = None,
    wait: Annotated[bool, Query(description="Answer once the images are processed (201); "
                                "false: answer 202 at once.")] = True,
) -> dict[str, Any]:
    settings = get_settings()
    try:
        path = await run_in_threadpool(service.receive, file.file, settings)
    except UploadRejected as exc:
        raise UploadError(exc) from None
    try:
        dataset, listing = await run_in_threadpool(
            lambda: service.start_upload(session=session, name=name or file.filename or "upload",
                                         path=path, settings=settings))
    except UploadRejected as exc:
        path.unlink(missing_ok=True)
        raise UploadError(exc) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    job = asyncio.create_task(service.process(dataset_id=dataset.id, path=path, listing=listing,
                                              settings=settings))
    _JOBS.add(job)
    job.add_done_callback(_JOBS.discard)
    # A failure of an upload nobody waits for is in its row (status failed, reason).
    job.add_done_callback(lambda t: t.cancelled() or t.exception())
    if not wait:
        response.status_code = status.HTTP_202_ACCEPTED
        return _out(dataset)
    try:
        await asyncio.shield(job)  # a client that goes away does not stop the processing
    except UploadRejected as exc:
        await run_in_threadpool(_discard, dataset.id)  # refused: nothing is kept
        raise UploadError(exc) from None
    await run_in_threadpool(session.refresh, dataset)
    return _out(dataset)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, session: SessionDep) -> Response:
    service.delete_dataset(session=session, dataset_id=dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
