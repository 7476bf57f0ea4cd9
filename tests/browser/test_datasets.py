"""The two multi-class datasets on the real page: the three-arm spiral's three-colour decision
boundary and per-class maps (pixels read back from the canvases where the server's /boundary says
each class wins), and the handwritten digits drawn one thumbnail per sample with digit labels."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.browser.helpers import (
    open_page,
    pause_if_running,
    session_id,
    url_for_config,
    wait_step_at_least,
)
from tests.support import LiveServer

pytestmark = pytest.mark.browser

# The page's colours for three classes (static/js/util.js MULTI_CLASS_COLORS) and its neutral grey.
CLASS_RGB = np.array([[245, 147, 34], [0, 158, 115], [51, 34, 136]], dtype=np.float64)
MID = np.array([232, 234, 235], dtype=np.float64)
PAD, TOP = 22, 6  # the data view's plane starts PAD px from the left and TOP px from the top
GRID_VALUE_BUDGET = 32_000  # server.snapshots.SNAPSHOT_GRID_VALUES

# RGB of a canvas at device-pixel points [[x, y], ...] (the canvas is args[0], points args[1]).
READ_PIXELS = """([canvas, points]) => {
  const ctx = canvas.getContext("2d");
  return points.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
}"""
# Every pixel of a small canvas as [height][width][rgb].
READ_CANVAS = """(canvas) => {
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const rows = [];
  for (let y = 0; y < canvas.height; y++) {
    const row = [];
    for (let x = 0; x < canvas.width; x++) {
      const o = (y * canvas.width + x) * 4;
      row.push([d[o], d[o + 1], d[o + 2]]);
    }
    rows.push(row);
  }
  return rows;
}"""


def preset_config(base: str, preset_id: str) -> dict[str, Any]:
    presets = httpx.get(f"{base}/api/presets", timeout=10).json()["presets"]
    return next(p for p in presets if p["id"] == preset_id)["config"]


def tint_fit(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For pixels (n, 3): the class whose grey-to-colour line passes nearest, and how far along it
    the pixel sits (0 grey, 1 the full class colour)."""
    rgb = np.asarray(rgb, dtype=np.float64)[:, :3]
    span = CLASS_RGB - MID  # (3, 3)
    along = ((rgb - MID) @ span.T) / (span * span).sum(axis=1)  # (n, classes)
    along = np.clip(along, 0.0, 1.0)
    nearest = MID + along[:, :, None] * span[None]  # (n, classes, 3)
    dist = np.linalg.norm(nearest - rgb[:, None, :], axis=2)  # (n, classes)
    best = dist.argmin(axis=1)
    return best, along[np.arange(len(rgb)), best]


def interior_cells(classes: np.ndarray, k: int, at_least: float) -> list[tuple[int, int]]:
    """Cells (row, col) where class k wins with probability >= at_least and so do all 8 neighbours
    (so a half-cell shift of the drawing cannot land on another class)."""
    winner = classes.argmax(axis=0)
    res = classes.shape[1]
    cells = []
    for r in range(1, res - 1):
        for c in range(1, res - 1):
            if classes[k, r, c] >= at_least and (winner[r - 1 : r + 2, c - 1 : c + 2] == k).all():
                cells.append((r, c))
    return cells


@pytest.fixture
def spiral3(shared_server: LiveServer, page: Any) -> Iterator[tuple[Any, np.ndarray, dict]]:
    """The spiral3 preset trained on the page at full speed, then paused with its last snapshot
    drawn; yields the page, /boundary's class maps at the snapshot's resolution and the grid."""
    base = shared_server.url
    open_page(page, url_for_config(base, preset_config(base, "spiral3-softmax")))
    try:
        page.click("#btn-start")
        wait_step_at_least(page, 2500, timeout=60_000)
        pause_if_running(page, base)
        sid = session_id(page)
        page.wait_for_function(
            "() => window.__bl.store.session.status !== 'running'", timeout=10_000
        )
        step = httpx.get(f"{base}/api/sessions/{sid}", timeout=10).json()["step"]
        page.wait_for_function(
            "(n) => window.__bl.store.snapshot && window.__bl.store.snapshot.step === n",
            arg=step,
            timeout=10_000,
        )
        time.sleep(0.3)  # a frame or two to draw it
        grid = page.evaluate("() => window.__bl.store.snapshot.grid")
        boundary = httpx.get(
            f"{base}/api/sessions/{sid}/boundary",
            params={"resolution": grid["resolution"]},
            timeout=30,
        ).json()
        classes = np.array(boundary["classes"])  # (3, res, res)
        # The page drew the same network the server describes now.
        np.testing.assert_allclose(np.array(grid["classes"]), classes, atol=2e-4)
        yield page, classes, grid
    finally:
        pause_if_running(page, base)


class DataCanvas:
    """The data view's canvas: plane cells and points to device pixels, pixels read in one call."""

    def __init__(self, page: Any, res: int) -> None:
        self.page = page
        self.handle = page.query_selector("#data-canvas")
        box = page.evaluate("(c) => [c.getBoundingClientRect().width, c.width]", self.handle)
        self.scale = box[1] / box[0]  # device pixels per CSS pixel
        self.inner = box[0] - PAD - 6  # side of the plane, CSS pixels
        self.res = res

    def cell(self, r: int, c: int) -> tuple[float, float]:
        """CSS position of grid cell (row r, column c): row 0 is drawn at the bottom."""
        step = self.inner / self.res
        return PAD + (c + 0.5) * step, TOP + (self.res - 1 - r + 0.5) * step

    def read(self, points: list[tuple[float, float]]) -> np.ndarray:
        device = [[int(x * self.scale), int(y * self.scale)] for x, y in points]
        return np.array(self.page.evaluate(READ_PIXELS, [self.handle, device]), dtype=np.float64)


def test_spiral3_data_view_colours_the_plane_by_class_and_sureness(
    shared_server: LiveServer, spiral3: Any
) -> None:
    page, classes, grid = spiral3
    assert page.get_attribute("#data-view", "data-output") == "classes"
    res = classes.shape[1]
    view = DataCanvas(page, res)

    # Where the server says class k wins (surely, and around), the plane is in class k's colour.
    for k in range(3):
        cells = interior_cells(classes, k, 0.9)
        assert len(cells) >= 10, f"class {k} wins too little of the plane to check"
        best, along = tint_fit(view.read([view.cell(r, c) for r, c in cells]))
        share = float(np.mean(best == k))
        # Data points drawn over the plane may cover a few cells; the plane itself is class k's.
        assert share >= 0.85, f"class {k}: only {share:.0%} of its cells are in its colour"
        assert np.median(along[best == k]) >= 0.45  # sure there: a strong tint, not the grey

    # Lightness says how sure the network is: the cells nearest a tie are paler than sure ones.
    top = classes.max(axis=0)
    unsure = [(r, c) for r in range(res) for c in range(res) if top[r, c] < 0.75]
    sure = [(r, c) for r in range(res) for c in range(res) if top[r, c] > 0.98]
    assert len(unsure) >= 5 and len(sure) >= 20
    _, along_unsure = tint_fit(view.read([view.cell(r, c) for r, c in unsure]))
    _, along_sure = tint_fit(view.read([view.cell(r, c) for r, c in sure]))
    assert np.median(along_sure) > np.median(along_unsure) + 0.2

    # Every data point is a dot of its class's colour (where no later dot covers its centre).
    data = httpx.get(f"{shared_server.url}/api/sessions/{session_id(page)}/data", timeout=10).json()
    (x0, x1), (y0, y1) = data["domain"]
    xy = np.array(data["train"]["x"] + data["test"]["x"])  # (n, 2) in drawing order
    labels = np.array(data["train"]["y"] + data["test"]["y"])
    px = PAD + (xy[:, 0] - x0) / (x1 - x0) * view.inner
    py = TOP + view.inner - (xy[:, 1] - y0) / (y1 - y0) * view.inner
    clear = [
        i
        for i in range(len(xy) - 1)
        if np.hypot(px[i + 1 :] - px[i], py[i + 1 :] - py[i]).min() >= 6
    ]
    assert len(clear) >= 40
    got = view.read([(px[i], py[i]) for i in clear])
    np.testing.assert_allclose(got, CLASS_RGB[labels[clear]], atol=2)

    # The legend names the three arms beside a swatch of their colour.
    legend = page.eval_on_selector_all(
        "#data-legend .class-item",
        "items => items.map(i => [i.querySelector('.class-name').textContent,"
        " getComputedStyle(i.querySelector('.swatch')).backgroundColor])",
    )
    assert [name for name, _ in legend] == ["arm 0", "arm 1", "arm 2"]
    assert [swatch for _, swatch in legend] == [
        f"rgb({r}, {g}, {b})" for r, g, b in CLASS_RGB.astype(int)
    ]

    # The streamed snapshot's grids (three class maps counted) stay within their budget.
    values = res * res * (len(grid["classes"]) + 1 + len(grid["inputs"]))
    values += sum(np.size(m) for m in grid["neurons"].values())
    assert values <= GRID_VALUE_BUDGET
    assert res >= 24  # the 38 maps of a 2-16-16-3 net still get a fine grid
    assert page.console_errors == []


def test_spiral3_per_class_maps_show_each_class_probability(spiral3: Any) -> None:
    page, classes, grid = spiral3
    res = classes.shape[1]
    page_classes = np.array(grid["classes"])
    # The data view's legend: one small res x res map per class, grey at 0, its colour at 1.
    maps = page.query_selector_all("#data-legend canvas.class-map")
    assert len(maps) == 3
    for k, canvas in enumerate(maps):
        pixels = np.array(page.evaluate(READ_CANVAS, canvas), dtype=np.float64)
        assert pixels.shape == (res, res, 3)
        drawn = pixels[::-1]  # row 0 of the grid is the bottom row of the canvas
        p = np.clip(page_classes[k], 0.0, 1.0)[:, :, None]
        np.testing.assert_allclose(drawn, MID + p * (CLASS_RGB[k] - MID), atol=1.01)

    # The network view's output units: each its class's probability map, in the class colour.
    out = page.evaluate(
        """() => { const v = window.__bl.view; const c = v.cols[v.cols.length - 1];
        return {s: c.s, nodes: c.nodes.map(n => [n.x, n.y, n.unit]),
                scale: v.mapBuffer.width / v.width}; }"""
    )
    assert [unit for _, _, unit in out["nodes"]] == [0, 1, 2]
    s, scale = out["s"], out["scale"]
    buffer = page.evaluate_handle("() => window.__bl.view.mapBuffer")  # the heatmap layer

    def read(left: float, top: float, cells: list[tuple[int, int]]) -> np.ndarray:
        points = [
            [
                int((left + (c + 0.5) * s / res) * scale),
                int((top + (res - 0.5 - r) * s / res) * scale),
            ]
            for r, c in cells
        ]
        return np.array(page.evaluate(READ_PIXELS, [buffer, points]), dtype=np.float64)

    for x, y, k in out["nodes"]:
        left, top = x - s / 2, y - s / 2
        likely = interior_cells(classes, k, 0.97)[:40]
        assert len(likely) >= 10
        best, along = tint_fit(read(left, top, likely))
        assert (best == k).all() and (along > 0.8).all(), f"unit {k} where its class is sure"
        unlikely = [
            (r, c)
            for r in range(1, res - 1)
            for c in range(1, res - 1)
            if classes[k, r - 1 : r + 2, c - 1 : c + 2].max() < 0.02
        ][:40]
        assert len(unlikely) >= 10
        grey = read(left, top, unlikely)
        assert np.abs(grey - MID).max() < 12, f"unit {k} is not grey where its class is unlikely"
    assert page.console_errors == []


def test_digits_gallery_draws_every_sample_with_its_digit(
    shared_server: LiveServer, page: Any
) -> None:
    base = shared_server.url
    open_page(page, url_for_config(base, preset_config(base, "digits-dense")))
    try:
        sid = session_id(page)
        data = httpx.get(f"{base}/api/sessions/{sid}/data", timeout=10).json()
        assert data["input_kind"] == "image"
        assert data["class_names"] == [str(d) for d in range(10)]
        test_x, test_y = data["test"]["x"], data["test"]["y"]
        page.wait_for_function(
            "() => document.querySelectorAll('#data-gallery .tile').length === 32"
        )
        assert page.is_hidden("#data-canvas") and page.is_hidden("#data-legend")
        assert page.text_content("#features") == "pixels (8×8 image)"
        tiles = page.query_selector_all("#data-gallery .tile")
        labels = [t.text_content() for t in tiles]
        # test samples first; each tile names its true digit, after the predicted one if wrong
        assert [label.split(" ≠ ")[-1] for label in labels] == [str(y) for y in test_y[:32]]
        for k, tile in enumerate(tiles):
            canvas = tile.query_selector("canvas")
            pixels = np.array(page.evaluate(READ_CANVAS, canvas), dtype=np.float64)
            assert pixels.shape == (8, 8, 3)
            image = np.array(test_x[k][0])  # (8, 8) in [0, 1]
            lo, hi = image.min(), image.max()
            expected = 250 - (image - lo) / (hi - lo) * 220  # the page's grey ramp
            np.testing.assert_allclose(pixels[:, :, 0], expected, atol=1.01, err_msg=f"tile {k}")
            assert (pixels[:, :, 0] < 120).sum() >= 4  # ink, not a blank tile

        # Once it has learned, each tile shows the predicted digit (the server's argmax).
        page.click("#btn-start")
        wait_step_at_least(page, 400, timeout=60_000)
        pause_if_running(page, base)
        page.wait_for_function("() => window.__bl.store.session.status !== 'running'")
        outputs = httpx.post(
            f"{base}/api/sessions/{sid}/predict", json={"inputs": test_x[:32]}, timeout=30
        ).json()["outputs"]
        predicted = [int(np.argmax(o)) for o in outputs]
        want = [
            str(p) if p == y else f"{p} ≠ {y}" for p, y in zip(predicted, test_y[:32], strict=True)
        ]
        page.wait_for_function(
            "(want) => [...document.querySelectorAll('#data-gallery .tile')]"
            ".map(t => t.textContent).join('|') === want.join('|')",
            arg=want,
            timeout=15_000,
        )
        right = sum(p == y for p, y in zip(predicted, test_y[:32], strict=True))
        assert right >= 26  # about 9 in 10 after 400 steps
        states = page.eval_on_selector_all(
            "#data-gallery .tile", "tiles => tiles.map(t => t.dataset.state)"
        )
        assert states.count("right") == right and states.count("wrong") == 32 - right
        assert page.text_content("#data-caption") == f"{right} of 32 shown samples right"
        assert page.console_errors == []
    finally:
        pause_if_running(page, base)
