"""A lab with an API token: the browser asks for it once, keeps it, and then writes work."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import serve

TOKEN = "browser-token-123"


@pytest.fixture
def guarded_server(tmp_path, artifacts) -> Iterator[str]:
    with serve(tmp_path, artifacts / "server-token.log", worker=False,
               env={"EPOQUE_API_TOKEN": TOKEN}) as base:
        yield base


@pytest.mark.browser
def test_the_browser_asks_for_the_token_once_and_keeps_it(browser, guarded_server, artifacts):
    context = browser.new_context(base_url=guarded_server)
    page = context.new_page()
    asked: list[str] = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept(TOKEN)

    page.on("dialog", answer)
    page.goto("/#/launch")
    page.get_by_label("name").first.fill("with a token")
    page.get_by_role("button", name="Launch").first.click()
    page.wait_for_url("**/#/runs/*")
    assert len(asked) == 1 and "API token" in asked[0]
    runs = httpx.get(f"{guarded_server}/api/runs").json()
    assert [r["name"] for r in runs] == ["with a token"]

    page.goto("/#/launch")  # the token is kept: no second question
    page.get_by_label("name").first.fill("second")
    page.get_by_role("button", name="Launch").first.click()
    page.wait_for_url("**/#/runs/*")
    assert len(asked) == 1
    page.screenshot(path=str(artifacts / "token-run.png"))
    context.close()
