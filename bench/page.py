"""Page benchmark: frames per second the page draws while its run trains.

Against a real `python -m server` subprocess and the system Chromium (headless, via Playwright),
for the 2-8-8-1 tanh net and the same net with four hidden layers of 64 (xor data, batch 10, the
page's default pace of 500 steps/s): opens the page, starts the run, waits for step 20, then
counts requestAnimationFrame callbacks over --seconds (default 3), --rounds times (default 5),
and prints each round and the median. Targets: >= 20 fps for 2-8-8-1, >= 10 fps for 2-64x4-1
(the figures tests/browser/test_page.py asserted before timing left the tests).

Run: `.venv/bin/python -m bench.page [--seconds 3] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from tests.browser.helpers import (
    FPS_JS,
    WIDE_2_64X4_1,
    XOR_2_8_8_1,
    open_page,
    pause_if_running,
    url_for_config,
    wait_step_at_least,
)
from tests.support import CHROMIUM_ARGS, LiveServer, find_chromium

NETS = {"2-8-8-1": (XOR_2_8_8_1, 20.0), "2-64x4-1": (WIDE_2_64X4_1, 10.0)}  # config, target fps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per net (default 5)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.rounds < 1:
        parser.error(f"expected --seconds > 0 and --rounds >= 1, got {args.seconds}, {args.rounds}")
    executable = find_chromium()
    if executable is None:
        print("no Chromium: set $CHROMIUM or install Debian's chromium", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bl-page-") as tmp:
        server = LiveServer(Path(tmp) / "data").start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=executable, headless=True, args=CHROMIUM_ARGS
                )
                page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
                for name, (config, target) in NETS.items():
                    figures = []
                    for _ in range(args.rounds):
                        open_page(page, url_for_config(server.url, config))
                        page.click("#btn-start")
                        wait_step_at_least(page, 20)
                        figures.append(page.evaluate(FPS_JS, args.seconds * 1000))
                        pause_if_running(page, server.url)
                    median = statistics.median(figures)
                    verdict = "OK" if median >= target else "BELOW TARGET"
                    rounds = ", ".join(f"{f:.1f}" for f in figures)
                    print(
                        f"{name}: fps while training {rounds}; median {median:.1f} "
                        f"(target >= {target:g}: {verdict})"
                    )
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
