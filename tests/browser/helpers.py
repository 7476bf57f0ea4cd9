"""Shared steps for the browser tests: open the page, read the status line, drive the run."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import httpx

READY = "body[data-ready='yes']"
# requestAnimationFrame callbacks per second over `ms` milliseconds, counted inside the page.
FPS_JS = """(ms) => new Promise((resolve) => {
  let frames = 0;
  const t0 = performance.now();
  function tick(t) {
    frames += 1;
    if (t - t0 < ms) requestAnimationFrame(tick);
    else resolve(frames / ((t - t0) / 1000));
  }
  requestAnimationFrame(tick);
})"""

# The next `n` requestAnimationFrame callbacks: how long they took and the step readout at each.
FRAMES_JS = """(n) => new Promise((resolve) => {
  const steps = [];
  const t0 = performance.now();
  function tick(t) {
    steps.push(Number(document.querySelector('#st-step').dataset.value || 0));
    if (steps.length < n) requestAnimationFrame(tick);
    else resolve({steps, seconds: (t - t0) / 1000});
  }
  requestAnimationFrame(tick);
})"""
XOR_2_8_8_1: dict[str, Any] = {
    "seed": 1,
    "dataset": {"name": "xor", "samples": 400, "noise": 0.0, "test_fraction": 0.3},
    "features": ["x1", "x2"],
    "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 1, "activation": "sigmoid"},
    ],
    "loss": "mse",
    "optimizer": {"name": "sgd", "learning_rate": 0.03},
    "batch_size": 10,
}


WIDE_2_64X4_1: dict[str, Any] = {  # the same run, four hidden layers of 64
    **XOR_2_8_8_1,
    "layers": [{"type": "dense", "units": 64, "activation": "tanh"}] * 4
    + [{"type": "dense", "units": 1, "activation": "sigmoid"}],
}


def url_for_config(base: str, config: dict[str, Any]) -> str:
    """The page URL whose fragment holds `config` (what a shared link looks like)."""
    return f"{base}/#" + urllib.parse.urlencode({"c": json.dumps(config)})


def open_page(page: Any, url: str) -> None:
    """Load the page and wait until it has built (or reopened) its run."""
    page.goto(url)
    page.wait_for_selector(READY, timeout=20_000)
    page.wait_for_function("() => window.__bl && window.__bl.store.session", timeout=20_000)


def session_id(page: Any) -> str:
    return str(page.evaluate("() => window.__bl.store.session.id"))


def step_of(page: Any) -> int:
    return int(page.get_attribute("#st-step", "data-value") or 0)


def wait_step_at_least(page: Any, n: int, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "(n) => Number(document.querySelector('#st-step').dataset.value || 0) >= n",
        arg=n,
        timeout=timeout,
    )


def pause_if_running(page: Any, base: str) -> None:
    """Leave no session training behind (the shared server caps how many may train)."""
    try:
        sid = session_id(page)
    except Exception:  # noqa: BLE001 - the page may not have a run
        return
    httpx.post(f"{base}/api/sessions/{sid}/stop", timeout=10)
