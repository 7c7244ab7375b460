"""Server-side limits on what one spec may ask for (the lab is shared): settings, not code.

The spec model keeps hard sanity bounds; these are the operator's, lower, and each refusal names
the field, the limit's setting and its value.
"""

from __future__ import annotations

import math
from typing import Any

from backend.config import Settings
from backend.db import new_session
from backend.runs.admission import check_admission
from backend.spec_errors import SpecInvalid
from worker.engine.datasets.catalog import (
    FOLDER_PREFIX,
    DatasetInfo,
    DatasetUnavailable,
    upload_info,
)
from worker.engine.spec import Spec


def check_finite(data: Any, field: str = "") -> None:
    """422 on the first NaN or ±Infinity anywhere in ``data`` (JSON lets them in as NaN and
    Infinity; stored, they became null and the spec could not be submitted again)."""
    if isinstance(data, float) and not math.isfinite(data):
        raise SpecInvalid.one(field or "(spec)", f"{data} is not a finite number")
    items = (data.items() if isinstance(data, dict)
             else enumerate(data) if isinstance(data, list | tuple) else ())
    for key, value in items:
        check_finite(value, f"{field}.{key}" if field else str(key))


def check_dataset_available(spec: Spec, settings: Settings) -> None:
    """422 on data.dataset when it names a built-in set whose files this lab does not have
    (mnist without its files): refused at submit, rather than accepted and failed in the
    worker. The catalog's availability is the one GET /api/datasets lists (no torch, cached
    until the files change). Uploaded folders are the uploads' own business."""
    from worker.engine.datasets import describe_datasets  # no torch; loaded on first use
    from worker.engine.datasets.catalog import is_folder

    name = spec.data.dataset
    if is_folder(name):
        return
    for entry in describe_datasets(settings.data_dir / "datasets"):
        if entry["name"] == name and not entry["available"]:
            # The catalog's reason names a folder on the server: not for the client.
            raise SpecInvalid.one("data.dataset", (
                f"dataset {name!r} is not available on this lab (its files are not installed "
                f"here); the lab's list of datasets marks which are"))


def check_spec_limits(spec: Spec, settings: Settings) -> None:
    check_finite(spec.model_dump())
    check_dataset_available(spec, settings)
    checks = [
        ("training.max_epochs", spec.training.max_epochs, "max_epochs", settings.max_epochs),
        ("model.hidden", len(spec.model.hidden), "max_depth", settings.max_depth),
        ("model.hidden", max(spec.model.hidden, default=0), "max_width", settings.max_width),
        ("ensemble.members", spec.ensemble.members, "max_members", settings.max_members),
        ("data.n_samples", spec.data.n_samples or 0, "max_n_samples", settings.max_n_samples),
        ("optim.batch_size", 0 if spec.optim.batch_size == "full" else spec.optim.batch_size,
         "max_batch_size", settings.max_batch_size),
    ]
    for field, value, name, limit in checks:
        if value > limit:
            raise SpecInvalid.one(field,
                                  f"{value} is over the limit {name} = {limit} of this lab")
    # Each limit alone is sane; together they multiply: the whole run must fit in memory.
    check_admission(spec, settings.max_run_memory_mb, upload_of(spec))


def upload_of(spec: Spec) -> DatasetInfo | None:
    """The catalog row of the uploaded dataset ``spec`` names (from its database row), None
    for a built-in one; 422 on data.dataset when it is missing, deleted, failed or still
    being processed (a run on it could only fail)."""
    dataset = spec.data.dataset
    if not dataset.startswith(FOLDER_PREFIX):
        return None
    from backend.datasets.service import usable  # the datasets' service imports the engine

    with new_session() as session:
        try:
            row = usable(session=session, dataset_id=dataset.removeprefix(FOLDER_PREFIX))
        except DatasetUnavailable as exc:
            raise SpecInvalid.one("data.dataset", str(exc)) from None
        return upload_info(dataset, row.classes, row.n_images)
