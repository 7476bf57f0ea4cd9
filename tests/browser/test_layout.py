"""Readability at 1280x720 and 1440x900 in real headless Chromium: the network's labels never
overlap with 9, 12 or 16 hidden layers (and never shrink below 10 px); past what the width can draw
(a column every MIN_COL_STEP = 28 px: 16 hidden layers at 1280 wide, 18 at 1440) the middle layers
are left out with a note saying so; every status reads in plain words in the header, the status
line, the Runs list and the compare columns; the Runs list shows whole names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.helpers import XOR_2_8_8_1, open_page, url_for_config, wait_step_at_least
from tests.support import LiveServer

pytestmark = pytest.mark.browser

VIEWPORTS = [
    pytest.param({"width": 1280, "height": 720}, id="1280x720"),
    pytest.param({"width": 1440, "height": 900}, id="1440x900"),
]
# Hidden layers the 28 px rule draws at each width (measured: the network area is 664 px wide
# at 1280x720 and 738 px at 1440x900).
DRAWN = {1280: 16, 1440: 18}
# Every text of the network drawing with its box and font size (empty and hidden ones left out).
TEXTS_JS = """() => [...document.querySelectorAll('#network text')]
  .filter((t) => t.textContent.trim() && t.getClientRects().length)
  .map((t) => { const r = t.getBoundingClientRect();
    return { cls: t.getAttribute('class'), text: t.textContent, x0: r.left, x1: r.right, y0: r.top, y1: r.bottom,
             font: parseFloat(getComputedStyle(t).fontSize) }; })"""
WORST_JS = """() => {
  const stat = window.__bl.view.labels.stat;
  const widest = stat === "both" ? "dead 100% · sat 100%" : stat === "one" ? "dead 100%" : "100%";
  for (const t of document.querySelectorAll('.col-stat[id^=colstat-]:not(#colstat-legend)')) t.textContent = widest;
  for (const t of document.querySelectorAll('.gradbar-label:not(.bn)')) t.textContent = "1.2e-10";
}"""
WORDS = {
    "idle": "ready",
    "paused": "paused",
    "running": "running",
    "diverged": "diverged",
    "stopped_early": "stopped early",
    "interrupted": "interrupted (server restarted)",
}


@pytest.fixture(params=VIEWPORTS)
def sized(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page at 1280x720 or 1440x900 that records console errors."""
    context = browser.new_context(viewport=request.param)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.console_errors = errors
    tab.viewport = request.param
    try:
        yield tab
    finally:
        context.close()


def deep(hidden: int, units: int = 6, activation: str = "tanh") -> dict[str, Any]:
    layers = [{"type": "dense", "units": units, "activation": activation}] * hidden
    return dict(
        XOR_2_8_8_1, layers=[*layers, {"type": "dense", "units": 1, "activation": "sigmoid"}]
    )


def overlaps(texts: list[dict[str, Any]]) -> list[str]:
    """Pairs of text boxes that intersect by more than half a pixel each way."""
    out = []
    for k, a in enumerate(texts):
        for b in texts[k + 1 :]:
            dx = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
            dy = min(a["y1"], b["y1"]) - max(a["y0"], b["y0"])
            if dx > 0.5 and dy > 0.5:
                out.append(
                    f"{a['cls']} {a['text']!r} x {b['cls']} {b['text']!r} ({dx:.1f} x {dy:.1f} px)"
                )
    return out


def open_net(page: Any, base: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Open a run of `config`, train 10 steps (so every stat label has text), read the texts."""
    page.goto("about:blank")  # a new document, not just a new fragment
    open_page(page, url_for_config(base, config))
    page.click("#btn-step10")
    wait_step_at_least(page, 10)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.gradbar-label:not(.bn)')].every(t => t.textContent)"
        " && [...document.querySelectorAll('.col-stat[id^=colstat-]:not(#colstat-legend)')].every(t => t.textContent)"
    )
    # the widest values each label can show, so the check does not depend on this run's numbers
    page.evaluate(WORST_JS)
    return list(page.evaluate(TEXTS_JS))


@pytest.mark.parametrize("hidden", [2, 9, 12, 16])
def test_layer_labels_stay_apart_and_readable(
    shared_server: LiveServer, sized: Any, hidden: int
) -> None:
    page = sized
    texts = open_net(page, shared_server.url, deep(hidden))
    assert overlaps(texts) == []
    assert min(t["font"] for t in texts) >= 10
    net = page.locator("#network").bounding_box()
    for t in texts:  # nothing cut off at the edges of the drawing
        assert net["x"] <= t["x0"] and t["x1"] <= net["x"] + net["width"], t
        assert net["y"] <= t["y0"] and t["y1"] <= net["y"] + net["height"], t
    # every layer is drawn, with its own title, and no note
    titles = [t for t in texts if t["cls"] == "col-title"]
    assert len(titles) == hidden + 2
    assert page.get_attribute("#network", "data-drawn-layers") == str(hidden)
    assert page.is_hidden("#network .net-note")
    assert page.locator(".gradbar:not(.gradbar-bn)").count() == hidden + 1
    assert page.console_errors == []


def test_more_layers_than_fit_are_left_out_with_a_note(
    shared_server: LiveServer, sized: Any
) -> None:
    page = sized
    width = page.viewport["width"]
    drawn = DRAWN[width]
    texts = open_net(page, shared_server.url, deep(24))
    assert overlaps(texts) == []
    assert min(t["font"] for t in texts) >= 10
    assert page.get_attribute("#network", "data-hidden-layers") == "24"
    assert page.get_attribute("#network", "data-drawn-layers") == str(drawn)
    note = page.locator("#network .net-note")
    assert note.is_visible()
    text = note.text_content() or ""
    assert text.startswith(f"Showing {drawn} of 24 hidden layers")
    assert "charts show all layers" in text
    # the whole note is on screen, not cut by an ellipsis
    assert page.evaluate(
        "() => { const n = document.querySelector('.net-note'); return n.scrollWidth <= n.clientWidth; }"
    )
    left_out = 24 - drawn
    band = page.locator("#skip-band")
    assert band.get_attribute("data-count") == str(left_out)
    assert f"{left_out} layers not drawn" in (page.text_content(".skip-label") or "")
    assert len([t for t in texts if t["cls"] == "col-title"]) == drawn + 2
    # the gradient chart still follows all 25 layers
    page.wait_for_function("() => Object.keys(window.__bl.store.history.layers).length === 25")
    # the explainer and the live pulse work across the gap
    page.click("#explain-btn")
    page.wait_for_selector("#explainer[data-state='ready']", timeout=10_000)
    frames = int(page.get_attribute("#explainer", "data-frames") or 0)
    assert frames == 2 * (drawn + 2) + 1  # forward per column, loss, backward per layer, update
    for chip in ("backward", "update"):
        page.click(f"[data-phase-chip='{chip}']")
        page.wait_for_selector(f"#explainer[data-phase='{chip}']")
    page.click("#ex-close")
    page.click("#btn-step10")
    wait_step_at_least(page, 20)
    assert page.console_errors == []


def test_the_cap_follows_the_window_width(shared_server: LiveServer, sized: Any) -> None:
    page = sized
    if page.viewport["width"] != 1280:
        pytest.skip("one resize is enough: 1280 -> 1440")
    open_net(page, shared_server.url, deep(18))
    assert page.get_attribute("#network", "data-drawn-layers") == "16"
    page.set_viewport_size({"width": 1440, "height": 900})
    page.wait_for_function("() => document.querySelector('#network').dataset.drawnLayers === '18'")
    assert page.is_hidden("#network .net-note")
    assert overlaps(list(page.evaluate(TEXTS_JS))) == []


@pytest.fixture(scope="module")
def statuses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A server holding one run in every status (one interrupted by a kill -9 and a restart)."""
    live = LiveServer(tmp_path_factory.mktemp("statuses") / "data").start()
    ids: dict[str, str] = {}
    try:
        with httpx.Client(base_url=live.url, timeout=30.0) as http:

            def make(status: str, config: dict[str, Any]) -> str:
                r = http.post("/api/sessions", json={"config": config, "name": f"run {status}"})
                assert r.status_code == 201, r.text
                ids[status] = r.json()["id"]
                return ids[status]

            make("interrupted", XOR_2_8_8_1)
            assert http.post(f"/api/sessions/{ids['interrupted']}/start").status_code == 200
        live.kill()
        live.start()
        with httpx.Client(base_url=live.url, timeout=30.0) as http:
            make("idle", XOR_2_8_8_1)
            make("paused", XOR_2_8_8_1)
            http.post(f"/api/sessions/{ids['paused']}/step", json={"steps": 5})
            relu = [{"type": "dense", "units": 8, "activation": "relu"}] * 2
            wild = dict(XOR_2_8_8_1, optimizer={"name": "sgd", "learning_rate": 50})
            wild["layers"] = [*relu, {"type": "dense", "units": 1, "activation": "linear"}]
            make("diverged", wild)
            http.post(f"/api/sessions/{ids['diverged']}/step", json={"steps": 200})
            early = dict(
                XOR_2_8_8_1, early_stopping={"patience": 1, "eval_every": 1, "min_delta": 100}
            )
            make("stopped_early", early)
            http.post(f"/api/sessions/{ids['stopped_early']}/step", json={"steps": 20})
            make("running", XOR_2_8_8_1)
            http.post(f"/api/sessions/{ids['running']}/start")
            listed = {s["id"]: s["status"] for s in http.get("/api/sessions").json()["sessions"]}
            assert {status: listed[sid] for status, sid in ids.items()} == {s: s for s in ids}
        yield live.url, ids
    finally:
        live.stop()


def test_statuses_read_in_plain_words_everywhere(
    statuses: tuple[str, dict[str, str]], sized: Any
) -> None:
    page = sized
    base, ids = statuses
    open_page(page, f"{base}/#run={ids['paused']}")
    page.click("#tabbtn-runs")
    page.wait_for_selector(f"#run-list .run-item[data-run='{ids['running']}']")
    for status, sid in ids.items():
        pill = f"#run-list .run-item[data-run='{sid}'] .pill"
        assert page.get_attribute(pill, "data-status") == status
        assert page.text_content(pill) == WORDS[status]
    # header pill and status line of each run opened from the list
    for status in ("idle", "stopped_early", "interrupted", "diverged", "running", "paused"):
        page.click("#tabbtn-runs")
        page.click(f"#run-list .run-item[data-run='{ids[status]}'] .run-open")
        page.wait_for_function(
            "(s) => document.querySelector('#run-status').dataset.status === s",
            arg=status,
            timeout=10_000,
        )
        # a running run also says its pace: "running · full speed" (a REST start has no pace)
        words = "running · full speed" if status == "running" else WORDS[status]
        assert page.text_content("#run-status") == words
        assert page.text_content("#st-status") == words
        assert page.evaluate(
            "() => getComputedStyle(document.querySelector('#run-status')).textTransform"
        ) in ("none", "lowercase")
    # compare columns
    page.click("#tabbtn-runs")
    for status in ("idle", "stopped_early", "interrupted"):
        page.check(f"#run-list input[data-run='{ids[status]}']")
    page.click("#compare-runs")
    page.wait_for_selector("#compare:not([hidden]) .compare-col .pill")
    for status in ("idle", "stopped_early", "interrupted"):
        pill = f"#compare .compare-col[data-run='{ids[status]}'] .pill"
        page.wait_for_selector(pill)
        assert page.get_attribute(pill, "data-status") == status
        assert page.text_content(pill) == WORDS[status]
    page.click("#compare-close")
    assert page.console_errors == []


def test_runs_list_shows_whole_names(shared_server: LiveServer, sized: Any) -> None:
    page = sized
    base = shared_server.url
    long = "Spiral with eight tanh layers, learning rate 0.03, batch 10 — the one that finally worked after trying sigmoid"
    unbroken = "x" * 120
    sids = []
    for name in (long, unbroken):
        r = httpx.post(
            f"{base}/api/sessions", json={"config": XOR_2_8_8_1, "name": name}, timeout=10
        )
        sids.append(r.json()["id"])
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.click("#tabbtn-runs")
    for sid, name in zip(sids, (long, unbroken), strict=True):
        el = f"#run-list .run-item[data-run='{sid}'] .run-name"
        page.wait_for_selector(el)
        assert page.text_content(el) == name
        box = page.evaluate(
            "(sel) => { const n = document.querySelector(sel); const p = document.querySelector('#left').getBoundingClientRect();"
            " const r = n.getBoundingClientRect(); return {fits: n.scrollWidth <= n.clientWidth + 1, inside: r.left >= p.left && r.right <= p.right,"
            " lines: Math.round(r.height / parseFloat(getComputedStyle(n).lineHeight || 16)), overflow: getComputedStyle(n).textOverflow}; }",
            el,
        )
        assert box["fits"] and box["inside"], box
        assert box["lines"] >= 2  # wrapped, not cut
        assert box["overflow"] != "ellipsis"
    assert page.console_errors == []
