"""A class as one zip for grading: each run's spec, metrics CSV and result, the board as JSON,
and a static HTML report of the board that opens offline, without the lab.

Written to a temporary file a run at a time (the metrics CSV page by page) and then streamed,
so a class of 30 students with hundreds of runs is never held in memory whole.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from collections.abc import Iterator
from html import escape
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.classes.board import board
from backend.classes.models import Classroom
from backend.runs.models import Run
from backend.runs.service import stream_points_csv

CHUNK = 1 << 16


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def board_html(data: dict[str, Any]) -> str:
    """The board as a page of its own: per student their runs and best test accuracy, and the
    challenge ranking when the class has one."""
    klass = data["class"]
    rows = []
    for student in data["students"]:
        runs = ", ".join(f'<a href="runs/{r["id"]}/result.json">#{r["id"]}</a> '
                         f'{escape(r["status"])} {_pct(r["test_accuracy"])}'
                         for r in student["runs"]) or "–"
        rows.append(f"<tr><td>{escape(student['name'])}</td><td>{len(student['runs'])}</td>"
                    f"<td>{_pct(student['best_test_accuracy'])}</td><td>{runs}</td></tr>")
    challenge = ""
    if data["challenge"]:
        c = data["challenge"]
        limit = f" with ≤ {c['max_epochs']} epochs" if c["max_epochs"] else ""
        ranked = "".join(f"<tr><td>{r['rank']}</td><td>{escape(r['name'])}</td>"
                         f"<td>{_pct(r['test_accuracy'])}</td><td>#{r['run_id']}</td></tr>"
                         for r in c["ranking"])
        challenge = (f"<h2>Challenge: best test accuracy on {escape(c['preset'])}{limit}</h2>"
                     f"<table><tr><th>Rank</th><th>Student</th><th>Test accuracy</th>"
                     f"<th>Run</th></tr>{ranked}</table>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(klass['name'])} — board</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>
<h1>{escape(klass['name'])}</h1>
<p>Lessons: {escape(', '.join(klass['presets']))}</p>
{challenge}
<h2>Students</h2>
<table><tr><th>Student</th><th>Runs</th><th>Best test accuracy</th><th>Runs (status, test
accuracy)</th></tr>{''.join(rows)}</table>
</body></html>
"""


def write_export(*, session: Session, klass: Classroom, out: IO[bytes]) -> None:
    data = board(session=session, klass=klass, detailed=True)
    names = {s["id"]: s["name"] for s in data["students"]}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("board.json", json.dumps(data, indent=1))
        archive.writestr("board.html", board_html(data))
        runs = session.scalars(select(Run).where(Run.class_id == klass.id).order_by(Run.id))
        for run in runs:
            folder = f"runs/{run.id}"
            archive.writestr(f"{folder}/spec.json", json.dumps(run.spec, indent=1))
            archive.writestr(f"{folder}/result.json", json.dumps({
                "id": run.id, "student": names.get(run.student) if run.student else None,
                "preset": run.class_preset, "status": run.status, "epoch": run.epoch,
                "result": run.result, "error": run.error}, indent=1))
            with archive.open(f"{folder}/metrics.csv", "w") as csv:
                for text in stream_points_csv(run_id=run.id):
                    csv.write(text.encode())


def export_chunks(*, session: Session, klass: Classroom) -> Iterator[bytes]:
    """The zip, written to a temporary file first (zip needs to seek), then read back."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115  (closed by the generator below)
    write_export(session=session, klass=klass, out=spool)
    spool.seek(0)

    def chunks() -> Iterator[bytes]:
        with spool:
            while block := spool.read(CHUNK):
                yield block

    return chunks()
