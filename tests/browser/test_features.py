"""More of the page against a live server: presets, a strict Content-Security-Policy, weight editing,
comparing runs, the divergence banner, the banner of a run that cannot be saved (a full disk) and
a page opened in the middle of a run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.helpers import (
    XOR_2_8_8_1,
    open_page,
    pause_if_running,
    session_id,
    url_for_config,
    wait_step_at_least,
)
from tests.support import LiveServer, fill_disk, mount_tmpfs, unmount

pytestmark = pytest.mark.browser

# What the server sends (SECURITY.md): the app's own scripts and styles only, no inline code, no
# eval, and WebSockets to this server alone.
STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self' {ws}; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_choosing_a_preset_and_starting(shared_server: LiveServer, page: Any) -> None:
    presets = httpx.get(f"{shared_server.url}/api/presets", timeout=10).json()["presets"]
    ids = [p["id"] for p in presets]
    if "xor" not in ids:
        pytest.skip(f"the server has no 'xor' preset (has {ids})")
    open_page(page, shared_server.url + "/")
    first_run = session_id(page)
    page.select_option("#preset", "xor")
    page.wait_for_function(
        "(old) => window.__bl.store.session.id !== old && window.__bl.store.session.name === 'XOR'",
        arg=first_run,
        timeout=10_000,
    )
    xor = next(p for p in presets if p["id"] == "xor")
    units = [layer.get("units") for layer in xor["config"]["layers"]]
    assert page.evaluate("() => window.__bl.store.config.layers.map(l => l.units)") == units
    page.click("#btn-start")
    wait_step_at_least(page, 30)
    page.wait_for_function("() => Number(document.querySelector('#loss-chart').dataset.points) > 0")
    # the Learn tab lists the same presets with their texts
    page.click(".tab[data-tab='learn']")
    assert page.locator(".learn-item").count() == len(presets)
    pause_if_running(page, shared_server.url)
    assert page.console_errors == []


def test_page_works_under_a_strict_csp(shared_server: LiveServer, page: Any) -> None:
    """The server's own policy, as the browser receives it, is strict (a missing or looser one
    fails), and nothing the page does is refused by it: no inline script or style, no eval."""
    documents: list[Any] = []
    page.on(
        "response",
        lambda r: documents.append(r) if r.request.resource_type == "document" else None,
    )
    page.add_init_script(RECORD_VIOLATIONS)
    open_page(page, url_for_config(shared_server.url, XOR_2_8_8_1))
    assert documents, "the page's document response was not seen"
    port = shared_server.port
    sent = documents[0].header_value("content-security-policy")
    assert sent == STRICT_CSP.format(ws=f"ws://127.0.0.1:{port} ws://localhost:{port}"), sent
    page.click("#btn-step10")
    wait_step_at_least(page, 10)
    page.wait_for_function("() => Number(document.querySelector('#loss-chart').dataset.points) > 0")
    page.wait_for_function("() => window.__bl.store.snapshot !== null")
    page.click("#explain-btn")
    page.wait_for_selector("#explainer[data-state='ready']", timeout=10_000)
    page.click("#ex-next")
    page.click("[data-chart-tab='hist']")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__cspViolations") == []
    assert page.console_errors == []


def test_clicking_an_edge_edits_its_weight(shared_server: LiveServer, page: Any) -> None:
    open_page(page, url_for_config(shared_server.url, XOR_2_8_8_1))
    page.wait_for_function("() => window.__bl.store.snapshot && window.__bl.store.snapshot.weights")
    point = page.evaluate(
        "() => { const v = window.__bl.view; const p = v.edgePoint('2', 4, 0, 0.5);"
        " const r = v.root.getBoundingClientRect(); return {x: r.left + p.x, y: r.top + p.y}; }"
    )
    page.mouse.move(point["x"], point["y"])
    page.wait_for_selector("#tooltip[data-kind='edge']")
    layer = page.get_attribute("#tooltip", "data-layer")
    i = int(page.get_attribute("#tooltip", "data-i") or -1)
    j = int(page.get_attribute("#tooltip", "data-j") or -1)
    page.mouse.click(point["x"], point["y"])
    page.wait_for_selector("#weight-editor:not([hidden])")
    page.fill("#we-value", "1.25")
    page.click("#we-apply")
    page.wait_for_selector("#weight-editor", state="hidden", timeout=10_000)
    weights = httpx.get(
        f"{shared_server.url}/api/sessions/{session_id(page)}/weights", timeout=10
    ).json()
    assert weights[f"{layer}.W"][i][j] == pytest.approx(1.25)


def test_runs_list_and_compare_two_runs(shared_server: LiveServer, page: Any) -> None:
    ids = []
    for lr in (0.01, 0.3):
        cfg = dict(XOR_2_8_8_1, optimizer={"name": "sgd", "learning_rate": lr})
        run = httpx.post(
            f"{shared_server.url}/api/sessions",
            json={"config": cfg, "name": f"cmp lr {lr}"},
            timeout=10,
        ).json()
        httpx.post(
            f"{shared_server.url}/api/sessions/{run['id']}/step", json={"steps": 200}, timeout=30
        )
        ids.append(run["id"])
    open_page(page, shared_server.url + "/")
    page.click(".tab[data-tab='runs']")
    for run_id in ids:
        page.check(f"#run-list input[data-run='{run_id}']")
    page.click("#compare-runs")
    page.wait_for_selector("#compare:not([hidden])")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare .compare-chart')].length === 4"
        " && [...document.querySelectorAll('#compare .compare-chart')].every(c => Number(c.dataset.points) > 0)",
        timeout=10_000,
    )
    names = page.eval_on_selector_all("#compare h3", "hs => hs.map(h => h.textContent)")
    assert sorted(names) == ["cmp lr 0.01", "cmp lr 0.3"]
    page.click("#compare-close")
    # reopening a run from the list shows it
    page.click(f"#run-list li[data-run='{ids[1]}'] .run-open")
    page.wait_for_function("(id) => window.__bl.store.session.id === id", arg=ids[1])
    assert page.input_value("#f-lr") == "0.3"
    assert page.console_errors == []


def test_divergence_shows_a_banner_with_what_to_try(shared_server: LiveServer, page: Any) -> None:
    cfg = dict(XOR_2_8_8_1)
    cfg["layers"] = [
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "linear"},
    ]
    cfg["optimizer"] = {"name": "sgd", "learning_rate": 50}
    open_page(page, url_for_config(shared_server.url, cfg))
    page.click("#btn-start")
    page.wait_for_selector("#banner:not([hidden])", timeout=15_000)
    page.wait_for_selector("#run-status[data-status='diverged']", timeout=10_000)
    text = page.text_content("#banner") or ""
    assert "diverged" in text.lower()
    for button in ("#fix-lr", "#fix-clip", "#fix-bn"):
        assert page.is_visible(button)
    page.click("#fix-lr")
    page.wait_for_function(
        "() => window.__bl.store.session.config.optimizer.learning_rate === 5", timeout=10_000
    )
    assert page.input_value("#f-lr") == "5"


def test_page_opened_mid_run_draws_the_history_at_once(
    shared_server: LiveServer, page: Any
) -> None:
    run = httpx.post(
        f"{shared_server.url}/api/sessions", json={"config": XOR_2_8_8_1}, timeout=10
    ).json()
    httpx.post(f"{shared_server.url}/api/sessions/{run['id']}/start", timeout=10)
    try:
        time.sleep(1.0)
        page.goto(f"{shared_server.url}/#run={run['id']}")
        page.wait_for_function(
            "(id) => window.__bl && window.__bl.store.session && window.__bl.store.session.id === id",
            arg=run["id"],
            timeout=15_000,
        )
        # the hello message's history is drawn without waiting for new training
        page.wait_for_function(
            "() => Number(document.querySelector('#loss-chart').dataset.points) > 5", timeout=5_000
        )
        page.wait_for_function(
            "() => Number(document.querySelector('#grad-chart').dataset.points) > 5", timeout=5_000
        )
        assert page.get_attribute("#btn-start", "data-state") == "running"
    finally:
        httpx.post(f"{shared_server.url}/api/sessions/{run['id']}/stop", timeout=10)
    assert page.console_errors == []


def test_a_full_disk_shows_a_banner_until_the_run_saves_again(page: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    reason = mount_tmpfs(data, "4m")
    if reason is not None:
        pytest.skip(f"cannot fill a disk here: {reason}")
    server = LiveServer(data)
    try:
        server.start()
        open_page(page, url_for_config(server.url, XOR_2_8_8_1))
        page.click("#btn-start")
        wait_step_at_least(page, 30)
        filler = fill_disk(data)
        page.wait_for_selector("#banner[data-kind='storage']:not([hidden])", timeout=60_000)
        text = page.text_content("#banner") or ""
        assert "cannot be saved" in text and "is full" in text and "keeps" in text
        page.wait_for_selector("#run-status[data-status='paused']", timeout=10_000)
        assert not page.is_visible("#fix-lr")  # a divergence's fixes do not help here
        filler.unlink()
        page.click("#btn-start")  # space is back: start saves, trains, and the banner goes
        page.wait_for_selector("#banner", state="hidden", timeout=20_000)
        page.wait_for_selector("#run-status[data-status='running']", timeout=10_000)
        pause_if_running(page, server.url)
    finally:
        server.stop()
        unmount(data)
