"""/docs (Swagger UI) and /redoc (ReDoc) render every operation with nothing but this server:
every request to another host is aborted and recorded, and none may be made."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import LiveServer

pytestmark = pytest.mark.browser

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# ReDoc's sidebar footer always tries this logo (and hides it when it fails): the docs' policy
# refuses it before any request leaves, which Chromium reports on the console.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _offline(page: Any) -> list[str]:
    """Abort every request not for 127.0.0.1 (as if offline) and return the list it records."""
    outside: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1" or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.context.route("**/*", handle)
    return outside


def _operations(server: LiveServer) -> list[dict[str, Any]]:
    """Every operation of the OpenAPI document, with its path and method."""
    document = httpx.get(server.url + "/openapi.json", timeout=30).json()
    return [
        {**operation, "path": path, "method": method}
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_swagger_ui_renders_every_operation_offline(shared_server: LiveServer, page: Any) -> None:
    outside = _offline(page)
    operations = _operations(shared_server)
    page.goto(shared_server.url + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    rendered = page.eval_on_selector_all(
        ".opblock",
        "els => els.map(e => [e.querySelector('.opblock-summary-method').textContent,"
        " e.querySelector('.opblock-summary-path').getAttribute('data-path')])",
    )
    expected = {(op["method"].upper(), op["path"]) for op in operations}
    assert set(map(tuple, rendered)) == expected
    assert page.locator("text=Create a session from a run configuration").count() >= 1
    # the description documents the WebSocket, which OpenAPI has no operation for
    assert page.locator(".info a[href='/api/ws-schema']").count() == 1
    assert "/ws/sessions/{session_id}" in page.inner_text(".info")
    assert outside == []
    assert page.console_errors == []


def test_redoc_renders_every_operation_offline(shared_server: LiveServer, page: Any) -> None:
    outside = _offline(page)
    operations = _operations(shared_server)
    page.goto(shared_server.url + "/redoc")
    page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
    sections = page.eval_on_selector_all(
        "[data-section-id^='operation/']", "els => els.map(e => e.dataset.sectionId)"
    )
    # ReDoc gives each operation a section named after its operationId
    assert set(sections) == {f"operation/{op['operationId']}" for op in operations}
    assert page.locator("text=Create a session from a run configuration").count() >= 1
    assert outside == []
    refused_logo = [e for e in page.console_errors if REDOC_LOGO in e and "Content Security" in e]
    assert [e for e in page.console_errors if e not in refused_logo] == []
