"""Accessibility of the page in real headless Chromium at 1280x720 and 1440x900: an axe-core scan of
every main state (build, explainer, learn list and lesson, compare dialog, runs list with its rename
and delete steps) finds nothing critical or serious; Tab reaches every main control with a visible
focus ring of at least 3:1; Enter, Space, the arrow keys and Escape work the tabs, lessons, transport,
explainer, compare dialog, Runs actions and the weight editor; a blank weight edit is refused.

axe-core is vendored in tests/browser/vendor/axe-core (see its VERSION). The page sends a strict
Content-Security-Policy (script-src 'self'), which blocks the inline <script> that
page.add_script_tag() inserts, so the file is evaluated over the DevTools protocol instead
(page.evaluate of its text, which CSP does not govern). That keeps the page's real policy in force
during the scan, unlike a context with bypass_csp=True.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.helpers import (
    XOR_2_8_8_1,
    open_page,
    session_id,
    step_of,
    url_for_config,
    wait_step_at_least,
)
from tests.support import LiveServer

pytestmark = pytest.mark.browser

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
  }));
}"""
VIEWPORTS = [
    pytest.param({"width": 1280, "height": 720}, id="1280x720"),
    pytest.param({"width": 1440, "height": 900}, id="1440x900"),
]
# What the focused element looks like: its ring (outline, else box-shadow) and the colour it is
# drawn on (the element's own background for an inward ring, else its parent's), with
# translucent backgrounds composited down to the first opaque one.
FOCUS_JS = """(expected) => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const cs = getComputedStyle(el);
  const rgba = (c) => { const m = c.match(/[\\d.]+/g) || [0, 0, 0, 0]; return m.length === 3 ? [...m.map(Number), 1] : m.map(Number); };
  const under = (start) => {
    const layers = [];
    for (let n = start; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let out = [255, 255, 255];
    for (const [r, g, b, a] of layers.reverse()) out = [r * a + out[0] * (1 - a), g * a + out[1] * (1 - a), b * a + out[2] * (1 - a)];
    return out;
  };
  const outline = cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0;
  const inward = parseFloat(cs.outlineOffset) < 0;
  const hidden = el.getClientRects().length === 0;
  return {
    key: el.id ? "#" + el.id : el.tagName.toLowerCase() + "." + [...el.classList].join("."),
    matched: expected.filter((sel) => el.matches(sel)),
    focusVisible: el.matches(":focus-visible"),
    outline: outline ? rgba(cs.outlineColor) : null,
    outlineWidth: parseFloat(cs.outlineWidth) || 0,
    shadow: cs.boxShadow !== "none" ? cs.boxShadow : null,
    background: under(inward ? el : el.parentElement),
    hidden,
  };
}"""


def luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(float(v)) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(params=VIEWPORTS)
def sized(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page at 1280x720 or 1440x900 that records console errors."""
    context = browser.new_context(viewport=request.param)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.console_errors = errors
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture
def base(shared_server: LiveServer) -> Iterator[str]:
    """The shared server's URL; no session is left training afterwards."""
    yield shared_server.url
    for s in httpx.get(f"{shared_server.url}/api/sessions", timeout=10).json()["sessions"]:
        if s["status"] == "running":
            httpx.post(f"{shared_server.url}/api/sessions/{s['id']}/stop", timeout=10)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    return list(page.evaluate(AXE_RUN))


def scan(page: Any, state: str, report: list[str]) -> None:
    """Run axe; print every violation, keep the critical and serious ones in `report`."""
    for v in axe_violations(page):
        nodes = "; ".join(n["target"] for n in v["nodes"][:6])
        line = f"[{state}] {v['impact']} {v['id']} x{len(v['nodes'])}: {v['help']} ({nodes})"
        print(line)
        if v["impact"] in ("critical", "serious"):
            detail = "\n    ".join(f"{n['target']}: {n['summary']}" for n in v["nodes"][:6])
            report.append(f"{line}\n    {detail}")


def open_lesson(page: Any, lesson_id: str) -> None:
    old = page.evaluate("() => window.__bl.store.session && window.__bl.store.session.id")
    page.click(f".learn-item[data-preset='{lesson_id}']")
    page.wait_for_selector(f"#learn-detail[data-lesson='{lesson_id}']:not([hidden])")
    page.wait_for_function(
        "(old) => window.__bl.store.session && window.__bl.store.session.id !== old",
        arg=old,
        timeout=15_000,
    )


def wait_compare_drawn(page: Any, columns: int) -> None:
    page.wait_for_selector("#compare:not([hidden])", timeout=10_000)
    page.wait_for_selector("#compare-toggle:not([disabled])", timeout=10_000)
    page.click("#compare-toggle")  # side-by-side runs train once asked to
    page.wait_for_function(
        "(n) => document.querySelectorAll('#compare .compare-chart').length === 2 * n"
        " && [...document.querySelectorAll('#compare .compare-chart')].every(c => Number(c.dataset.points) > 0)",
        arg=columns,
        timeout=20_000,
    )


def test_axe_finds_nothing_serious_in_the_main_states(sized: Any, base: str) -> None:
    page = sized
    report: list[str] = []
    open_page(page, base + "/")
    page.click("#btn-step10")
    wait_step_at_least(page, 10)
    scan(page, "build", report)

    page.click("#explain-btn")
    page.wait_for_selector("#explainer[data-state='ready']", timeout=10_000)
    page.click("[data-phase-chip='backward']")  # chain-rule numbers on screen
    page.wait_for_selector("#explainer[data-phase='backward']", timeout=5_000)
    scan(page, "explainer", report)
    page.click("#ex-close")

    page.click("#tabbtn-learn")
    page.wait_for_selector(".learn-item[data-kind='lesson']")
    scan(page, "learn list", report)
    open_lesson(page, "vanishing-gradients")
    scan(page, "learn lesson", report)

    page.click("#learn-back")
    open_lesson(page, "learning-rate")  # opens its three runs side by side
    wait_compare_drawn(page, 3)
    scan(page, "compare", report)
    page.click("#compare-toggle")  # pause them all
    page.click("#compare-close")
    page.wait_for_selector("#compare", state="hidden")

    httpx.post(
        f"{base}/api/sessions",
        json={"config": XOR_2_8_8_1, "name": "a long run name " * 8 + "that ends here"},
        timeout=10,
    )
    page.click("#tabbtn-runs")
    page.wait_for_function("() => document.querySelectorAll('#run-list .run-item').length >= 4")
    scan(page, "runs", report)
    page.click("#run-list .run-item:first-child .run-rename")
    page.fill("#run-list .run-item:first-child .run-name-input", " ")
    page.press("#run-list .run-item:first-child .run-name-input", "Enter")
    page.wait_for_selector("#run-list .run-item:first-child .field-error:not([hidden])")
    scan(page, "runs: rename refused", report)
    page.press("#run-list .run-item:first-child .run-name-input", "Escape")
    page.click("#run-list .run-item:first-child .run-delete")
    page.wait_for_selector("#run-list .run-item:first-child .run-confirm:not([hidden])")
    scan(page, "runs: confirm delete", report)
    page.click("#run-list .run-item:first-child .run-keep")

    # the drawing lesson's hint and a diverged run's banner, with the mouse over Start
    page.click("#tabbtn-learn")
    if page.is_visible("#learn-back"):
        page.click("#learn-back")
    open_lesson(page, "your-own-data")
    page.wait_for_selector("#draw-hint:not([hidden])")
    scan(page, "learn: draw your data", report)
    wild = dict(XOR_2_8_8_1, optimizer={"name": "sgd", "learning_rate": 50})
    wild["layers"] = [
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "dense", "units": 8, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "linear"},
    ]
    page.goto("about:blank")
    open_page(page, url_for_config(base, wild))
    page.click("#btn-start")
    page.wait_for_selector("#banner:not([hidden])", timeout=15_000)
    page.wait_for_selector("#st-event[data-kind='diverged']")
    page.hover("#btn-start")
    scan(page, "diverged", report)

    assert report == [], "axe found critical or serious violations:\n" + "\n".join(report)
    assert page.console_errors == []


def walk(page: Any, expected: list[str], presses: int) -> list[dict[str, Any]]:
    """Press Tab `presses` times from where focus is; what each stop was and how it looked."""
    stops = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        info = page.evaluate(FOCUS_JS, expected)
        if info is not None:
            stops.append(info)
    return stops


def check_rings(stops: list[dict[str, Any]]) -> None:
    """Every stop shows a ring: an outline of 2 px or more with 3:1 against what it is drawn on."""
    bad = []
    for s in stops:
        if s["hidden"]:
            bad.append(f"{s['key']}: focus on an element that is not rendered")
            continue
        if not s["focusVisible"]:
            bad.append(f"{s['key']}: not :focus-visible after Tab")
            continue
        if s["outline"] is None and s["shadow"] is None:
            bad.append(f"{s['key']}: no outline and no box-shadow")
            continue
        if s["outline"] is not None:
            ratio = contrast(s["outline"], s["background"])
            if ratio < 3.0 or s["outlineWidth"] < 2:
                bad.append(
                    f"{s['key']}: ring {s['outline']} {s['outlineWidth']}px on {s['background']} = {ratio:.2f}:1"
                )
    assert bad == [], "\n".join(bad)


def reached(stops: list[dict[str, Any]]) -> set[str]:
    return {sel for s in stops for sel in s["matched"]}


BUILD_STOPS = [
    "#btn-reset",
    "#btn-start",
    "#btn-step1",
    "#btn-step10",
    "#speed",
    "#tabbtn-build",
    "#preset",
    "#f-dataset",
    "[data-field='dataset.samples']",
    "[data-field='dataset.noise']",
    "#features input",
    "#add-layer",
    "[data-field='layers[0].type']",
    "[data-field='layers[0].units']",
    "[data-field='layers[0].activation']",
    "#f-lr",
    "#f-batch",
    "#f-seed",
    "#new-seed",
    "#export-json",
    "#import-json-btn",
    "#copy-link",
    "#pulse-toggle",
    "#explain-btn",
    "#network",
    "#show-test",
    "#loss-log",
    "#grad-log",
    "#charttab-ratio",
]


def test_tab_reaches_every_main_control_with_a_visible_ring(sized: Any, base: str) -> None:
    page = sized
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.wait_for_function("() => window.__bl.store.snapshot !== null")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    stops = walk(page, BUILD_STOPS, 80)
    missing = set(BUILD_STOPS) - reached(stops)
    assert not missing, (
        f"not reached with Tab: {sorted(missing)}; order: {[s['key'] for s in stops]}"
    )
    # one tab stop per tablist: the unselected tabs are reached with the arrow keys
    keys = [s["key"] for s in stops]
    assert "#tabbtn-runs" not in keys and "#tabbtn-learn" not in keys
    assert keys.index("#btn-reset") < keys.index("#btn-start") < keys.index("#btn-step1")
    check_rings(stops)

    # the explainer's controls
    page.focus("#explain-btn")
    page.keyboard.press("Enter")
    page.wait_for_selector("#explainer[data-state='ready']", timeout=10_000)
    page.focus("#explain-btn")
    ex = [
        "[data-phase-chip='forward']",
        "[data-phase-chip='update']",
        "#ex-prev",
        "#ex-play",
        "#ex-next",
        "#ex-random",
        "#ex-close",
    ]
    stops = walk(page, ex, 14)
    assert set(ex) <= reached(stops), [s["key"] for s in stops]
    check_rings(stops)

    # the Learn list and the Runs list
    page.focus("#ex-next")
    page.keyboard.press("Escape")
    page.wait_for_selector("#explainer", state="hidden")
    page.click("#tabbtn-learn")
    page.focus("#tabbtn-learn")
    stops = walk(
        page, [".learn-item[data-preset='how-a-step-works']", ".learn-item[data-preset='xor']"], 20
    )
    assert len(reached(stops)) == 2, [s["key"] for s in stops]
    check_rings(stops)
    page.click("#tabbtn-runs")
    page.wait_for_selector("#run-list .run-item")
    page.focus("#tabbtn-runs")
    runs = ["#refresh-runs", ".run-tick", ".run-open", ".run-rename", ".run-delete"]
    stops = walk(page, runs, 8)
    assert set(runs) <= reached(stops), [s["key"] for s in stops]
    check_rings(stops)
    assert page.console_errors == []


def active(page: Any) -> str:
    return str(
        page.evaluate(
            "() => { const a = document.activeElement; return a.id ? '#' + a.id : a.className; }"
        )
    )


def test_keys_work_the_tabs_lessons_transport_and_explainer(sized: Any, base: str) -> None:
    page = sized
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.wait_for_function("() => window.__bl.store.snapshot !== null")
    # +1 and +10 from the keyboard, Enter and Space; the status line shows the step
    page.focus("#btn-step1")
    before = step_of(page)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(n) => Number(document.querySelector('#st-step').dataset.value) === n + 1", arg=before
    )
    page.focus("#btn-step10")
    page.keyboard.press("Space")
    page.wait_for_function(
        "(n) => Number(document.querySelector('#st-step').dataset.value) === n + 11", arg=before
    )
    # Space on Start starts once (not the shortcut and the click both), Space again pauses
    page.focus("#btn-start")
    page.keyboard.press("Space")
    page.wait_for_selector("#btn-start[data-state='running']")
    page.wait_for_timeout(300)
    assert page.get_attribute("#btn-start", "data-state") == "running"
    page.keyboard.press("Space")
    page.wait_for_selector("#btn-start[data-state='paused']")

    # tabs: arrows move and select, Home and End too
    page.focus("#tabbtn-build")
    page.keyboard.press("ArrowRight")
    assert active(page) == "#tabbtn-runs"
    assert page.get_attribute("#tabbtn-runs", "aria-selected") == "true"
    assert page.is_visible("#tab-runs") and not page.is_visible("#tab-build")
    assert page.get_attribute("#tabbtn-runs", "tabindex") == "0"
    assert page.get_attribute("#tabbtn-build", "tabindex") == "-1"
    page.keyboard.press("End")
    assert active(page) == "#tabbtn-learn" and page.is_visible("#tab-learn")
    page.keyboard.press("ArrowRight")  # wraps around
    assert active(page) == "#tabbtn-build" and page.is_visible("#tab-build")
    page.keyboard.press("ArrowLeft")
    assert active(page) == "#tabbtn-learn"
    assert page.get_attribute("#tabbtn-learn", "aria-selected") == "true"

    # a lesson opens with Enter; Space presses the "all lessons" button (not Start)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.classList.contains('learn-item')")
    page.focus(".learn-item[data-preset='vanishing-gradients']")
    old = session_id(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#learn-detail[data-lesson='vanishing-gradients']:not([hidden])")
    page.wait_for_function("(old) => window.__bl.store.session.id !== old", arg=old, timeout=15_000)
    page.focus("#learn-back")
    page.keyboard.press("Space")
    page.wait_for_selector("#learn-list:not([hidden])")
    assert page.get_attribute("#btn-start", "data-state") == "paused"

    # the chart tabs follow the same pattern
    page.focus("#charttab-ratio")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#charttab-acc", "aria-selected") == "true"
    assert page.is_visible("#acc-chart") and not page.is_visible("#ratio-chart")
    page.keyboard.press("Home")

    # the explainer: Enter opens it, its buttons step it, Escape closes it and focus comes back
    page.focus("#explain-btn")
    page.keyboard.press("Enter")
    page.wait_for_selector("#explainer[data-state='ready']", timeout=10_000)
    frame = int(page.get_attribute("#explainer", "data-frame") or 0)
    page.focus("#ex-next")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(f) => Number(document.querySelector('#explainer').dataset.frame) === f + 1", arg=frame
    )
    page.keyboard.press("Space")
    page.wait_for_function(
        "(f) => Number(document.querySelector('#explainer').dataset.frame) === f + 2", arg=frame
    )
    page.focus("[data-phase-chip='update']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#explainer[data-phase='update']")
    page.keyboard.press("Escape")
    page.wait_for_selector("#explainer", state="hidden")
    assert active(page) == "#explain-btn"
    assert page.console_errors == []


def test_compare_dialog_takes_keeps_and_returns_focus(sized: Any, base: str) -> None:
    page = sized
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.click("#tabbtn-learn")
    page.focus(".learn-item[data-preset='learning-rate']")
    page.keyboard.press("Enter")
    wait_compare_drawn(page, 3)
    inside = "() => document.querySelector('#compare').contains(document.activeElement)"
    assert page.evaluate(inside), active(page)
    seen = []
    for _ in range(8):  # Tab cycles inside the dialog
        page.keyboard.press("Tab")
        assert page.evaluate(inside), active(page)
        seen.append(active(page))
    assert {"#compare-toggle", "#compare-close", "#compare-log"} <= set(seen)
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(inside)
    # Start / pause all from the keyboard
    page.focus("#compare-toggle")
    state = page.get_attribute("#compare-toggle", "data-state")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(s) => document.querySelector('#compare-toggle').dataset.state !== s",
        arg=state,
        timeout=10_000,
    )
    # Escape closes it, even from the checkbox, and focus goes back to the lesson's compare button
    page.focus("#compare-log")
    page.keyboard.press("Escape")
    page.wait_for_selector("#compare", state="hidden")
    assert active(page) == "#learn-compare"
    page.keyboard.press("Enter")  # and opens it again
    page.wait_for_selector("#compare:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#compare", state="hidden")
    assert page.console_errors == []


def test_runs_can_be_renamed_and_deleted_from_the_keyboard(sized: Any, base: str) -> None:
    page = sized
    runs = []
    for name in ("keep me", "rename me", "delete me"):
        r = httpx.post(
            f"{base}/api/sessions", json={"config": XOR_2_8_8_1, "name": name}, timeout=10
        )
        runs.append(r.json()["id"])
    keep, ren, gone = runs
    open_page(page, f"{base}/#run={keep}")
    page.focus("#tabbtn-build")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector(f"#run-list .run-item[data-run='{gone}']")
    row = f"#run-list .run-item[data-run='{ren}']"

    # rename: Enter on Rename focuses the field; blank is refused in the page and never sent
    page.focus(f"{row} .run-rename")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.classList.contains('run-name-input')")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.type("   ")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{row} .field-error:not([hidden])")
    assert "blank" in (page.text_content(f"{row} .field-error") or "")
    assert page.get_attribute(f"{row} .run-name-input", "aria-invalid") == "true"
    assert httpx.get(f"{base}/api/sessions/{ren}", timeout=10).json()["name"] == "rename me"
    # Escape cancels
    page.keyboard.press("Escape")
    assert page.is_visible(f"{row} .run-open") and active(page).find("run-rename") >= 0
    assert page.text_content(f"{row} .run-name") == "rename me"
    # Enter saves, trimmed; the row shows the new name and focus is back on Rename
    page.keyboard.press("Enter")
    page.keyboard.press("Control+a")
    page.keyboard.type("  renamed from the keyboard  ")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(sel) => document.querySelector(sel).textContent === 'renamed from the keyboard'",
        arg=f"{row} .run-name",
    )
    assert (
        httpx.get(f"{base}/api/sessions/{ren}", timeout=10).json()["name"]
        == "renamed from the keyboard"
    )
    assert "run-rename" in active(page)

    # delete: a confirmation in the page; Escape keeps the run, Delete removes it
    page.focus(f"#run-list .run-item[data-run='{gone}'] .run-delete")
    page.keyboard.press("Enter")
    confirm = f"#run-list .run-item[data-run='{gone}'] .run-confirm"
    page.wait_for_selector(f"{confirm}:not([hidden])")
    assert "delete me" in (page.text_content(confirm) or "")
    assert "run-keep" in active(page)
    page.keyboard.press("Escape")
    assert page.is_hidden(confirm) and "run-delete" in active(page)
    assert httpx.get(f"{base}/api/sessions/{gone}", timeout=10).status_code == 200
    page.keyboard.press("Enter")
    page.keyboard.press("Shift+Tab")
    assert "run-confirm-delete" in active(page)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#run-list .run-item[data-run='{gone}']", state="detached")
    assert httpx.get(f"{base}/api/sessions/{gone}", timeout=10).status_code == 404
    assert "run-open" in active(page)  # focus moved to a neighbouring run, not lost
    assert "Deleted" in (page.text_content("#runs-note") or "")
    assert page.console_errors == []


def test_deleting_the_open_run_builds_a_fresh_one(sized: Any, base: str) -> None:
    page = sized
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.click("#btn-step10")
    wait_step_at_least(page, 10)
    old = session_id(page)
    page.click("#tabbtn-runs")
    row = f"#run-list .run-item[data-run='{old}']"
    page.click(f"{row} .run-delete")
    page.click(f"{row} .run-confirm-delete")
    page.wait_for_function(
        "(old) => window.__bl.store.session && window.__bl.store.session.id !== old",
        arg=old,
        timeout=15_000,
    )
    new = session_id(page)
    assert httpx.get(f"{base}/api/sessions/{old}", timeout=10).status_code == 404
    fresh = httpx.get(f"{base}/api/sessions/{new}", timeout=10).json()
    assert fresh["step"] == 0 and fresh["config"]["layers"] == page.evaluate(
        "() => window.__bl.store.config.layers"
    )
    page.wait_for_selector(f"#run-list .run-item[data-run='{new}'].current")
    page.wait_for_function("() => document.querySelector('#st-conn').dataset.connected === 'yes'")
    assert page.get_attribute("#run-status", "data-status") == "idle"
    # the page still trains
    page.click("#btn-step1")
    page.wait_for_function("() => Number(document.querySelector('#st-step').dataset.value) === 1")
    assert page.console_errors == []


def weights_of(base: str, sid: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/api/sessions/{sid}/weights", timeout=10).json())


def test_weight_editor_from_the_keyboard_takes_and_returns_focus(sized: Any, base: str) -> None:
    page = sized
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.wait_for_function("() => window.__bl.store.snapshot && window.__bl.store.snapshot.weights")
    page.focus("#explain-btn")
    page.keyboard.press("Tab")
    assert active(page) == "#network"
    page.keyboard.press("ArrowDown")  # the first weight of the first layer
    page.keyboard.press("ArrowDown")  # the next one: w[0 -> 1]
    page.wait_for_selector("#tooltip[data-kind='edge']:not([hidden])")
    assert (
        page.get_attribute("#tooltip", "data-layer"),
        page.get_attribute("#tooltip", "data-i"),
        page.get_attribute("#tooltip", "data-j"),
    ) == ("0", "0", "1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#weight-editor:not([hidden])")
    assert active(page) == "#we-value"
    page.keyboard.press("Escape")
    page.wait_for_selector("#weight-editor", state="hidden")
    assert active(page) == "#network"
    # a resize rebuilds the drawing; the keyboard keeps its place
    edges = page.get_attribute("#network", "data-edge-count")
    size = page.viewport_size
    page.evaluate(
        "() => { window.__builds = 0; const b = window.__bl.view.build.bind(window.__bl.view);"
        " window.__bl.view.build = () => { window.__builds += 1; b(); }; }"
    )
    page.set_viewport_size({"width": size["width"], "height": size["height"] - 60})
    page.wait_for_function("() => window.__builds > 0")
    assert page.get_attribute("#network", "data-edge-count") == edges
    page.keyboard.press("ArrowDown")
    page.wait_for_selector("#tooltip[data-kind='edge'][data-j='2']:not([hidden])")
    page.keyboard.press("ArrowUp")
    page.wait_for_selector("#tooltip[data-kind='edge'][data-j='1']:not([hidden])")
    # again, and set it
    page.keyboard.press("Enter")
    page.wait_for_selector("#weight-editor:not([hidden])")
    page.keyboard.press("Control+a")
    page.keyboard.type("0.625")
    page.keyboard.press("Enter")
    page.wait_for_selector("#weight-editor", state="hidden", timeout=10_000)
    assert weights_of(base, session_id(page))["0.W"][0][1] == pytest.approx(0.625)
    assert active(page) == "#network"
    # right arrow moves to the next layer; the bias marks come after a layer's weights
    page.keyboard.press("ArrowRight")
    page.keyboard.press("End")
    page.wait_for_selector("#tooltip[data-kind='bias']:not([hidden])")
    assert page.get_attribute("#tooltip", "data-layer") == "1"
    assert page.console_errors == []


def test_a_blank_weight_edit_is_refused(sized: Any, base: str) -> None:
    page = sized
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.wait_for_function("() => window.__bl.store.snapshot && window.__bl.store.snapshot.weights")
    sid = session_id(page)
    before = weights_of(base, sid)["2.W"][4][0]
    assert before != 0
    point = page.evaluate(
        "() => { const v = window.__bl.view; const p = v.edgePoint('2', 4, 0, 0.5);"
        " const r = v.root.getBoundingClientRect(); return {x: r.left + p.x, y: r.top + p.y}; }"
    )
    page.mouse.click(point["x"], point["y"])
    page.wait_for_selector("#weight-editor:not([hidden])")
    page.fill("#we-value", "")
    page.click("#we-apply")
    page.wait_for_selector("#we-error:not([hidden])")
    assert "blank" in (page.text_content("#we-error") or "")
    assert page.is_visible("#weight-editor")
    assert page.get_attribute("#we-value", "aria-invalid") == "true"
    page.press("#we-value", "Enter")  # Enter is refused the same way
    page.wait_for_timeout(300)
    assert weights_of(base, sid)["2.W"][4][0] == pytest.approx(before)
    page.fill("#we-value", "-0.5")
    page.press("#we-value", "Enter")
    page.wait_for_selector("#weight-editor", state="hidden", timeout=10_000)
    assert weights_of(base, sid)["2.W"][4][0] == pytest.approx(-0.5)
    assert page.console_errors == []
