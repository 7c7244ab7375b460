"""Classes: create one, join it, know who a token is, launch a run within its rules.

A class's runs are ordinary runs with ``class_id`` and ``student`` set: every run route, the
stream and the worker serve them as they are; what differs is who may launch and steer them
(backend/classes/guard.py) and the order the workers take them in (fairqueue.py).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.broker import enqueue_class_run
from backend.classes.models import Classroom, Student
from backend.config import get_settings
from backend.db import utcnow
from backend.errors import Conflict, NotFound, TooMany, Unavailable
from backend.presets.catalog import BY_ID
from backend.runs import service as runs
from backend.runs.models import Run
from backend.spec_errors import SpecInvalid
from backend.spec_limits import check_spec_limits
from worker.engine.spec import Spec, parse_spec

# Class tokens say what they are by their prefix, so the guard knows which to look up (the
# lab's own API token never has it: it is a different secret, compared in constant time).
TEACHER_PREFIX = "ept_"
STUDENT_PREFIX = "eps_"
CLASS_PREFIXES = (TEACHER_PREFIX, STUDENT_PREFIX)
# Join codes: no 0/O, 1/I/L, read aloud or copied from a projector without mistakes.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
# Retry-After of a quota refusal: a queued run of a student usually starts within this.
QUEUED_RETRY_SECONDS = 30
RUNS_RETRY_SECONDS = 600


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who a class token is: the teacher of a class (student None) or one of its students."""

    class_id: int
    student: int | None
    name: str

    @property
    def is_teacher(self) -> bool:
        return self.student is None


def resolve(*, session: Session, token: str) -> Principal | None:
    digest = hash_token(token)
    if token.startswith(TEACHER_PREFIX):
        klass = session.scalar(select(Classroom).where(Classroom.teacher_token_hash == digest))
        return None if klass is None else Principal(klass.id, None, "teacher")
    if token.startswith(STUDENT_PREFIX):
        student = session.scalar(select(Student).where(Student.token_hash == digest))
        return None if student is None else Principal(student.class_id, student.id, student.name)
    return None


# -- the class's lessons ------------------------------------------------------------------


def base_spec(preset_id: str) -> dict[str, Any]:
    """The spec a preset's runs start from: its single run's spec, or its study's base."""
    preset = BY_ID[preset_id]
    spec = preset.get("spec") or preset["study"]["base"]
    return parse_spec({"name": preset["title"], **spec}).model_dump(mode="json")


def field_value(spec: dict[str, Any], path: str) -> Any:
    value: Any = spec
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def _leaf_paths(spec: dict[str, Any], prefix: str = "") -> set[str]:
    """Every field path of a spec, leaves and sections alike ("optim", "optim.lr", ...)."""
    paths = set()
    for key, value in spec.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, dict):
            paths |= _leaf_paths(value, f"{path}.")
    return paths


SPEC_PATHS = frozenset(_leaf_paths(Spec().model_dump(mode="json")))


def merge(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` over ``base``, section by section (a list or value replaces the base's)."""
    out = dict(base)
    for key, value in given.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


# -- create and join ------------------------------------------------------------------------


def _check_class(presets: list[str], locked: list[str], challenge: dict[str, Any] | None) -> None:
    errors = []
    for i, preset in enumerate(presets):
        if preset not in BY_ID:
            errors.append((f"presets.{i}", f"no preset {preset!r}; GET /api/presets lists them"))
    if not presets:
        errors.append(("presets", "a class offers at least one preset"))
    for i, path in enumerate(locked):
        if path not in SPEC_PATHS:
            errors.append((f"locked.{i}", (f"{path!r} is not a spec field path (e.g. "
                                           f"'model.hidden', 'optim.lr')")))
    if challenge is not None and challenge.get("preset") not in presets:
        errors.append(("challenge.preset", "must be one of the class's presets"))
    if errors:
        raise SpecInvalid([{"loc": field.split("."), "field": field, "msg": msg,
                            "type": "value_error"} for field, msg in errors])


# The settings a class is created with and its teacher may change later (not its join code or
# its token): create_class and update_class write them through the same checks.
SETTINGS = ("name", "presets", "locked", "max_runs_per_student", "max_queued_per_student",
            "show_classmates", "challenge")


def _apply(klass: Classroom, settings: dict[str, Any]) -> None:
    """Check ``settings`` (every one of SETTINGS) as a whole and write them on ``klass``."""
    _check_class(settings["presets"], settings["locked"], settings["challenge"])
    for key in SETTINGS:
        setattr(klass, key, settings[key])
    klass.locked = sorted(set(settings["locked"]))


def create_class(
    *, session: Session, name: str, presets: list[str], locked: list[str],
    max_runs_per_student: int, max_queued_per_student: int, show_classmates: bool = True,
    challenge: dict[str, Any] | None = None,
) -> tuple[Classroom, str]:
    """The new class and its teacher token (returned once: only its digest is stored)."""
    settings = {"name": name, "presets": presets, "locked": locked,
                "max_runs_per_student": max_runs_per_student,
                "max_queued_per_student": max_queued_per_student,
                "show_classmates": show_classmates, "challenge": challenge}
    token = TEACHER_PREFIX + secrets.token_urlsafe(24)
    for _ in range(10):  # a code already taken (1 in 887 million each time): draw again
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        klass = Classroom(join_code=code, teacher_token_hash=hash_token(token),
                          created_at=utcnow())
        _apply(klass, settings)
        session.add(klass)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return klass, token
    raise Unavailable("could not draw a free join code; try again")


def class_settings(klass: Classroom) -> dict[str, Any]:
    """The class's SETTINGS as they were given, to merge a change over."""
    return {key: getattr(klass, key) for key in SETTINGS}


def update_class(*, session: Session, klass: Classroom, settings: dict[str, Any]) -> Classroom:
    """New settings for an existing class; runs already launched keep their specs, the new
    locks and quotas hold for the runs launched from now on."""
    _apply(klass, settings)
    session.commit()
    return klass


def join_class(*, session: Session, join_code: str, name: str) -> tuple[Student, str]:
    klass = session.scalar(select(Classroom).where(
        Classroom.join_code == join_code.strip().upper()))
    if klass is None:
        raise NotFound("no class has this join code")
    name = " ".join(name.split())
    taken = session.scalar(select(func.count()).select_from(Student).where(
        Student.class_id == klass.id, func.lower(Student.name) == name.lower()))
    if taken:
        raise Conflict(f"someone in this class already goes by {name!r}: choose another name")
    token = STUDENT_PREFIX + secrets.token_urlsafe(24)
    student = Student(class_id=klass.id, name=name, token_hash=hash_token(token),
                      joined_at=utcnow())
    session.add(student)
    session.commit()
    return student, token


def get_class(*, session: Session, class_id: int) -> Classroom:
    klass = session.get(Classroom, class_id)
    if klass is None:
        raise NotFound(f"class {class_id} not found")
    return klass


def students_of(*, session: Session, class_id: int) -> list[Student]:
    return list(session.scalars(select(Student).where(Student.class_id == class_id)
                                .order_by(Student.id)))


def visible_to(*, session: Session, principal: Principal | None) -> dict[str, int]:
    """The filters of run listings for ``principal``: its class, and its own runs only when
    the class does not show classmates' runs (no filter without a class token)."""
    if principal is None:
        return {}
    klass = get_class(session=session, class_id=principal.class_id)
    if principal.is_teacher or klass.show_classmates:
        return {"class_id": klass.id}
    return {"class_id": klass.id, "student": principal.student or 0}


def may_change(principal: Principal | None, run: Run) -> bool:
    """Whether ``principal`` may cancel, fork, set the η of or delete ``run``: the teacher
    any run of the class, a student her own. Without a class token the lab's own token
    guard decides, not this (True). The guard enforces it; run rows carry it as
    ``can_control`` so the pages show only the controls that would be obeyed."""
    if principal is None:
        return True
    return run.class_id == principal.class_id and (
        principal.is_teacher or run.student == principal.student)


# -- launching a run ------------------------------------------------------------------------


def _spec_for(klass: Classroom, given: dict[str, Any], preset: str | None,
              check_locks: bool) -> Spec:
    if preset is not None and preset not in klass.presets:
        raise SpecInvalid.one("preset", f"{preset!r} is not one of this class's lessons "
                                        f"({', '.join(klass.presets)})")
    base = base_spec(preset or klass.presets[0])
    try:
        spec = parse_spec(merge(base, given))
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc) from None
    if check_locks:
        merged = spec.model_dump(mode="json")
        changed = [path for path in klass.locked
                   if field_value(merged, path) != field_value(base, path)]
        if changed:
            raise SpecInvalid([{
                "loc": path.split("."), "field": path, "type": "value_error",
                "msg": f"locked by the class to {field_value(base, path)!r}"} for path in changed])
    return spec


def _over_quota(session: Session, klass: Classroom, student: int) -> TooMany | None:
    """After this transaction's INSERT: the quota the new run breaks, if any."""
    mine = (Run.class_id == klass.id) & (Run.student == student)
    total = session.scalar(select(func.count()).select_from(Run).where(mine)) or 0
    if total > klass.max_runs_per_student:
        refusal = TooMany(f"you have launched {klass.max_runs_per_student} runs, the most "
                          f"this class allows (max_runs_per_student); delete one to launch "
                          f"another")
        refusal.retry_after = RUNS_RETRY_SECONDS
        return refusal
    queued = session.scalar(select(func.count()).select_from(Run).where(
        mine, Run.status == "queued")) or 0
    if queued > klass.max_queued_per_student:
        refusal = TooMany(f"you already have {klass.max_queued_per_student} runs waiting, the "
                          f"most this class allows (max_queued_per_student); wait until one "
                          f"starts")
        refusal.retry_after = QUEUED_RETRY_SECONDS
        return refusal
    return None


def submit_class_run(*, session: Session, principal: Principal, given: dict[str, Any],
                     preset: str | None = None) -> Run:
    """A run of the class: ``given`` (the fields the request set) over the lesson's base
    spec; locked fields and quotas hold for students, not for the teacher. It goes to the
    broker as a claim on the class's fair queue (fairqueue.py), not on itself."""
    klass = get_class(session=session, class_id=principal.class_id)
    spec = _spec_for(klass, given, preset, check_locks=not principal.is_teacher)
    settings = get_settings()
    check_spec_limits(spec, settings)
    runs.lock_queue(session)
    run = runs.new_run(spec)
    run.class_id, run.student = klass.id, principal.student
    run.class_preset = preset or klass.presets[0]
    session.add(run)
    session.flush()
    if principal.student is not None and (refusal := _over_quota(session, klass,
                                                                 principal.student)):
        session.rollback()
        raise refusal
    runs.check_queue_room(session=session, limit=settings.max_queued_runs)
    session.commit()
    try:
        enqueue_class_run(run.id, klass.id, run.queue)
    except Exception as exc:
        runs.delete_run(session=session, run_id=run.id)
        raise Unavailable(f"the broker could not take the run: {type(exc).__name__}") from exc
    return run
