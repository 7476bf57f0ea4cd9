"""Save a screenshot of the training page: `python -m tests.browser.screenshot [docs/screenshot.png]`.

Starts a throwaway server, loads the spiral preset at 1440x900, trains for a few seconds and
captures the page mid-run (the live backward pulse included). Needs the system Chromium.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.browser.helpers import open_page, pause_if_running, wait_step_at_least
from tests.support import CHROMIUM_ARGS, ROOT, LiveServer, find_chromium


def main(out: Path) -> None:
    executable = find_chromium()
    if executable is None:
        raise SystemExit("no Chromium: set $CHROMIUM or install Debian's chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = LiveServer(Path(tmp) / "data").start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=executable, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                open_page(page, f"{server.url}/#preset=spiral")
                page.click("#btn-start")
                wait_step_at_least(page, 2000, timeout=60_000)
                time.sleep(3.0)
                # catch the pulse on its way back through the network
                page.wait_for_function(
                    "() => window.__bl.pulse.active && performance.now() - window.__bl.pulse.active.start"
                    " > window.__bl.pulse.active.tf + 250",
                    timeout=10_000,
                    polling=16,
                )
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                pause_if_running(page, server.url)
                browser.close()
        finally:
            server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png")
