"""The page's session listing (static/js/api.js `api.sessions`, which the Runs tab uses) follows
GET /api/sessions' next_cursor to the last page, so it lists every run however many pages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import LiveServer

pytestmark = pytest.mark.browser

XOR = {
    "dataset": {"name": "xor", "samples": 40},
    "layers": [{"type": "dense", "units": 2}, {"type": "dense", "units": 1}],
}


def test_the_page_lists_every_session_page_by_page(shared_server: LiveServer, page: Any) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if "/api/sessions?" in r.url else None)
    page.goto(shared_server.url + "/")
    page.wait_for_selector("#health[data-status='ok']", timeout=10_000)
    page.wait_for_load_state("networkidle")
    requested.clear()
    # after the page has loaded (it may create its own run)
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        for n in range(5):
            http.post(
                "/api/sessions", json={"config": XOR, "name": f"paged-{n}"}
            ).raise_for_status()
        expected = [
            s["id"] for s in http.get("/api/sessions", params={"limit": 1000}).json()["sessions"]
        ]
    assert len(expected) >= 5
    listed = page.evaluate(
        "async () => { const { api } = await import('/static/js/api.js');"
        " const all = await api.sessions(2); return [all.sessions.map((s) => s.id), all.next_cursor]; }"
    )
    assert listed == [expected, None]
    pages = -(-len(expected) // 2)  # one request a page
    assert len(requested) == pages and all("limit=2" in url for url in requested)
    assert sum("cursor=" in url for url in requested) == pages - 1
    assert page.console_errors == []
