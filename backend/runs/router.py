"""HTTP routes of runs: thin, parse → service → answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from backend import heavy
from backend.classes.service import may_change, submit_class_run, visible_to
from backend.config import get_settings
from backend.deps import MAX_ID, Cursor, OptionalId, RunId, SessionDep
from backend.runs import (
    blobs,
    control,
    controlled,
    examples,
    fork,
    landscape,
    lr_range,
    service,
    whatif,
)
from backend.runs.downsample import downsample
from backend.runs.predictors import predictors
from backend.runs.schemas import MetricsOut, RunOut
from backend.spec_errors import SpecInvalid
from backend.workers.service import served_queues
from worker.engine.spec import Spec

router = APIRouter(prefix="/api/runs", tags=["runs"])


def _row(run: Any, served: set[str] | None, request: Request) -> RunOut:
    """The run as this request's sender sees it: with ``can_control`` for them."""
    out = RunOut.of(run, served)
    out.can_control = may_change(getattr(request.state, "principal", None), run)
    return out


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def create_run(
    session: SessionDep, spec: Spec, request: Request,
    preset: Annotated[str | None, Query(max_length=64, description=(
        "With a class token: the class's lesson whose spec the body is merged over (default "
        "its first)."))] = None,
) -> RunOut:
    """Every field has a default, so ``{}`` is a small MLP on digits; unknown fields are 422.
    With a class token the body is merged over the lesson's spec (backend/classes)."""
    # Read before the creation, whose commit then hands the connection back: read after, it
    # would stay checked out until the session's teardown, which waits for a threadpool slot
    # (a burst of creations exhausted the pool).
    served = served_queues(session=session)
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        run = submit_class_run(session=session, principal=principal, preset=preset,
                               given=spec.model_dump(mode="json", exclude_unset=True))
        return _row(run, served, request)
    run = service.submit_run(session=session, spec_data=spec.model_dump(mode="json"))
    return _row(run, served, request)


@router.get("", response_model=list[RunOut])
def list_runs(
    session: SessionDep,
    request: Request,
    status: str | None = None,
    study_id: OptionalId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> list[RunOut]:
    """With a class token: the runs of its class (a student's own only, when the class does
    not show classmates' runs)."""
    runs = service.list_runs(
        session=session, status=status, study_id=study_id, limit=limit, offset=offset,
        **visible_to(session=session, principal=getattr(request.state, "principal", None)),
    )
    served = served_queues(session=session)
    return [_row(run, served, request) for run in runs]


@router.get("/{run_id}", response_model=RunOut)
def get_run(run_id: RunId, session: SessionDep, request: Request) -> RunOut:
    run = service.get_run(session=session, run_id=run_id)
    return _row(run, served_queues(session=session), request)


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_run(run_id: RunId, session: SessionDep) -> Response:
    service.delete_run(session=session, run_id=run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _keys(keys: str | None) -> list[str] | None:
    return [k for k in keys.split(",") if k] if keys else None


@router.get("/{run_id}/metrics", response_model=MetricsOut)
def get_metrics(
    run_id: RunId,
    session: SessionDep,
    keys: Annotated[str | None, Query(description="Comma-separated metric keys.")] = None,
    after: Cursor = 0,
    points: Annotated[int | None, Query(
        ge=10, le=100_000,
        description="Downsample each series to at most this many points (each bucket keeps "
        "its min and max).")] = None,
) -> MetricsOut:
    run = service.get_run(session=session, run_id=run_id)
    if points is None:
        cap = get_settings().max_metric_points
        if service.more_points_than(session=session, run_id=run_id, cap=cap, after=after,
                                    keys=_keys(keys)):
            raise SpecInvalid.one("points", (
                f"more than max_metric_points ({cap}) points after cursor {after}: ask for "
                f"points=N (each series downsampled to N) or fewer keys"))
        series, cursor = service.get_points(
            session=session, run_id=run_id, after=after, keys=_keys(keys)
        )
        return MetricsOut(series=lr_range.eta_axis(run, series), cursor=cursor)
    cursor = service.last_cursor(session=session, run_id=run_id)
    series = {}
    requested = _keys(keys)
    shown = service.series_keys(session=session, run_id=run_id) if requested is None else \
        service.visible(requested, service.shows_held_out(session=session, run_id=run_id))
    for key in shown:
        # Everything is read up to one cursor, so the stream can go on from it exactly.
        reduced = downsample(session=session, run_id=run_id, key=key, points=points, until=cursor)
        if reduced is None:
            reduced = service.get_points(
                session=session, run_id=run_id, keys=[key], until=cursor)[0].get(key, [])
        if reduced:
            series[key] = reduced
    return MetricsOut(series=lr_range.eta_axis(run, series), cursor=cursor)


@router.get("/{run_id}/metrics.csv", response_class=Response)
def get_metrics_csv(
    run_id: RunId, session: SessionDep, request: Request, keys: str | None = None,
    format: Annotated[Literal["long", "wide"], Query(
        description="long: rows (key, x, value), every series; wide: one row per epoch and a "
        "column per epoch-level key (step-level series left out).")] = "long",
) -> Response:
    """Long: every point as CSV rows (key, x, value), series after series, streamed a page at
    a time: a million-point run is never held whole. Wide: one row per epoch."""
    service.get_run(session=session, run_id=run_id)
    if format == "wide":
        return Response(
            service.points_csv_wide(session=session, run_id=run_id, keys=_keys(keys)),
            media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="run-{run_id}-metrics-wide.csv"'})
    return StreamingResponse(
        heavy.stream(request, service.stream_points_csv(run_id=run_id, keys=_keys(keys))),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'})


@router.post("/{run_id}/cancel", response_model=RunOut)
def cancel_run(run_id: RunId, session: SessionDep) -> RunOut:
    """Stop after the current epoch; the best model so far is kept. A queued run ends at once."""
    return RunOut.of(control.request_cancel(session=session, run_id=run_id))


class ForkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epoch: int = Field(ge=1, le=MAX_ID, description="The parent's epoch the fork starts after.")
    spec: dict[str, Any] = Field(default_factory=dict, description=(
        "A partial spec merged over the parent's: optimisation knobs only (optim.lr, "
        "optim.momentum, optim.schedule, optim.weight_decay, "
        "training.early_stopping.patience, training.keep)."))


@router.post("/{run_id}/fork", status_code=status.HTTP_201_CREATED, response_model=RunOut)
def fork_run(run_id: RunId, body: ForkIn, session: SessionDep) -> RunOut:
    """A new run whose points up to ``epoch`` are the parent's, then trained with the changed
    knobs; 409 when the change is not a knob or the parent cannot be replayed to ``epoch``."""
    served = served_queues(session=session)
    run = fork.fork_run(session=session, run_id=run_id, epoch=body.epoch, changes=body.spec)
    return RunOut.of(run, served)


@router.get("/{run_id}/same-start")
def get_same_start(
    run_id: RunId, session: SessionDep,
    other: Annotated[int, Query(ge=1, le=MAX_ID, description="The run to compare with.")],
) -> dict[str, Any]:
    """Whether the two runs start from the same z0 and see the same minibatch order (their
    specs differ only in optimisation knobs): then B − A of a curve is the knobs' doing."""
    return controlled.same_start(session=session, run_id=run_id, other_id=other)


class LrIn(BaseModel):
    lr: float = Field(gt=0, le=100, description="The new learning rate η, used from the next epoch.")


@router.post("/{run_id}/lr", response_model=RunOut)
def change_lr(run_id: RunId, body: LrIn, session: SessionDep) -> RunOut:
    return RunOut.of(control.request_lr(session=session, run_id=run_id, lr=body.lr))


@router.get("/{run_id}/model", response_class=Response)
def download_model(run_id: RunId, session: SessionDep, request: Request) -> Response:
    """The returned model z*: ``torch.load`` gives {spec, state_dict, classes, input_shape}."""
    stored = service.model_info(session=session, run_id=run_id)
    # Streamed piece by piece: six downloads of a 200 MB model no longer hold 1.2 GB.
    return StreamingResponse(heavy.stream(request, blobs.stream_blob("model", run_id)),
                             media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="run-{run_id}-model.pt"',
        "Content-Length": str(stored.size)})


class PredictIn(BaseModel):
    inputs: list[Any] = Field(min_length=1, max_length=10_000,
                              description="Examples, each shaped like the dataset's inputs.")


class PredictOut(BaseModel):
    probabilities: list[list[float]]
    classes: list[str]


@router.post("/{run_id}/predict", response_model=PredictOut)
async def predict(run_id: RunId, body: PredictIn, session: SessionDep,
                  request: Request) -> PredictOut:
    return await heavy.run(request, _predict, run_id, body, session)


def _predict(run_id: int, body: PredictIn, session: Session) -> PredictOut:
    stored = service.model_info(session=session, run_id=run_id)
    predictor = predictors.get(
        (run_id, stored.created_at), stored.size,
        lambda: service.get_model(session=session, run_id=run_id),
        entries=get_settings().predictor_cache)
    from worker.engine.predict import PredictError  # torch: loaded by the predictor above

    try:
        probabilities = predictor.probabilities(body.inputs)
    except PredictError as exc:
        raise SpecInvalid.one("inputs", str(exc)) from None
    return PredictOut(probabilities=probabilities, classes=predictor.classes)


@router.get("/{run_id}/boundary")
def get_boundary(
    run_id: RunId, session: SessionDep,
    epoch: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> dict[str, Any]:
    """The decision-boundary grid of a 2-D run: the newest, or the one of ``epoch``."""
    return service.get_boundary(session=session, run_id=run_id, epoch=epoch)


MAX_WHATIFS = 100


@router.get("/{run_id}/early-stopping")
def get_early_stopping(
    run_id: RunId, session: SessionDep,
    patience: Annotated[str, Query(max_length=1000, description=(
        "Comma-separated patiences p, e.g. 1,2,5,10."))] = "1,2,5,10",
) -> list[dict[str, Any]]:
    """What early stopping with each p would have returned (best epoch z*, where it stops, z*'s
    validation and test accuracy), from the ended run's stored curves: no new run."""
    try:
        values = [int(p) for p in patience.split(",")]
    except ValueError:
        raise SpecInvalid.one("patience", "must be whole numbers separated by commas, "
                              "e.g. 1,2,5,10") from None
    if not 1 <= len(values) <= MAX_WHATIFS or not all(1 <= p <= 10_000 for p in values):
        raise SpecInvalid.one("patience", f"1 to {MAX_WHATIFS} values, each from 1 to 10000")
    return whatif.early_stopping(session=session, run_id=run_id, patiences=values)


@router.get("/{run_id}/health")
def get_health(run_id: RunId, session: SessionDep) -> dict[str, Any]:
    """The training-health diagnosis: {rules, diagnoses: [{layer, key, rule, since, value,
    message}]}, one line per layer whose latest update_ratio, dead_fraction or saturation
    breaks a rule."""
    return service.run_health(session=session, run_id=run_id)


@router.get("/{run_id}/confusion")
def get_confusion(
    run_id: RunId, session: SessionDep,
    epoch: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> dict[str, Any]:
    """The confusion matrix on S_v (rows: true class, columns: predicted) of ``epoch``; by
    default of the returned model's epoch (result.kept), while running the newest."""
    return service.get_confusion(session=session, run_id=run_id, epoch=epoch)


@router.get("/{run_id}/examples")
def get_examples(
    run_id: RunId, session: SessionDep,
    split: Annotated[Literal["val"], Query(description="Only S_v, the confusion's set.")] = "val",
    true: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    pred: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    epoch: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict[str, Any]]:
    """The examples of one confusion cell (true class, predicted class) of the returned model:
    [{index, label, pred, probabilities, spread, png, input}], png base64 for image data, else
    null; input: the (flattened) input of other data (a 1-D signal, a standardised 2-D point);
    spread: per class, the std across an ensemble's members or dropout masks (else null)."""
    return examples.cell_examples(session=session, run_id=run_id, true=true, pred=pred,
                                  epoch=epoch, limit=limit)


@router.get("/{run_id}/landscape", responses={202: {"description": "Being computed: "
                                                    "{status, progress (0…1), resolution}."}})
def get_landscape(
    run_id: RunId, session: SessionDep, response: Response,
    resolution: Annotated[int, Query(ge=5, le=51, description=(
        "Grid points per axis; odd, so that the grid passes through z*."))] = 21,
) -> dict[str, Any]:
    """The training loss on the plane through the returned model z* spanned by two
    filter-normalised random directions (Li et al. 2018), with the optimiser's path projected
    on it: {alphas, betas, loss (rows follow betas), path: [[a, b], …], path_epochs,
    centre_loss, examples}. Computed on a worker on the first request (202 with its progress
    until it is done)."""
    if resolution % 2 == 0:
        raise SpecInvalid.one("resolution", "must be odd, so that the grid passes through z*")
    code, body = landscape.get_or_start(session=session, run_id=run_id, resolution=resolution)
    response.status_code = code
    return body
