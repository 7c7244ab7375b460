"""Presets: one per lesson at least, each a valid study (or run) the API launches."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.presets.catalog import PRESETS
from backend.studies.grid import expand
from worker.engine import parse_spec


def test_every_lesson_has_a_preset_and_every_preset_is_valid() -> None:
    assert {p["lesson"] for p in PRESETS} == set(range(1, 11))
    for preset in PRESETS:
        assert preset["title"] and preset["description"] and preset["formula"]
        if "spec" in preset:
            parse_spec(preset["spec"])
        else:
            base = parse_spec(preset["study"]["base"]).model_dump(mode="json")
            assert len(expand(base, preset["study"]["grid"], 256)) >= 2, preset["id"]


def test_launching_a_preset_creates_its_study(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        listed = client.get("/api/presets").json()
        assert [p["id"] for p in listed] == [p["id"] for p in PRESETS]
        launched = client.post("/api/presets/step-schedule/launch").json()
        assert launched["kind"] == "study"
        milestones = [r["spec"]["optim"]["schedule"]["milestones"] for r in launched["study"]["runs"]]
        assert milestones == [[], [15], [15, 25], [15, 25, 35]]
        single = client.post("/api/presets/ensemble/launch").json()
        assert single["kind"] == "run" and single["run"]["spec"]["ensemble"]["members"] == 5
        assert client.post("/api/presets/nope/launch").status_code == 404


def test_every_lesson_has_a_guide_served_as_written(configure) -> None:
    configure()
    docs = Path(__file__).resolve().parents[2] / "docs" / "lessons"
    with TestClient(create_app()) as client:
        guides = client.get("/api/guides").json()
        assert [g["lesson"] for g in guides] == list(range(1, 11))
        for guide in guides:
            assert guide["title"].startswith(f"Lesson {guide['lesson']} — ")
            assert guide["markdown"] == (docs / f"{guide['slug']}.md").read_text(encoding="utf-8")
        one = client.get("/api/guides/3").json()
        assert one["slug"] == "03-early-stopping" and "## What to look at" in one["markdown"]
        assert client.get("/api/guides/42").status_code == 404
        assert client.get("/api/guides/0").status_code == 422
