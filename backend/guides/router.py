"""GET /api/guides and /api/guides/{lesson}: the lesson guides of docs/lessons, as Markdown.

The files in the repository are the single source: GitHub shows them, and the lab renders the
same text next to each lesson's preset.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel

from backend.errors import NotFound

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "lessons"
NAME = re.compile(r"^(\d{2})-[a-z0-9-]+\.md$")

router = APIRouter(prefix="/api/guides", tags=["guides"])


class GuideOut(BaseModel):
    lesson: int
    slug: str
    title: str
    markdown: str


@lru_cache
def _guides() -> dict[int, GuideOut]:
    found = {}
    for path in sorted(GUIDES.glob("*.md")):
        match = NAME.match(path.name)
        if not match:
            continue
        text = path.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else ""
        lesson = int(match.group(1))
        found[lesson] = GuideOut(lesson=lesson, slug=path.stem, markdown=text,
                                 title=first.lstrip("# ").strip() or path.stem)
    return found


@router.get("", response_model=list[GuideOut])
def list_guides() -> list[GuideOut]:
    return list(_guides().values())


@router.get("/{lesson}", response_model=GuideOut)
def get_guide(lesson: Annotated[int, PathParam(ge=1, le=99)]) -> GuideOut:
    guide = _guides().get(lesson)
    if guide is None:
        raise NotFound(f"there is no guide for lesson {lesson}")
    return guide
