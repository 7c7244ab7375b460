"""Classrooms through the real app and database: joining, locked fields, quotas, tokens scoped to
their class, the board and the export (SPEC.md "Version 2" -> "Classrooms")."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from backend.app import create_app
from backend.classes.models import Classroom, Student
from backend.db import new_session, utcnow
from backend.runs.models import Run

LAB_TOKEN = "lab-token-for-class-tests"
CLASS = {"name": "Optimisation 101", "presets": ["sgd-momentum", "minibatch-size"],
         "locked": ["model.hidden", "data.dataset"], "max_runs_per_student": 4,
         "max_queued_per_student": 2}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client(configure):
    configure()
    with TestClient(create_app()) as client:
        yield client


def new_class(client: TestClient, headers: dict[str, str] | None = None, **changes) -> dict:
    response = client.post("/api/classes", json={**CLASS, **changes}, headers=headers or {})
    assert response.status_code == 201, response.text
    return response.json()


def join(client: TestClient, code: str, name: str) -> str:
    response = client.post("/api/classes/join", json={"join_code": code, "name": name})
    assert response.status_code == 201, response.text
    return response.json()["student_token"]


def test_join_and_who_am_i(client) -> None:
    created = new_class(client)
    assert set(created) == {"id", "join_code", "teacher_token"}
    token = join(client, created["join_code"].lower(), "  Ada  Lovelace ")
    me = client.get("/api/classes/me", headers=bearer(token)).json()
    assert me == {"class_id": created["id"], "role": "student", "student": me["student"],
                  "name": "Ada Lovelace"}
    teacher = client.get("/api/classes/me", headers=bearer(created["teacher_token"])).json()
    assert teacher["role"] == "teacher" and teacher["class_id"] == created["id"]
    # the same name twice in one class: refused, so the board never shows two of them
    again = client.post("/api/classes/join", json={"join_code": created["join_code"],
                                                    "name": "ada lovelace"})
    assert again.status_code == 409
    wrong = client.post("/api/classes/join", json={"join_code": "NOPE42", "name": "Bob"})
    assert wrong.status_code == 404
    blank = client.post("/api/classes/join", json={"join_code": created["join_code"],
                                                    "name": "   "})
    assert blank.status_code == 422 and blank.json()["detail"][0]["field"] == "name"
    # the teacher sees the code and the students; a student does not see the code
    info = client.get(f"/api/classes/{created['id']}", headers=bearer(created["teacher_token"]))
    assert info.json()["join_code"] == created["join_code"]
    assert [s["name"] for s in info.json()["students"]] == ["Ada Lovelace"]
    seen = client.get(f"/api/classes/{created['id']}", headers=bearer(token)).json()
    assert "join_code" not in seen and [p["id"] for p in seen["presets"]] == CLASS["presets"]
    # tokens are stored as digests only
    with new_session() as session:
        stored = session.execute(text("SELECT teacher_token_hash FROM classes")).scalar()
        digests = session.scalars(select(Student.token_hash)).all()
    assert stored != created["teacher_token"] and len(stored) == 64
    assert token not in digests and all(len(d) == 64 for d in digests)


def test_bad_class_bodies_name_the_field(client) -> None:
    for body, field in [({**CLASS, "presets": ["nope"]}, "presets.0"),
                        ({**CLASS, "locked": ["optim.lr", "model.width"]}, "locked.1"),
                        ({**CLASS, "presets": []}, "presets"),
                        ({**CLASS, "max_queued_per_student": 0}, "max_queued_per_student"),
                        ({**CLASS, "challenge": {"preset": "ensemble"}}, "challenge.preset")]:
        response = client.post("/api/classes", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["field"] == field


def test_runs_merge_over_the_lesson_and_locked_fields_are_refused(client) -> None:
    created = new_class(client)
    token = join(client, created["join_code"], "Ada")
    refused = client.post("/api/runs", json={"model": {"hidden": [8]}, "optim": {"lr": 0.01}},
                          headers=bearer(token))
    assert refused.status_code == 422
    assert [d["field"] for d in refused.json()["detail"]] == ["model.hidden"]
    assert "locked" in refused.json()["detail"][0]["msg"]
    # the locked value itself, sent again, is no change: accepted
    run = client.post("/api/runs", json={"model": {"hidden": [64]}, "optim": {"lr": 0.05}},
                      headers=bearer(token))
    assert run.status_code == 201, run.text
    spec = run.json()["spec"]
    # sgd-momentum's base: digits, [64], batch 1, 15 epochs; η from the request
    assert spec["data"]["dataset"] == "digits" and spec["optim"]["batch_size"] == 1
    assert spec["optim"]["lr"] == 0.05 and spec["training"]["max_epochs"] == 15
    assert run.json()["class_id"] == created["id"] and run.json()["student"] is not None
    # another lesson of the class, named in the request
    other = client.post("/api/runs?preset=minibatch-size", json={}, headers=bearer(token))
    assert other.status_code == 201 and other.json()["spec"]["model"]["hidden"] == [128]
    outside = client.post("/api/runs?preset=ensemble", json={}, headers=bearer(token))
    assert outside.status_code == 422 and outside.json()["detail"][0]["field"] == "preset"
    # the teacher is bound by no lock
    teacher = client.post("/api/runs", json={"model": {"hidden": [8]}},
                          headers=bearer(created["teacher_token"]))
    assert teacher.status_code == 201 and teacher.json()["student"] is None


def test_quotas_answer_429_with_retry_after(client) -> None:
    created = new_class(client)
    token = join(client, created["join_code"], "Ada")
    other = join(client, created["join_code"], "Grace")
    ids = [client.post("/api/runs", json={}, headers=bearer(token)).json()["id"] for _ in range(2)]
    third = client.post("/api/runs", json={}, headers=bearer(token))
    assert third.status_code == 429 and int(third.headers["Retry-After"]) > 0
    assert "max_queued_per_student" in third.json()["detail"]
    # one student's quota is not the class's
    assert client.post("/api/runs", json={}, headers=bearer(other)).status_code == 201
    # a run that starts frees a queued place; the total quota still counts it
    with new_session() as session:
        session.execute(update(Run).where(Run.id.in_(ids)).values(status="succeeded",
                                                                  finished_at=utcnow()))
        session.commit()
    for _ in range(2):
        assert client.post("/api/runs", json={}, headers=bearer(token)).status_code == 201
    fifth = client.post("/api/runs", json={}, headers=bearer(token))
    assert fifth.status_code == 429 and "max_runs_per_student" in fifth.json()["detail"]
    assert int(fifth.headers["Retry-After"]) > 0
    with new_session() as session:  # refused runs left nothing behind
        assert len(session.scalars(select(Run.id)).all()) == 5


def test_tokens_are_scoped_to_their_class(client) -> None:
    a, b = new_class(client), new_class(client, name="Other class")
    ada, grace = join(client, a["join_code"], "Ada"), join(client, a["join_code"], "Grace")
    bob = join(client, b["join_code"], "Bob")
    adas = client.post("/api/runs", json={}, headers=bearer(ada)).json()["id"]
    graces = client.post("/api/runs", json={}, headers=bearer(grace)).json()["id"]
    bobs = client.post("/api/runs", json={}, headers=bearer(bob)).json()["id"]
    plain = client.post("/api/runs", json={"training": {"max_epochs": 1}}).json()["id"]

    # class B, and runs outside class A, do not exist for Ada
    assert client.get(f"/api/classes/{b['id']}/board", headers=bearer(ada)).status_code == 403
    assert client.get(f"/api/classes/{b['id']}", headers=bearer(ada)).status_code == 403
    for run_id in (bobs, plain):
        assert client.get(f"/api/runs/{run_id}", headers=bearer(ada)).status_code == 404
        assert client.post(f"/api/runs/{run_id}/cancel", headers=bearer(ada)).status_code == 404
    listed = {r["id"] for r in client.get("/api/runs", headers=bearer(ada)).json()}
    assert listed == {adas, graces}
    # a classmate's run: readable, not changeable
    assert client.get(f"/api/runs/{graces}", headers=bearer(ada)).status_code == 200
    assert client.post(f"/api/runs/{graces}/cancel", headers=bearer(ada)).status_code == 403
    assert client.post(f"/api/runs/{graces}/lr", json={"lr": 0.5},
                       headers=bearer(ada)).status_code == 403
    assert client.delete(f"/api/runs/{graces}", headers=bearer(ada)).status_code == 403
    # her own run: hers to steer
    assert client.post(f"/api/runs/{adas}/lr", json={"lr": 0.5},
                       headers=bearer(ada)).status_code == 200
    assert client.post(f"/api/runs/{adas}/cancel", headers=bearer(ada)).json()["status"] == \
        "cancelled"
    # the teacher of A acts on any run of A, on none of B
    assert client.post(f"/api/runs/{graces}/cancel",
                       headers=bearer(a["teacher_token"])).status_code == 200
    assert client.delete(f"/api/runs/{bobs}", headers=bearer(a["teacher_token"])).status_code \
        == 404
    assert client.get(f"/api/classes/{b['id']}/export",
                      headers=bearer(a["teacher_token"])).status_code == 403
    # nothing but runs of its class: no studies, uploads, presets or new classes
    for path, body in [("/api/studies", {"base": {}, "grid": {}}), ("/api/classes", CLASS),
                       ("/api/presets/ensemble/launch", {})]:
        assert client.post(path, json=body, headers=bearer(ada)).status_code == 403, path
    assert client.get(f"/api/classes/{a['id']}/export", headers=bearer(ada)).status_code == 403
    # a made-up class token is no one
    assert client.get("/api/runs", headers=bearer("eps_made-up")).status_code == 401
    assert client.get(f"/api/classes/{a['id']}/board").status_code == 401

    # a class that hides classmates' runs
    with new_session() as session:
        session.execute(update(Classroom).where(Classroom.id == a["id"])
                        .values(show_classmates=False))
        session.commit()
    assert client.get(f"/api/runs/{graces}", headers=bearer(ada)).status_code == 403
    assert {r["id"] for r in client.get("/api/runs", headers=bearer(ada)).json()} == {adas}


def test_with_the_lab_token(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_API_TOKEN", LAB_TOKEN)
    configure()
    with TestClient(create_app()) as client:
        assert client.post("/api/classes", json=CLASS).status_code == 401
        created = new_class(client, headers=bearer(LAB_TOKEN))
        token = join(client, created["join_code"], "Ada")  # joining needs no lab token
        run = client.post("/api/runs", json={}, headers=bearer(token))
        assert run.status_code == 201
        assert client.post(f"/api/runs/{run.json()['id']}/cancel",
                           headers=bearer(token)).status_code == 200
        assert client.post("/api/studies", json={}, headers=bearer(token)).status_code == 403
        # the lab's token is the teacher of every class
        board = client.get(f"/api/classes/{created['id']}/board", headers=bearer(LAB_TOKEN))
        assert board.status_code == 200 and "spec" in board.json()["students"][0]["runs"][0]
        with client.websocket_connect(
                f"/api/runs/{run.json()['id']}/stream?token={token}") as ws:
            assert ws.receive_json()["type"] in {"run", "end"}  # it was cancelled


def _finish(run_id: int, accuracy: float) -> None:
    with new_session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(
            status="succeeded", finished_at=utcnow(), result={"test_accuracy": accuracy}))
        session.commit()


def test_board_challenge_and_export(client) -> None:
    created = new_class(client, locked=[], max_queued_per_student=10,
                        challenge={"preset": "sgd-momentum", "max_epochs": 20})
    teacher = bearer(created["teacher_token"])
    ada, grace = join(client, created["join_code"], "Ada"), join(client, created["join_code"],
                                                                 "Grace <b>")
    runs = {}
    for name, token, body, acc in [
            ("ada-ok", ada, {}, 0.91),
            ("ada-long", ada, {"training": {"max_epochs": 30}}, 0.99),  # over the budget
            ("grace-ok", grace, {}, 0.95),
            ("grace-other", grace, {}, None)]:  # still queued: no accuracy yet
        preset = "?preset=minibatch-size" if name == "grace-other" else ""
        runs[name] = client.post(f"/api/runs{preset}", json=body, headers=bearer(token)).json()
        if acc is not None:
            _finish(runs[name]["id"], acc)
    board = client.get(f"/api/classes/{created['id']}/board", headers=bearer(ada)).json()
    by_name = {s["name"]: s for s in board["students"]}
    assert by_name["Ada"]["best_test_accuracy"] == 0.99
    assert by_name["Grace <b>"]["best_test_accuracy"] == 0.95
    assert by_name["Grace <b>"]["statuses"] == {"succeeded": 1, "queued": 1}
    assert "spec" not in by_name["Ada"]["runs"][0]  # details are the teacher's
    ranking = board["challenge"]["ranking"]
    assert [(r["name"], r["test_accuracy"], r["rank"]) for r in ranking] == [
        ("Grace <b>", 0.95, 1), ("Ada", 0.91, 2)]
    detailed = client.get(f"/api/classes/{created['id']}/board", headers=teacher).json()
    assert detailed["students"][0]["runs"][0]["spec"]["optim"]["batch_size"] == 1

    response = client.get(f"/api/classes/{created['id']}/export", headers=teacher)
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    for run in runs.values():
        assert {f"runs/{run['id']}/spec.json", f"runs/{run['id']}/metrics.csv",
                f"runs/{run['id']}/result.json"} <= names
    result = json.loads(archive.read(f"runs/{runs['grace-ok']['id']}/result.json"))
    assert result["result"]["test_accuracy"] == 0.95 and result["student"] == "Grace <b>"
    assert archive.read(f"runs/{runs['ada-ok']['id']}/metrics.csv").startswith(b"key,x,value")
    html = archive.read("board.html").decode()
    assert "Grace &lt;b&gt;" in html and "<b>" not in html.replace("<body>", "")
    assert "95.00 %" in html and "Challenge" in html


def test_a_students_fork_stays_in_her_class_and_a_classmates_is_refused(client) -> None:
    from backend.runs.lifecycle import claim_run, finish_run, record_epoch

    a = new_class(client)
    ada, grace = join(client, a["join_code"], "Ada"), join(client, a["join_code"], "Grace")
    adas = client.post("/api/runs", json={}, headers=bearer(ada)).json()["id"]
    with new_session() as session:
        token = claim_run(session=session, run_id=adas, worker="test").token
        record_epoch(session=session, run_id=adas, token=token, epoch=2, points=[
            (key, epoch, 1.0 / epoch) for epoch in (1, 2)
            for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")])
        finish_run(session=session, run_id=adas, token=token, status="cancelled", result={})
    body = {"epoch": 1, "spec": {"optim": {"lr": 0.01}}}
    assert client.post(f"/api/runs/{adas}/fork", json=body, headers=bearer(grace)).status_code \
        == 403
    forked = client.post(f"/api/runs/{adas}/fork", json=body, headers=bearer(ada))
    assert forked.status_code == 201, forked.text
    child = forked.json()
    assert child["forked_from"] == {"run": adas, "epoch": 1}
    assert (child["class_id"], child["student"]) == (a["id"], client.get(
        f"/api/runs/{adas}", headers=bearer(ada)).json()["student"])
    assert {r["id"] for r in client.get("/api/runs", headers=bearer(ada)).json()} == \
        {adas, child["id"]}


def test_runs_say_whether_their_viewer_may_control_them(client) -> None:
    """The pages show cancel, η, fork and delete only where the server says ``can_control``:
    a student on her own runs, the teacher on every run of the class."""
    a = new_class(client)
    ada, grace = join(client, a["join_code"], "Ada"), join(client, a["join_code"], "Grace")
    teacher = bearer(a["teacher_token"])
    adas = client.post("/api/runs", json={}, headers=bearer(ada)).json()
    assert adas["can_control"] is True  # the creation's answer, to its creator
    graces = client.post("/api/runs", json={}, headers=bearer(grace)).json()["id"]
    adas = adas["id"]

    def control(run_id: int, headers: dict[str, str]) -> bool:
        return client.get(f"/api/runs/{run_id}", headers=headers).json()["can_control"]

    assert (control(adas, bearer(ada)), control(graces, bearer(ada))) == (True, False)
    assert (control(adas, bearer(grace)), control(graces, bearer(grace))) == (False, True)
    assert control(adas, teacher) and control(graces, teacher)
    assert control(adas, {})  # no class token: the lab's own guard decides
    listed = {r["id"]: r["can_control"] for r in client.get(
        "/api/runs", headers=bearer(ada)).json()}
    assert listed == {adas: True, graces: False}
    # the board's rows say the same, to each viewer
    for headers, expected in [(bearer(ada), {"Ada": True, "Grace": False}),
                              (teacher, {"Ada": True, "Grace": True})]:
        board = client.get(f"/api/classes/{a['id']}/board", headers=headers).json()
        assert {s["name"]: s["runs"][0]["can_control"] for s in board["students"]} == expected
    # and what it says is what the guard does
    assert client.post(f"/api/runs/{graces}/cancel", headers=bearer(ada)).status_code == 403
    assert client.post(f"/api/runs/{graces}/cancel", headers=teacher).status_code == 200


def test_the_teacher_changes_the_class_settings(client) -> None:
    created = new_class(client, challenge={"preset": "sgd-momentum", "max_epochs": 20})
    teacher = bearer(created["teacher_token"])
    ada = join(client, created["join_code"], "Ada")
    path = f"/api/classes/{created['id']}"
    before = client.get(path, headers=teacher).json()
    changed = client.patch(path, headers=teacher, json={
        "name": "Optimisation 102", "locked": ["optim.lr", "model.hidden", "optim.lr"],
        "max_queued_per_student": 1, "show_classmates": False, "challenge": None})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after == client.get(path, headers=teacher).json()  # the class as GET gives it
    assert (after["name"], after["locked"], after["max_queued_per_student"]) == (
        "Optimisation 102", ["model.hidden", "optim.lr"], 1)
    assert after["show_classmates"] is False and after["challenge"] is None
    # what was not sent keeps its value; the join code and the tokens do not change
    for key in ("presets", "max_runs_per_student", "join_code", "students"):
        assert after[key] == before[key], key
    assert client.get("/api/classes/me", headers=teacher).json()["role"] == "teacher"
    # the new rules hold for the next runs: η now locked, one queued run each
    locked = client.post("/api/runs", json={"optim": {"lr": 0.5}}, headers=bearer(ada))
    assert locked.status_code == 422 and locked.json()["detail"][0]["field"] == "optim.lr"
    assert client.post("/api/runs", json={}, headers=bearer(ada)).status_code == 201
    assert client.post("/api/runs", json={}, headers=bearer(ada)).status_code == 429


def test_changing_a_class_is_the_teachers_and_checked_as_its_creation(client, configure,
                                                                       monkeypatch) -> None:
    created = new_class(client)
    teacher = bearer(created["teacher_token"])
    path = f"/api/classes/{created['id']}"
    ada = join(client, created["join_code"], "Ada")
    refused = client.patch(path, headers=bearer(ada), json={"max_runs_per_student": 1000})
    assert refused.status_code == 403
    assert client.patch(path, json={"name": "x"}).status_code == 401
    for body, field in [({"presets": ["nope"]}, "presets.0"),
                        ({"presets": []}, "presets"),
                        ({"locked": ["optim.lr", "model.width"]}, "locked.1"),
                        ({"max_queued_per_student": 0}, "max_queued_per_student"),
                        ({"max_runs_per_student": "9"}, "max_runs_per_student"),
                        ({"name": ""}, "name"), ({"name": None}, "name"),
                        ({"challenge": {"preset": "ensemble"}}, "challenge.preset"),
                        # the challenge's lesson dropped from the class's lessons
                        ({"presets": ["minibatch-size"], "challenge": {"preset": "sgd-momentum"}},
                         "challenge.preset"),
                        ({"join_code": "ABCDEF"}, "join_code"),
                        ({"teacher_token": "ept_mine"}, "teacher_token")]:
        response = client.patch(path, headers=teacher, json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"][0]["field"] == field, (body, response.json())
        assert response.json()["detail"][0]["msg"]
    assert client.get(path, headers=teacher).json()["max_runs_per_student"] == \
        CLASS["max_runs_per_student"]  # nothing refused was kept
    # an unknown class: 404 to the lab's token (the teacher of every class)
    monkeypatch.setenv("EPOQUE_API_TOKEN", LAB_TOKEN)
    configure()
    with TestClient(create_app()) as lab:
        assert lab.patch("/api/classes/999999", json={"name": "x"},
                         headers=bearer(LAB_TOKEN)).status_code == 404
        assert lab.patch(path, json={"name": "By the lab"},
                         headers=bearer(LAB_TOKEN)).json()["name"] == "By the lab"
