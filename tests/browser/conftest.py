"""Fixtures of the browser tests: the page on a fresh 2-8-8-1 XOR run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.helpers import XOR_2_8_8_1, open_page, pause_if_running, url_for_config
from tests.support import LiveServer


@pytest.fixture
def lens(shared_server: LiveServer, page: Any) -> Iterator[Any]:
    """The page on a fresh 2-8-8-1 XOR run; no session is left training afterwards."""
    open_page(page, url_for_config(shared_server.url, XOR_2_8_8_1))
    try:
        yield page
    finally:
        pause_if_running(page, shared_server.url)
