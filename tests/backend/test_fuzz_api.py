"""The API fuzzed from its own OpenAPI (schemathesis, in process, positive and negative
inputs, fixed seed, every operation, every check: ``--checks all`` with the repository's
schemathesis.toml): no 5xx anywhere, every answer matches the schema, invalid data is refused,
405s list exactly the documented methods, and every operation is really exercised."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig

from backend.app import create_app

EXAMPLES = 30
CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def test_every_operation_fuzzed_with_every_check(configure) -> None:
    configure()  # a fresh SQLite database and the embedded broker (no worker: runs stay queued)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(),
                                            config=SchemathesisConfig.from_path(CONFIG))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    calls: Counter[str] = Counter()
    unsatisfiable: list[str] = []
    failures: list[str] = []
    for operation in operations:
        for mode in schemathesis.GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            def fuzz(case: schemathesis.Case) -> None:
                calls[case.operation.label] += 1
                case.call_and_validate()

            try:
                fuzz()
            except Unsatisfiable:
                # An operation without inputs has no negative cases: counted, and below every
                # operation must have been called at least once anyway.
                unsatisfiable.append(f"{operation.label} [{mode.value}]")
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (collect them all)
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:600]}")
    assert not failures, "\n\n".join(failures)
    never = [op.label for op in operations if calls[op.label] == 0]
    assert not never, f"never exercised: {never} (unsatisfiable: {unsatisfiable})"
    assert all("[negative]" in u for u in unsatisfiable), unsatisfiable


def test_405_lists_exactly_the_documented_methods(configure) -> None:
    configure()
    app = create_app()
    with TestClient(app) as client:
        paths = app.openapi()["paths"]
        for template, operations in paths.items():
            path = template.replace("{", "").replace("}", "")  # any value fits a segment
            documented = {m.upper() for m in operations}
            for method in set(METHODS) - documented:
                answer = client.request(method, path)
                assert answer.status_code == 405, (method, template, answer.status_code)
                assert set(answer.headers["allow"].split(", ")) == documented, (method, template)


def test_booleans_are_not_integers(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        for path, body, field in [("/api/studies", {"seeds": True}, "seeds"),
                                  ("/api/runs", {"seed": True}, "seed"),
                                  ("/api/runs", {"ensemble": {"members": 2.5}}, "ensemble.members"),
                                  ("/api/runs", {"model": {"hidden": [64, True]}}, "model.hidden.1")]:
            answer = client.post(path, json=body)
            assert answer.status_code == 422, (path, body)
            assert answer.json()["detail"][0]["field"] == field
        assert client.get("/api/runs").json() == []
        assert client.post("/api/studies", json={"seeds": 2}).status_code == 201
