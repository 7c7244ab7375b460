"""A classroom in Debian's Chromium against the real server: a teacher creates a class, two
students join from their own browser contexts and launch a lesson with its locked fields
read-only, and the teacher's board shows both of them with their runs' test accuracy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Hold
from tests.e2e.test_lab import snap

pytestmark = pytest.mark.browser


@contextmanager
def student_page(browser: object, server: str) -> Iterator[Page]:
    """A browser context of its own (its own localStorage: its own student token), whose
    console must stay clean like the ``page`` fixture's."""
    context = browser.new_context(base_url=server, viewport={"width": 1300, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the student's page reported script errors: {errors}"


def join_and_launch(page: Page, code: str, name: str, lr: str) -> int:
    page.goto(f"/#/join/{code}")
    page.fill("#join-name", name)
    page.get_by_role("button", name="Join").click()
    expect(page.locator(".class-title")).to_have_text("Optimisation, group B")
    page.locator(".lesson-card").first.get_by_role("link", name="Launch a run").click()
    # the lesson's spec, its locked fields read-only
    expect(page.locator("#f-data-dataset")).to_be_disabled()
    expect(page.locator("#f-data-dataset")).to_have_value("digits")
    expect(page.locator("#f-model-hidden")).to_be_disabled()
    expect(page.locator(".study-controls")).to_be_hidden()
    expect(page.locator("#f-optim-lr")).to_be_enabled()
    page.fill("#f-training-max_epochs", "1")
    page.fill("#f-optim-lr", lr)
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url("**/#/runs/*")
    return int(page.url.rsplit("/", 1)[-1])


@pytest.mark.timeout(600)
def test_teacher_creates_a_class_two_students_launch_the_board_shows_both(
        page: Page, browser: object, server: str, artifacts: Path) -> None:
    page.goto("/#/classes")
    page.fill("#class-name", "Optimisation, group B")
    expect(page.locator("#preset-sgd-momentum")).to_be_checked()
    page.check("#preset-minibatch-size")
    page.check("#lock-data\\.dataset")
    page.check("#lock-model\\.hidden")
    page.fill("#class-max-queued", "2")
    page.select_option("#class-challenge", "sgd-momentum")
    page.get_by_role("button", name="Create the class").click()
    card = page.locator(".class-card").first
    expect(card.locator(".join-link")).to_contain_text("#/join/")
    code = card.locator(".join-code").inner_text()
    class_id = card.get_attribute("data-class-id")

    runs = {}
    with student_page(browser, server) as ada, student_page(browser, server) as grace:
        runs["Ada"] = join_and_launch(ada, code, "Ada", "0.05")
        runs["Grace"] = join_and_launch(grace, code, "Grace", "0.02")
        for name, run_id in runs.items():
            run = httpx.get(f"{server}/api/runs/{run_id}").json()
            assert run["spec"]["data"]["dataset"] == "digits" and run["student"] is not None
            assert run["spec"]["training"]["max_epochs"] == 1, name
        ada.goto("/#/")  # a student's lab is the class: its lessons, its runs
        expect(ada.locator(".class-run-mine")).to_have_count(1)
        expect(ada.locator(".class-run-mine .badge")).to_have_text("succeeded", timeout=240_000)
        expect(ada.locator(".class-run:not(.class-run-mine)")).to_have_count(1)
        snap(ada, artifacts, "classroom-student", docs=True)

    page.goto(f"/#/classes/{class_id}/board")
    rows = page.locator("table.board tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator("th")).to_have_text("Ada")
    expect(rows.nth(1).locator("th")).to_have_text("Grace")
    for row in (rows.nth(0), rows.nth(1)):
        expect(row.locator(".badge")).to_have_text("succeeded", timeout=240_000)
        expect(row.locator("td.num")).to_contain_text("%")
    teacher = page.evaluate(
        'JSON.parse(localStorage.getItem("epoque-teacher-classes"))[0].teacher_token')
    board = httpx.get(f"{server}/api/classes/{class_id}/board",
                      headers={"Authorization": f"Bearer {teacher}"}).json()
    ranked = [r["name"] for r in board["challenge"]["ranking"]]
    assert sorted(ranked) == ["Ada", "Grace"]
    expect(page.locator(".ranking li")).to_have_count(2)
    expect(page.locator(".ranking li").first).to_contain_text(ranked[0])
    snap(page, artifacts, "classroom-board", docs=True)


@pytest.mark.timeout(300)
def test_controls_show_only_on_runs_the_viewer_may_steer(
        page: Page, browser: object, server: str, hold: Hold) -> None:
    """A student sees Cancel (and η, delete, fork) on her own run, not on a classmate's, whose
    buttons would answer 403; the teacher's board offers Cancel on every live run."""
    hold.every_run_at(1)  # both runs stay live (held at epoch 1, or queued behind it)
    klass = httpx.post(f"{server}/api/classes", json={
        "name": "Controls", "presets": ["sgd-momentum"], "locked": []}).json()

    def joined(name: str) -> tuple[dict, int]:
        student = httpx.post(f"{server}/api/classes/join", json={
            "join_code": klass["join_code"], "name": name}).json()
        run = httpx.post(f"{server}/api/runs", json={"training": {"max_epochs": 3}},
                         headers={"Authorization": f"Bearer {student['student_token']}"})
        assert run.status_code == 201, run.text
        return student, run.json()["id"]

    (ada_student, adas), (_, graces) = joined("Ada"), joined("Grace")
    with student_page(browser, server) as ada:
        ada.goto("/#/")  # Ada's browser: what joining keeps (classes-api.js joinClass)
        ada.evaluate("""s => {
          localStorage.setItem("epoque-class-token", s.student_token);
          localStorage.setItem("epoque-class-student", JSON.stringify(
            {student_id: s.student_id, class_id: s.class_id, name: s.name}));
        }""", ada_student)
        ada.goto(f"/#/runs/{graces}")
        expect(ada.locator("run-view")).to_have_attribute("data-control", "no")
        expect(ada.get_by_role("button", name="Cancel run")).to_be_hidden()
        expect(ada.locator(".lr-form")).to_be_hidden()
        expect(ada.locator(".fork-hint")).to_be_hidden()
        ada.goto(f"/#/runs/{adas}")
        expect(ada.locator("run-view")).to_have_attribute("data-control", "yes")
        expect(ada.get_by_role("button", name="Cancel run")).to_be_visible()
        ada.goto(f"/#/classes/{klass['id']}/board")
        expect(ada.locator("table.board tbody tr")).to_have_count(2)
        expect(ada.locator(".board-cancel")).to_have_count(1)
        expect(ada.get_by_role("button", name=f"Cancel run #{adas}")).to_be_visible()

    page.goto("/#/")
    page.evaluate("c => localStorage.setItem('epoque-teacher-classes', JSON.stringify([c]))",
                  {**klass, "name": "Controls"})
    page.goto(f"/#/classes/{klass['id']}/board")
    expect(page.locator(".board-cancel")).to_have_count(2)
    for run_id in (adas, graces):  # the teacher cancels both: the worker is free again
        page.get_by_role("button", name=f"Cancel run #{run_id}").click()
    hold.release_all()  # a held run reads its cancel at the end of the epoch it waits in
    expect(page.locator("table.board .badge")).to_have_text(["cancelled", "cancelled"],
                                                            timeout=60_000)
    expect(page.locator(".board-cancel")).to_have_count(0)


@pytest.mark.console_422  # a refused setting on purpose
def test_the_teacher_changes_the_class_settings_on_its_board(page: Page, server: str) -> None:
    klass = httpx.post(f"{server}/api/classes", json={
        "name": "Settings", "presets": ["sgd-momentum"], "locked": ["model.hidden"]}).json()
    page.goto("/#/")
    page.evaluate("c => localStorage.setItem('epoque-teacher-classes', JSON.stringify([c]))",
                  {**klass, "name": "Settings"})
    page.goto(f"/#/classes/{klass['id']}/board")
    page.get_by_text("Settings", exact=True).click()  # the <details>' summary
    expect(page.locator("#settings-locked")).to_have_value("model.hidden")
    # a field the server refuses: its 422 is shown, naming the field
    page.fill("#settings-locked", "model.hidden, model.width")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator(".class-settings-message")).to_contain_text("locked.1")
    page.fill("#settings-locked", "model.hidden, optim.lr")
    page.fill("#settings-name", "Settings, renamed")
    page.fill("#settings-max-queued", "1")
    page.uncheck("#settings-show")
    page.get_by_role("button", name="Save the settings").click()
    expect(page.locator(".class-settings-message")).to_contain_text("Saved")
    expect(page.locator("class-board h1")).to_have_text("Settings, renamed: board")
    now = httpx.get(f"{server}/api/classes/{klass['id']}",
                    headers={"Authorization": f"Bearer {klass['teacher_token']}"}).json()
    assert (now["name"], now["locked"], now["max_queued_per_student"],
            now["show_classmates"]) == ("Settings, renamed", ["model.hidden", "optim.lr"], 1,
                                        False)
