"""Shared fixtures: a live server on 127.0.0.1 and a headless Chromium page."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import CHROMIUM_ARGS, LiveServer, find_chromium


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh server with its own data directory, stopped after the test."""
    live = LiveServer(tmp_path / "data").start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for a whole test module (tests must not depend on each other's sessions)."""
    live = LiveServer(tmp_path_factory.mktemp("shared") / "data").start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def client(shared_server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client bound to the module's shared server."""
    with httpx.Client(base_url=shared_server.url, timeout=30.0) as http:
        yield http


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """The system Chromium under Playwright, headless. Under CI=true a missing one fails.

    Module-scoped: Playwright's sync API keeps an event loop running in the main thread while
    it lives, which would break asyncio.run() in any test that came after it.
    """
    executable = find_chromium()
    if executable is None:
        message = "no Chromium: set $CHROMIUM or install Debian's chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    """A fresh 1440x900 page that records console errors in `page.console_errors`."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.console_errors = errors
    try:
        yield tab
    finally:
        context.close()


# ------------------------------------------------------------------ module constants stay constant
# Test modules keep their configs in module-level constants (XOR = {...}). A test that edits one in
# place (cfg = dict(XOR); cfg["layers"].append(...)) leaks into every later test in a random order,
# so each test's module constants are compared before and after it, and a change fails that test.


def _module_constants(module: object) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(module).items()
        if name.isupper() and isinstance(value, dict | list | set)
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    module = getattr(item, "module", None)
    before = copy.deepcopy(_module_constants(module)) if module is not None else {}
    result = yield
    if module is not None:
        after = _module_constants(module)
        changed = sorted(name for name, value in before.items() if after.get(name) != value)
        if changed:
            pytest.fail(f"{item.nodeid} changed module constants in place: {', '.join(changed)}")
    return result
