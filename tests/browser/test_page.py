"""The training page in real headless Chromium against a live server: transport, charts, gradient
bars, the step-by-step explainer and its chain-rule numbers, live hyperparameter changes, field
errors, the URL fragment and a page that keeps drawing while training."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest

from tests.browser.helpers import (
    FRAMES_JS,
    WIDE_2_64X4_1,
    XOR_2_8_8_1,
    open_page,
    pause_if_running,
    session_id,
    step_of,
    url_for_config,
    wait_step_at_least,
)
from tests.support import LiveServer

pytestmark = pytest.mark.browser


def test_start_pause_and_single_step(lens: Any) -> None:
    page = lens
    points_before = int(page.get_attribute("#loss-chart", "data-points") or 0)
    page.click("#btn-start")
    wait_step_at_least(page, 50)
    page.wait_for_function(
        "(n) => Number(document.querySelector('#loss-chart').dataset.points) > n",
        arg=points_before,
        timeout=10_000,
    )
    page.click("#btn-start")  # pause
    page.wait_for_selector("#btn-start[data-state='paused']")
    page.wait_for_function("() => window.__bl.store.session.status !== 'running'")
    time.sleep(0.4)  # let the last frames land
    paused_at = step_of(page)
    time.sleep(0.8)
    assert step_of(page) == paused_at, "the step counter moved while paused"
    page.click("#btn-step1")
    page.wait_for_function(
        "(n) => Number(document.querySelector('#st-step').dataset.value) !== n", arg=paused_at
    )
    time.sleep(0.3)
    assert step_of(page) == paused_at + 1
    assert page.console_errors == []


def test_gradient_bars_exist_and_change(lens: Any) -> None:
    page = lens
    page.click("#btn-step10")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gradbar')].some(b => b.dataset.value)",
        timeout=10_000,
    )
    layers = page.eval_on_selector_all(".gradbar", "bars => bars.map(b => b.dataset.layer)")
    assert layers == ["0", "1", "2"], "one bar per dense layer"
    before = page.eval_on_selector_all(".gradbar", "bars => bars.map(b => b.dataset.value)")
    assert all(v and float(v) > 0 for v in before)
    heights = page.eval_on_selector_all(
        ".gradbar", "bars => bars.map(b => Number(b.getAttribute('height')))"
    )
    assert all(h > 0 for h in heights)
    page.click("#btn-start")
    wait_step_at_least(page, 300)
    page.wait_for_function(
        "(old) => { const now = [...document.querySelectorAll('.gradbar')].map(b => b.dataset.value);"
        " return now.some((v, i) => v !== old[i]); }",
        arg=before,
        timeout=10_000,
    )
    page.click("#btn-start")


def test_explainer_walks_the_phases_and_matches_trace(shared_server: LiveServer, lens: Any) -> None:
    page = lens
    page.click("#btn-step10")
    wait_step_at_least(page, 10)
    page.click("#explain-btn")
    page.wait_for_selector("#explainer[data-state='ready']", timeout=10_000)
    page.click("#ex-play")  # pause autoplay; walk by hand
    seen = [page.get_attribute("#explainer", "data-phase")]
    frames = int(page.get_attribute("#explainer", "data-frames") or 0)
    assert frames >= 8  # 4 forward columns, loss, 3 backward layers, update
    for _ in range(frames - 1):
        page.click("#ex-next")
        seen.append(page.get_attribute("#explainer", "data-phase"))
    order = [p for i, p in enumerate(seen) if i == 0 or p != seen[i - 1]]
    assert order == ["forward", "loss", "backward", "update"]
    page.click("#ex-prev")  # going back works too
    assert page.get_attribute("#explainer", "data-phase") == "backward"

    # the engine's own numbers for the same sample and weights
    sid = session_id(page)
    sample = page.evaluate("() => JSON.parse(document.querySelector('#explainer').dataset.sample)")
    target = page.evaluate("() => JSON.parse(document.querySelector('#explainer').dataset.target)")
    trace = httpx.post(
        f"{shared_server.url}/api/sessions/{sid}/trace",
        json={"inputs": [sample], "targets": [target]},
        timeout=10,
    ).json()
    layers = {str(layer["name"]): layer for layer in trace["layers"]}

    # the chain rule shown for the highlighted neuron of the first hidden layer (last backward frame)
    assert page.get_attribute("#chain-rule", "data-layer") == "0"
    unit = int(page.get_attribute("#chain-rule", "data-unit") or 0)
    delta_shown = float(page.get_attribute("#cr-delta", "data-value") or "nan")
    assert math.isclose(
        delta_shown, layers["0"]["grad_preactivation"][0][unit], rel_tol=1e-9, abs_tol=1e-30
    )
    fprime = float(page.get_attribute("#cr-fprime", "data-value") or "nan")
    weighted = float(page.get_attribute("#cr-sum", "data-value") or "nan")
    assert math.isclose(fprime * weighted, delta_shown, rel_tol=1e-3, abs_tol=1e-12)

    # hover an edge of layer 1: a_i, delta_j and their product against /trace
    point = page.evaluate(
        "() => { const v = window.__bl.view; const p = v.edgePoint('1', 2, 3, 0.15);"
        " const r = v.root.getBoundingClientRect(); return {x: r.left + p.x, y: r.top + p.y}; }"
    )
    page.mouse.move(point["x"], point["y"])
    page.wait_for_selector("#tooltip[data-kind='edge'][data-source='trace']", timeout=5_000)
    layer = page.get_attribute("#tooltip", "data-layer")
    i = int(page.get_attribute("#tooltip", "data-i") or -1)
    j = int(page.get_attribute("#tooltip", "data-j") or -1)
    traced = layers[str(layer)]

    def shown(sel: str) -> float:
        return float(page.get_attribute(sel, "data-value") or "nan")

    a_i = traced["input"][0][i]
    delta_j = traced["grad_preactivation"][0][j]
    assert shown("#tip-a") == pytest.approx(a_i, rel=1e-9, abs=1e-30)
    assert shown("#tip-delta") == pytest.approx(delta_j, rel=1e-9, abs=1e-30)
    assert shown("#tip-product") == pytest.approx(a_i * delta_j, rel=1e-9, abs=1e-30)
    assert shown("#tip-grad") == pytest.approx(traced["grad_W"][i][j], rel=1e-9, abs=1e-30)
    # dL/dw_ij = a_i * delta_j holds for the engine's own numbers (float32 rounding aside)
    assert a_i * delta_j == pytest.approx(traced["grad_W"][i][j], rel=1e-3, abs=1e-12)
    assert page.console_errors == []


def test_learning_rate_edit_reaches_the_running_session(
    shared_server: LiveServer, lens: Any
) -> None:
    page = lens
    page.click("#btn-start")
    wait_step_at_least(page, 20)
    sid = session_id(page)
    page.fill("#f-lr", "0.07")
    page.press("#f-lr", "Enter")
    page.dispatch_event("#f-lr", "change")
    deadline = time.monotonic() + 10
    session: dict[str, Any] = {}
    while time.monotonic() < deadline:
        session = httpx.get(f"{shared_server.url}/api/sessions/{sid}", timeout=10).json()
        if session["config"]["optimizer"]["learning_rate"] == pytest.approx(0.07):
            break
        time.sleep(0.1)
    assert session["config"]["optimizer"]["learning_rate"] == pytest.approx(0.07)
    assert session["status"] == "running", "a PATCH must not restart or stop the run"
    assert session_id(page) == sid, "no new session for a hyperparameter change"
    page.click("#btn-start")


def test_bad_field_shows_its_error_next_to_the_field(lens: Any) -> None:
    page = lens
    field = '[data-field="layers[1].units"]'
    page.fill(field, "0")
    page.dispatch_event(field, "change")
    box = page.wait_for_selector(
        '.field-error[data-error-for="layers[1].units"]:not([hidden])', timeout=10_000
    )
    assert "got 0" in (box.text_content() or ""), "the server's message, naming what arrived"
    assert page.get_attribute(field, "aria-invalid") == "true"
    # the box sits right under the layer's row
    row_box = page.eval_on_selector(
        field, "e => e.closest('.layer-item').getBoundingClientRect().bottom"
    )
    err_box = box.bounding_box()
    assert err_box is not None and err_box["y"] <= row_box + 2
    # the server's error is a 422, logged by the browser as a failed resource; nothing else is
    assert all("422" in e for e in page.console_errors)


def test_reload_restores_the_setup_from_the_url(lens: Any) -> None:
    page = lens
    sid_before = session_id(page)
    page.fill('[data-field="layers[0].units"]', "5")
    page.dispatch_event('[data-field="layers[0].units"]', "change")
    page.select_option('[data-field="layers[1].activation"]', "relu")
    page.wait_for_function(
        "(old) => window.__bl.store.session && window.__bl.store.session.id !== old"
        " && window.__bl.store.session.config.layers[1].activation === 'relu'"
        " && window.__bl.store.session.config.layers[0].units === 5",
        arg=sid_before,
        timeout=10_000,
    )
    page.fill("#f-batch", "17")
    page.dispatch_event("#f-batch", "change")
    page.wait_for_function(
        "() => window.__bl.store.session.config.batch_size === 17", timeout=10_000
    )
    url = page.url
    assert "run=" in url and "c=" in url
    page.reload()
    page.wait_for_selector("body[data-ready='yes']", timeout=20_000)
    assert page.input_value('[data-field="layers[0].units"]') == "5"
    assert page.input_value('[data-field="layers[1].activation"]') == "relu"
    assert page.input_value("#f-batch") == "17"
    assert page.evaluate("() => window.__bl.view.columnModel().map(c => c.units)") == [2, 5, 8, 1]


@pytest.mark.parametrize("net", ["2-8-8-1", "2-64x4-1"])
def test_the_page_keeps_drawing_while_training(
    shared_server: LiveServer, page: Any, net: str
) -> None:
    """Frames keep coming and the numbers in them keep moving while the server trains (at the
    page's default pace). How many frames a second is bench/page.py's figure (printed with -s)."""
    config = XOR_2_8_8_1 if net == "2-8-8-1" else WIDE_2_64X4_1
    open_page(page, url_for_config(shared_server.url, config))
    page.click("#btn-start")
    wait_step_at_least(page, 20)
    try:
        drawn = page.evaluate(FRAMES_JS, 60)
    finally:
        pause_if_running(page, shared_server.url)
    steps = drawn["steps"]
    print(f"\n{net}: 60 frames in {drawn['seconds']:.2f} s ({60 / drawn['seconds']:.1f} fps)")
    assert steps == sorted(steps)  # the readout never goes back while a run trains
    assert steps[-1] > steps[0] >= 20
    assert len(set(steps)) >= 3, steps  # it changed several times between the 60 frames
    assert page.console_errors == []


def test_the_status_line_says_at_which_step_its_numbers_were_evaluated(
    shared_server: LiveServer, lens: Any
) -> None:
    page = lens
    title = "document.querySelector('#st-test-acc').getAttribute('title')"
    assert page.evaluate(title) == "not evaluated yet"
    for k in (1, 2):
        page.click("#btn-step10")
        wait_step_at_least(page, 10 * k)
    page.wait_for_function("() => document.querySelector('#st-test-acc').dataset.evalStep === '20'")
    metrics = httpx.get(f"{shared_server.url}/api/sessions/{session_id(page)}").json()["metrics"]
    assert metrics["step"] == metrics["eval_step"] == 20  # a +10 step is evaluated at its end
    for node in ("#st-loss", "#st-test-loss", "#st-acc", "#st-test-acc"):
        assert page.get_attribute(node, "title") == "evaluated at step 20"
    assert page.text_content("#st-test-acc") == f"{metrics['test_accuracy'] * 100:.1f}%"
    assert page.console_errors == []
