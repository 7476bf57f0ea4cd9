"""An external session (a PyTorch script watched through /ws/ingest) in the page: the test plays
the script, frame by frame in the server's ingest schema, and reads the page's own DOM: the
topology drawing, the gradient bars following the frames' grad_norm, the backward pulse's glow,
the charts, the engine-only views saying so, and the page's controls reaching the script."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.browser.helpers import READY, XOR_2_8_8_1
from tests.browser.test_a11y import scan
from tests.support import LiveServer

LAYERS: list[dict[str, Any]] = [
    {"name": "features.0", "type": "conv2d", "module": "Conv2d", "parameters": 80,
     "filters": 8, "in_channels": 1, "kernel_size": [3, 3]},
    {"name": "features.1", "type": "batchnorm", "module": "BatchNorm2d", "parameters": 16,
     "features": 8},
    {"name": "features.2", "type": "generic", "module": "ReLU", "parameters": 0},
    {"name": "flatten", "type": "generic", "module": "Flatten", "parameters": 0},
    {"name": "fc1", "type": "dense", "module": "Linear", "parameters": 12_816,
     "units": 64, "in_features": 200},
    {"name": "fc2", "type": "dense", "module": "Linear", "parameters": 650,
     "units": 10, "in_features": 64},
]  # fmt: skip
TOPOLOGY: dict[str, Any] = {
    "type": "topology",
    "version": 1,
    "name": "script cnn",
    "framework": "pytorch",
    "model": "SmallCNN",
    "parameters": 13_562,
    "layers": LAYERS,
}
WITH_PARAMS = [layer["name"] for layer in LAYERS if layer["parameters"] > 0]
# engine-only routes the page must never ask of an external run (each would answer 409)
ENGINE_ONLY = ("/snapshot", "/data", "/start", "/stop", "/step", "/reset", "/trace", "/predict",
               "/weights", "/boundary", "/config")  # fmt: skip


def grad_norms(step: int) -> dict[str, float]:
    """Distinct per-layer norms that change from step to step (and span decades)."""
    return {name: 10.0 ** (-k) * (1 + step / 10) for k, name in enumerate(WITH_PARAMS)}


def metrics_frame(step: int, norms: dict[str, float]) -> dict[str, Any]:
    types = {layer["name"]: layer["type"] for layer in LAYERS}
    return {
        "type": "metrics",
        "step": step,
        "loss": 2.0 / step,
        "learning_rate": 0.05,
        "layers": [
            {"name": name, "type": types[name], "grad_norm": value, "grad_mean_abs": value / 10,
             "grad_max_abs": value, "weight_norm": 3.0, "update_ratio": 1e-3 * step}
            for name, value in norms.items()
        ],
    }  # fmt: skip


def snapshot_frame(step: int) -> dict[str, Any]:
    hist = {"edges": [-1.0, 0.0, 1.0], "counts": [3, step]}
    return {
        "type": "snapshot",
        "step": step,
        "histograms": {name: {"grad": hist, "weight": hist} for name in WITH_PARAMS},
    }


def glow_of(v: float) -> float:
    """util.js glowOf: log position of |v| between 1e-7 and 1, clipped to [0, 1]."""
    return min(1.0, max(0.0, (math.log10(v) + 7) / 7))


class Script:
    """The test's stand-in for a watched training script: one ingest connection."""

    def __init__(self, ws: ClientConnection, session_id: str) -> None:
        self.ws = ws
        self.id = session_id

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send(orjson.dumps(frame).decode())

    def control(self) -> dict[str, Any]:
        """The next control frame the server forwards from the page."""
        while True:
            frame = orjson.loads(self.ws.recv(timeout=10))
            if frame["type"] == "control":
                return frame


@contextlib.contextmanager
def script(live: LiveServer) -> Iterator[Script]:
    with connect(live.ws_url + "/ws/ingest", additional_headers=live.headers(), proxy=None) as ws:
        ws.send(orjson.dumps(TOPOLOGY).decode())
        answer = orjson.loads(ws.recv(timeout=10))
        assert answer["type"] == "session", answer
        yield Script(ws, answer["session"]["id"])


def settle(live: LiveServer, session_id: str, step: int) -> None:
    """Wait until the server recorded `step` (so a page opened now gets it in its hello)."""
    for _ in range(500):
        got = httpx.get(f"{live.url}/api/sessions/{session_id}", headers=live.headers(), timeout=10)
        if got.json()["step"] == step:
            return
        time.sleep(0.02)
    raise AssertionError(f"step {step} never recorded")


def open_run(page: Any, live: LiveServer, session_id: str, layers: int = len(LAYERS)) -> list[str]:
    """Open the page on the run's link; returns the list the page's requests are logged into."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f"{live.url}/#run={session_id}")
    page.wait_for_selector(READY, timeout=20_000)
    page.wait_for_function("() => document.body.dataset.kind === 'external'", timeout=10_000)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#ext-network .ext-box').length === n",
        arg=layers,
        timeout=10_000,
    )
    return requests


def send_shown(page: Any, run: Script, step: int) -> None:
    """Send one step's metrics and wait until the page shows it: the stream keeps only the
    newest metrics frame for a client (latest wins), so a burst would reach the page thinned."""
    run.send(metrics_frame(step, grad_norms(step)))
    page.wait_for_function(
        "(s) => window.__bl.store.history.step.at(-1) === s", arg=step, timeout=10_000
    )


def bar_values(page: Any) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#ext-network .gradbar')]
             .map((b) => [b.dataset.layer, b.dataset.value]))"""
    )


def wait_bars(page: Any, norms: dict[str, float]) -> None:
    page.wait_for_function(
        """(want) => Object.entries(want).every(([name, v]) => {
             const b = [...document.querySelectorAll('#ext-network .gradbar')]
               .find((x) => x.dataset.layer === name);
             return b && Number(b.dataset.value) === v;
           })""",
        arg=norms,
        timeout=10_000,
    )


def test_the_network_is_drawn_from_the_topology_and_follows_the_gradient_norms(
    shared_server: LiveServer, page: Any
) -> None:
    with script(shared_server) as run:
        requests = open_run(page, shared_server, run.id)
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('#ext-network .ext-box')].map((b) => ({
                 name: b.dataset.layer, type: b.dataset.type, module: b.dataset.module,
                 size: b.dataset.size, height: Number(b.getAttribute('height'))}))"""
        )
        assert [(b["name"], b["type"], b["module"]) for b in boxes] == [
            (layer["name"], layer["type"], layer["module"]) for layer in LAYERS
        ]
        sizes = [
            layer.get("units") or layer.get("filters") or layer.get("features") for layer in LAYERS
        ]
        assert [b["size"] for b in boxes] == [str(s) if s else "" for s in sizes]
        # heights grow with units / filters / features; generic blocks are the smallest
        sized = sorted((s, b["height"]) for s, b in zip(sizes, boxes, strict=True) if s)
        assert [h for _, h in sized] == sorted(h for _, h in sized)
        assert sized[0][1] < sized[-1][1]  # 8 filters draw smaller than 64 units
        generic = [b["height"] for s, b in zip(sizes, boxes, strict=True) if not s]
        assert max(generic) < min(h for _, h in sized)
        # a gradient bar for each module with parameters, none for the others
        assert sorted(bar_values(page)) == sorted(WITH_PARAMS)

        for step in (1, 2, 3):
            send_shown(page, run, step)
        wait_bars(page, grad_norms(3))
        assert bar_values(page) == {k: repr(v) for k, v in grad_norms(3).items()}
        heights = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('#ext-network .gradbar')]
                 .map((b) => [b.dataset.layer, Number(b.getAttribute('height'))]))"""
        )
        # the larger the norm, the taller its bar (log scale)
        by_norm = sorted(WITH_PARAMS, key=lambda n: grad_norms(3)[n])
        assert [heights[n] for n in by_norm] == sorted(heights[n] for n in by_norm)
        assert heights[by_norm[0]] < heights[by_norm[-1]]

        # the backward pulse: each box glows with the log of its own layer's norm
        page.wait_for_function(
            "() => Number(document.querySelector('#ext-network').dataset.pulses) >= 1"
        )
        send_shown(page, run, 4)
        wait_bars(page, grad_norms(4))
        page.wait_for_function(
            """(v) => Number(document.querySelector('#ext-glow-4').dataset.intensity).toFixed(3) === v""",
            arg=f"{glow_of(grad_norms(4)['fc1']):.3f}",
            timeout=10_000,
        )
        intensity = page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('#ext-network .ext-glow')]
                 .map((g) => [g.dataset.layer, Number(g.dataset.intensity)]))"""
        )
        for name in WITH_PARAMS:
            assert intensity[name] == pytest.approx(glow_of(grad_norms(4)[name]), abs=1e-4), name
        assert intensity["features.2"] == 0  # no parameters, no gradient to glow with

        # the charts that exist get the run's points; the histograms its snapshot
        run.send(snapshot_frame(4))
        page.wait_for_function("() => document.querySelector('#loss-chart').dataset.points === '4'")
        page.wait_for_function("() => document.querySelector('#grad-chart').dataset.points === '4'")
        page.wait_for_function(
            "() => document.querySelector('#ratio-chart').dataset.points === '4'"
        )
        assert page.evaluate("() => window.__bl.store.history.layers['fc1'].grad_norm") == [
            grad_norms(s)["fc1"] for s in (1, 2, 3, 4)
        ]
        page.click("[data-chart-tab='hist']")
        page.wait_for_function(
            "(n) => document.querySelectorAll('#hist-layer option').length === n",
            arg=len(WITH_PARAMS),
        )
        assert page.get_attribute("#hist-view", "data-layer") in WITH_PARAMS
        assert page.get_attribute("#st-step", "data-value") == "4"

        # where an engine-only view would be, a sentence says why it is not
        for note in ("#ext-not-here", "#ext-data-note"):
            assert page.is_visible(note)
            assert page.inner_text(note).startswith("Not available for a PyTorch run:")
        assert page.is_hidden("#network") and page.is_hidden("#data-view")
        for button in ("#btn-start", "#btn-step1", "#btn-step10", "#btn-reset", "#explain-btn"):
            assert page.is_disabled(button), button
            assert page.get_attribute(button, "title").startswith("Not available for a PyTorch run")
        page.evaluate("() => document.activeElement.blur()")  # Space on a button presses it
        page.keyboard.press("Space")  # the page's start key says so, and starts nothing
        page.wait_for_function(
            "() => document.querySelector('#st-event').textContent.includes('Not available')"
        )
        assert not [
            u for u in requests if run.id in u and u.split(run.id)[-1].startswith(ENGINE_ONLY)
        ]
        report: list[str] = []
        scan(page, "external run", report)
        assert report == [], "axe found critical or serious violations:\n" + "\n".join(report)
        assert page.console_errors == []


def test_the_page_controls_reach_the_script(shared_server: LiveServer, page: Any) -> None:
    with script(shared_server) as run:
        run.send(metrics_frame(1, grad_norms(1)))
        settle(shared_server, run.id, 1)
        open_run(page, shared_server, run.id)
        page.wait_for_function("() => !document.querySelector('#ext-pause').disabled")
        page.click("#ext-pause")
        assert run.control() == {"type": "control", "action": "pause"}
        # the script applied it: the button offers to resume
        run.send({"type": "event", "event": {"type": "control", "action": "pause", "step": 1,
                                             "message": "paused at step 1"}})  # fmt: skip
        page.wait_for_function(
            "() => document.querySelector('#ext-pause').dataset.state === 'paused'"
        )
        assert "paused at step 1" in page.inner_text("#ext-note")
        page.click("#ext-pause")
        assert run.control() == {"type": "control", "action": "resume"}

        # a rate the server would refuse is named and not sent; the next valid one is
        page.fill("#ext-lr", "0")
        page.click("#ext-lr-set")
        assert page.inner_text("#ext-lr-error").startswith("learning rate: must be a number > 0")
        page.fill("#ext-lr", "0.0025")
        page.click("#ext-lr-set")
        assert run.control() == {
            "type": "control",
            "action": "learning_rate",
            "learning_rate": 0.0025,
        }
        assert page.is_hidden("#ext-lr-error")
        page.click("#ext-stop")
        assert run.control() == {"type": "control", "action": "stop"}
        assert page.console_errors == []
    # the script went away without finishing: the controls say they cannot reach it
    page.wait_for_function(
        "() => window.__bl.store.session.status === 'disconnected'", timeout=10_000
    )
    page.wait_for_function("() => document.querySelector('#ext-pause').disabled")
    assert page.inner_text("#ext-why").startswith("The script is not connected (disconnected)")
    assert page.console_errors == []


def test_the_note_shows_the_newest_news_whatever_order_it_comes_in(
    shared_server: LiveServer, page: Any
) -> None:
    """On a busy machine the script's report that it applied a control can reach the page
    before the server's answer to the page's POST; and a long run brings more events than the
    page keeps (50). The note under the controls shows the newest news either way."""
    with script(shared_server) as run:
        run.send(metrics_frame(1, grad_norms(1)))
        settle(shared_server, run.id, 1)
        open_run(page, shared_server, run.id)
        held: list[Any] = []  # the page's POST /control, kept from the server for now
        page.route("**/control", lambda route: held.append(route))
        page.wait_for_function("() => !document.querySelector('#ext-pause').disabled")
        page.click("#ext-pause")
        for _ in range(1000):
            if held:
                break
            page.wait_for_timeout(10)  # lets Playwright hand the request over
        assert len(held) == 1
        run.send({"type": "event", "event": {"type": "control", "action": "pause", "step": 1,
                                             "message": "paused at step 1"}})  # fmt: skip
        page.wait_for_function(
            "() => document.querySelector('#ext-note').textContent === 'step 1: paused at step 1'"
        )
        held[0].continue_()  # now the server gets the POST and the page its answer
        assert run.control() == {"type": "control", "action": "pause"}
        page.wait_for_function("() => document.querySelector('#ext-controls').dataset.answers")
        assert page.inner_text("#ext-note") == "step 1: paused at step 1"
        page.unroute("**/control")

        # the page keeps the newest 50 events: once full, each new one still shows
        for i in range(2, 57):
            run.send({"type": "event", "event": {"type": "control", "action": "learning_rate",
                                                 "step": i, "message": f"rate {i}"}})  # fmt: skip
        page.wait_for_function(
            "() => document.querySelector('#ext-note').textContent === 'step 56: rate 56'"
        )
        assert page.evaluate("() => window.__bl.store.events.length") == 50
        run.send({"type": "event", "event": {"type": "control", "action": "resume", "step": 57,
                                             "message": "resumed at step 57"}})  # fmt: skip
        page.wait_for_function(
            "() => document.querySelector('#ext-note').textContent === 'step 57: resumed at step 57'"
        )
        assert page.get_attribute("#ext-pause", "data-state") == "running"
        assert page.console_errors == []


def test_an_external_run_compares_with_an_engine_run(shared_server: LiveServer, page: Any) -> None:
    engine = httpx.post(
        f"{shared_server.url}/api/sessions",
        json={"config": XOR_2_8_8_1, "name": "engine run"},
        headers=shared_server.headers(),
        timeout=30,
    ).json()
    with script(shared_server) as run:
        for step in (1, 2):
            run.send(metrics_frame(step, grad_norms(step)))
        settle(shared_server, run.id, 2)
        open_run(page, shared_server, run.id)
        page.click("#tabbtn-runs")
        page.click("#refresh-runs")
        for sid in (run.id, engine["id"]):
            page.check(f"input.run-tick[data-run='{sid}']")
        assert "SmallCNN" in page.inner_text(f".run-item[data-run='{run.id}'] .run-meta")
        page.click("#compare-runs")
        page.wait_for_function("() => document.querySelector('#compare').dataset.count === '2'")
        col = f".compare-col[data-run='{run.id}']"
        page.wait_for_function(
            "(sel) => document.querySelector(sel + ' [data-compare^=\"grad-\"]').dataset.points === '2'",
            arg=col,
        )
        run.send(metrics_frame(3, grad_norms(3)))
        page.wait_for_function(
            "(sel) => document.querySelector(sel + ' .cmp-step').dataset.value === '3'", arg=col
        )
        assert "trained by its own script" in page.inner_text(col)
        assert page.inner_text("#compare-note").startswith("The PyTorch run is followed live")
        assert not page.is_disabled("#compare-toggle")  # the engine run can still train here
        page.click("#compare-close")
        # opening a run trained here brings the engine's views and buttons back
        page.click(f".run-item[data-run='{engine['id']}'] .run-open")
        page.wait_for_function("() => document.body.dataset.kind === 'engine'")
        page.wait_for_function("() => document.querySelectorAll('#network .node').length > 0")
        assert page.is_hidden("#ext-network") and page.is_hidden("#ext-not-here")
        assert page.is_visible("#data-view") and not page.is_disabled("#btn-start")
        assert "Not available" not in (page.get_attribute("#btn-start", "title") or "")
        assert page.console_errors == []


def test_a_watched_torch_model_in_the_page(shared_server: LiveServer, page: Any) -> None:
    """The real watcher (backprop_lens.torch.watch) on a tiny model: what the page draws is what
    the script's model is, its bars what the server recorded, and Stop reaches the script."""
    torch = pytest.importorskip("torch")
    from backprop_lens.torch import watch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)
    )  # fmt: skip
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 2), torch.randint(0, 3, (32,))

    def train_step() -> None:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        watcher.log(loss=loss)

    with watch(model, optimizer, url=shared_server.url, name="tiny torch", every=1) as watcher:
        for _ in range(3):
            train_step()
        for _ in range(500):  # the background thread connects and sends
            if watcher.session_id is not None:
                break
            time.sleep(0.02)
        sid = watcher.session_id
        assert sid is not None
        settle(shared_server, sid, 3)
        open_run(page, shared_server, sid, layers=3)
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('#ext-network .ext-box')]
                 .map((b) => [b.dataset.layer, b.dataset.type, b.dataset.size])"""
        )
        assert boxes == [["0", "dense", "16"], ["1", "generic", ""], ["2", "dense", "3"]]
        recorded = httpx.get(
            f"{shared_server.url}/api/sessions/{sid}/metrics", headers=shared_server.headers()
        ).json()["layers"]
        page.wait_for_function(
            "() => document.querySelectorAll('#ext-network .gradbar[data-value=\"\"]').length === 0"
        )
        assert {k: float(v) for k, v in bar_values(page).items()} == {
            name: recorded[name]["grad_norm"][-1] for name in ("0", "2")
        }
        page.click("#ext-stop")
        for _ in range(500):  # the script applies it at its next logged step
            train_step()
            if watcher.should_stop:
                break
            time.sleep(0.02)
        assert watcher.should_stop
    page.wait_for_function("() => window.__bl.store.session.status === 'finished'")
    # the store changes first; the controls follow in the next animation frame
    page.wait_for_function("() => document.querySelector('#ext-stop').disabled")
    assert page.is_disabled("#ext-stop")
    assert page.console_errors == []
