"""Presets: one per lesson at least, each a valid study (or run) the API launches."""

from __future__ import annotations

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
        assert milestones == [[], [75], [75, 125], [75, 125, 175]]
        single = client.post("/api/presets/ensemble/launch").json()
        assert single["kind"] == "run" and single["run"]["spec"]["ensemble"]["members"] == 5
        assert client.post("/api/presets/nope/launch").status_code == 404
