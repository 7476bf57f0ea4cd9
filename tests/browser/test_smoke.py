"""The page loads in real headless Chromium with no console errors."""

import pytest

from tests.support import LiveServer

pytestmark = pytest.mark.browser


def test_page_loads_without_console_errors(shared_server: LiveServer, page) -> None:  # type: ignore[no-untyped-def]
    page.goto(shared_server.url + "/")
    page.wait_for_selector("#health[data-status='ok']", timeout=10_000)
    assert page.title() == "Backprop Lens"
    assert page.console_errors == []
