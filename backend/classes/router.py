"""HTTP routes of classes: create, join, who am I, the class, its board and its export."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.classes import board as boards
from backend.classes import export
from backend.classes import service as classes
from backend.classes.service import Principal
from backend.config import get_settings
from backend.deps import MAX_ID, SessionDep
from backend.errors import DomainError
from backend.presets.catalog import BY_ID
from backend.spec_errors import SpecInvalid

router = APIRouter(prefix="/api/classes", tags=["classes"])

ClassId = Annotated[int, Path(ge=1, le=MAX_ID, description="A class's id.")]


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ChallengeIn(_Strict):
    preset: str = Field(max_length=64, description="The lesson whose runs are ranked.")
    max_epochs: int | None = Field(None, ge=1, le=100_000,
                                   description="Only runs of at most this many epochs count.")


class ClassIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    presets: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=50, description="Preset ids: the class's lessons; the first "
        "is the base spec of a run that names none.")
    locked: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=200,
        description="Spec field paths fixed to the lesson's values (e.g. 'model.hidden').")
    max_runs_per_student: int = Field(50, ge=1, le=100_000)
    max_queued_per_student: int = Field(5, ge=1, le=10_000)
    show_classmates: bool = Field(True, description="Students see classmates' runs, read-only.")
    challenge: ChallengeIn | None = None


class ClassCreated(BaseModel):
    id: int
    join_code: str
    teacher_token: str


class JoinIn(_Strict):
    join_code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")


class Joined(BaseModel):
    student_token: str
    student_id: int
    class_id: int
    name: str


def principal_of(request: Request) -> Principal | None:
    """The class token's principal, resolved by backend/classes/guard.py (None: no such
    token on this request)."""
    return getattr(request.state, "principal", None)


def _lab_token(request: Request) -> bool:
    token = get_settings().api_token
    secret = token.get_secret_value() if token is not None else ""
    given = request.headers.get("authorization", "")
    return bool(secret) and given.lower().startswith("bearer ") and secrets.compare_digest(
        given[7:].strip().encode(), secret.encode())


def member(request: Request, class_id: int, *, teacher: bool = False) -> Principal:
    """Who may see class ``class_id``: its teacher and students (the guard has checked the
    class), or whoever holds the lab's API token (as its teacher)."""
    principal = principal_of(request)
    if principal is not None:
        if teacher and not principal.is_teacher:
            raise Forbidden("only the class's teacher may do this")
        return principal
    if _lab_token(request):
        return Principal(class_id, None, "teacher")
    raise Unauthorized("send the class's teacher or student token: 'Authorization: Bearer "
                       "<token>'")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClassCreated)
def create_class(body: ClassIn, session: SessionDep) -> ClassCreated:
    """A new class (with the lab's API token when one is set). The teacher token is shown
    once: keep it."""
    klass, token = classes.create_class(session=session, **body.model_dump())
    return ClassCreated(id=klass.id, join_code=klass.join_code, teacher_token=token)


@router.post("/join", status_code=status.HTTP_201_CREATED, response_model=Joined)
def join_class(body: JoinIn, session: SessionDep) -> Joined:
    """Join with the class's code and a name: the answer's student token is the student's
    key to the class (no account, no email)."""
    student, token = classes.join_class(session=session, join_code=body.join_code,
                                        name=body.name)
    return Joined(student_token=token, student_id=student.id, class_id=student.class_id,
                  name=student.name)


@router.get("/me")
def who_am_i(request: Request) -> dict[str, Any]:
    """Who this request's class token is: {class_id, role, student, name}."""
    principal = principal_of(request)
    if principal is None:
        raise Unauthorized("send a class's teacher or student token")
    return {"class_id": principal.class_id,
            "role": "teacher" if principal.is_teacher else "student",
            "student": principal.student, "name": principal.name}


def _class_out(session: SessionDep, klass: Any, principal: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": klass.id, "name": klass.name,
        "presets": [BY_ID[p] for p in klass.presets if p in BY_ID],
        "base_specs": {p: classes.base_spec(p) for p in klass.presets if p in BY_ID},
        "locked": klass.locked, "max_runs_per_student": klass.max_runs_per_student,
        "max_queued_per_student": klass.max_queued_per_student,
        "show_classmates": klass.show_classmates, "challenge": klass.challenge}
    if principal.is_teacher:
        out["join_code"] = klass.join_code
        out["students"] = [{"id": s.id, "name": s.name}
                           for s in classes.students_of(session=session, class_id=klass.id)]
    return out


@router.get("/{class_id}")
def get_class(class_id: ClassId, request: Request, session: SessionDep) -> dict[str, Any]:
    """The class: its lessons (the presets, in full), locked fields and quotas; for the
    teacher also its join code and students."""
    principal = member(request, class_id)
    klass = classes.get_class(session=session, class_id=class_id)
    return _class_out(session, klass, principal)


@router.patch("/{class_id}")
def update_class(
    class_id: ClassId, request: Request, session: SessionDep,
    changes: Annotated[dict[str, Any], Body(
        description="Any of the creation's fields (" + ", ".join(ClassIn.model_fields) + "); "
        "the others keep their values. The join code and tokens do not change.",
        openapi_examples={"quotas": {"value": {"max_queued_per_student": 3, "locked": []}}})],
) -> dict[str, Any]:
    """Change the class's settings (the teacher only). The result is checked as a whole,
    exactly as a new class is; the answer is the class as GET gives it."""
    principal = member(request, class_id, teacher=True)
    klass = classes.get_class(session=session, class_id=class_id)
    # Unknown keys (join_code, a typo) are refused by ClassIn's extra="forbid", by name.
    merged = {**classes.class_settings(klass), **changes}
    try:  # as FastAPI checks a creation's body: the same strict model, the same errors
        settings = ClassIn.model_validate(merged)
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc) from None
    classes.update_class(session=session, klass=klass, settings=settings.model_dump())
    return _class_out(session, klass, principal)


@router.get("/{class_id}/board")
def get_board(class_id: ClassId, request: Request, session: SessionDep) -> dict[str, Any]:
    """Per student: runs, statuses, best test accuracy; the challenge ranking. With the
    teacher's token also each run's spec, result and times."""
    principal = member(request, class_id)
    klass = classes.get_class(session=session, class_id=class_id)
    return boards.board(session=session, klass=klass, detailed=principal.is_teacher,
                        viewer=principal)


@router.get("/{class_id}/export", response_class=StreamingResponse)
def export_class(class_id: ClassId, request: Request, session: SessionDep) -> StreamingResponse:
    """Every run of the class as one zip (spec, metrics CSV and result of each), with the
    board as JSON and as a static HTML report (teacher only)."""
    member(request, class_id, teacher=True)
    klass = classes.get_class(session=session, class_id=class_id)
    return StreamingResponse(
        export.export_chunks(session=session, klass=klass), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="class-{class_id}.zip"'})
