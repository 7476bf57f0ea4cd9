"""The walking skeleton: health and the index page, over real HTTP."""

import httpx

from server import __version__
from tests.support import LiveServer


def test_health_reports_ok_and_version(shared_server: LiveServer) -> None:
    response = httpx.get(shared_server.url + "/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == __version__
    assert body["max_training"] >= 1


def test_index_serves_page_and_its_assets(shared_server: LiveServer) -> None:
    page = httpx.get(shared_server.url + "/")
    assert page.status_code == 200
    assert "<title>Backprop Lens</title>" in page.text
    assert "/static/js/main.js" in page.text
    script = httpx.get(shared_server.url + "/static/js/main.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
