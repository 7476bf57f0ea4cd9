// Pointing at the network drawing: what is under the mouse (a node, a bias mark, an edge, a
// gradient bar), its highlight, and the keyboard cursor that walks the weights and biases (arrow
// keys, Enter acts like a click) with a sentence for screen readers.

import { tOfU } from "./network_layout.js";
import { fmt, setAttr } from "./util.js";

/** Hit test at local x, y -> {kind: "node"|"bias"|"edge"|"bar", ...} or null. */
export function hitTest(view, x, y) {
  for (const c of view.cols) {
    if (Math.abs(x - c.x) > c.w / 2 + 10) continue;
    if (c.bundle) {
      const b = c.bundleBox;
      if (y >= b.y && y <= b.y + b.h) return { kind: "node", col: c.index, unit: -1, layer: c.name };
      continue;
    }
    for (const node of c.nodes) {
      const x0 = node.x - c.w / 2;
      const y0 = node.y - c.s / 2;
      if (c.s >= 10 && (c.kind === "dense" || c.kind === "conv")) {
        const bs = Math.max(4, Math.min(7, c.s * 0.22));
        if (x >= x0 - bs - 3 && x <= x0 && y >= y0 + c.s - bs - 1 && y <= y0 + c.s + 1) {
          return { kind: "bias", col: c.index, unit: node.unit, layer: c.name };
        }
      }
      if (x >= x0 - 1 && x <= x0 + c.w + 1 && y >= y0 - 1 && y <= y0 + c.s + 1) {
        return { kind: "node", col: c.index, unit: node.unit, layer: c.name };
      }
    }
  }
  for (const b of view.bars || []) {
    const bx = Number(b.bar.getAttribute("x"));
    if (x >= bx - 2 && x <= bx + 14 && y >= b.top - 14 && y <= b.bottom) return { kind: "bar", layer: b.name };
  }
  for (const g of view.gaps) {
    if (x < g.x0 || x > g.x1 || g.mode === "conv") continue;
    const u = (x - g.x0) / (g.x1 - g.x0);
    const t = tOfU(u);
    const s = 3 * t * t - 2 * t * t * t;
    const ds = 6 * t - 6 * t * t;
    const du = 1.5 - 3 * t + 3 * t * t;
    let best = -1;
    let bestD = 6;
    for (let e = 0; e < g.count; e++) {
      const dy = g.y1[e] - g.y0[e];
      const ye = g.y0[e] + dy * s;
      const slope = (dy * ds) / ((g.x1 - g.x0) * du);
      const d = Math.abs(y - ye) / Math.sqrt(1 + slope * slope);
      if (d < bestD) {
        bestD = d;
        best = e;
      }
    }
    if (best >= 0) {
      const i = Math.floor(best / g.nj);
      const j = best % g.nj;
      return { kind: "edge", gap: g.index, layer: g.name, mode: g.mode, i: g.mode === "in" ? -1 : i, j: g.mode === "out" ? -1 : j, e: best, fromCol: g.from.index, toCol: g.to.index };
    }
  }
  return null;
}

export function drawHighlight(view, hit) {
  if (!view.highlight) return;
  const biasMark = hit && hit.kind === "bias" && view.nodeEls[hit.col] && view.nodeEls[hit.col][hit.unit] ? view.nodeEls[hit.col][hit.unit].bias : null;
  if (biasMark) {
    const x = Number(biasMark.getAttribute("x")) - 2;
    const y = Number(biasMark.getAttribute("y")) - 2;
    const w = Number(biasMark.getAttribute("width")) + 4;
    setAttr(view.highlight, "d", `M${x},${y} h${w} v${w} h${-w} Z`);
  } else if (hit && hit.kind === "edge") {
    const g = view.gaps[hit.gap];
    const xm = (g.x0 + g.x1) / 2;
    const y0 = g.y0[hit.e];
    const y1 = g.y1[hit.e];
    setAttr(view.highlight, "d", `M${g.x0},${y0} C${xm},${y0} ${xm},${y1} ${g.x1},${y1}`);
  } else {
    setAttr(view.highlight, "d", "");
  }
}

/** Gaps the keyboard walks: ones with edges to point at (not conv, not left-out columns). */
function keyGaps(view) {
  return view.gaps.filter((g) => g.count > 0 && g.mode !== "conv" && g.mode !== "skip");
}

/** The k-th thing of a gap: its edges, then the bias of each unit it feeds. */
function keyItem(view, g, k) {
  if (k < g.count) {
    const i = Math.floor(k / g.nj);
    const j = k % g.nj;
    const hit = { kind: "edge", gap: g.index, layer: g.name, mode: g.mode, i: g.mode === "in" ? -1 : i, j: g.mode === "out" ? -1 : j, e: k, fromCol: g.from.index, toCol: g.to.index };
    const xm = 0.5;
    const t = tOfU(xm);
    const s = 3 * t * t - 2 * t * t * t;
    return { hit, x: g.x0 + (g.x1 - g.x0) * xm, y: g.y0[k] + (g.y1[k] - g.y0[k]) * s };
  }
  const c = g.to;
  const node = c.nodes[k - g.count];
  return { hit: { kind: "bias", col: c.index, unit: node.unit, layer: c.name }, x: node.x - c.w / 2, y: node.y + c.s / 2 };
}

function keyItemCount(view, g) {
  const biases = g.to.kind === "dense" && !g.to.bundle && g.to.s >= 10 ? g.to.nodes.length : 0;
  return g.count + biases;
}

/** Arrow keys move a cursor over weights and biases (with the tooltip), Enter acts like a click. */
export function onKey(view, e) {
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  // only after keyboard focus: a mouse click leaves the arrows to the page (the explainer's steps)
  if (!view.cursor && !view.root.matches(":focus-visible")) return;
  const gaps = keyGaps(view);
  if (!gaps.length) return;
  let { gap, item } = view.cursor || { gap: 0, item: 0 };
  gap = Math.min(gap, gaps.length - 1);
  const count = (g) => keyItemCount(view, g);
  if (e.key === "Escape" && view.cursor) {
    view.cursor = null;
    view.setHover(null, null);
    e.preventDefault();
    return;
  }
  if (e.key === "Enter") {
    if (!view.cursor) return;
    const it = keyItem(view, gaps[gap], item);
    if (view.handlers.onClick) view.handlers.onClick(it.hit, clientPoint(view, it));
    e.preventDefault();
    return;
  }
  const moves = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1], PageDown: [0, 10], PageUp: [0, -10] };
  if (e.key === "Home") item = 0;
  else if (e.key === "End") item = count(gaps[gap]) - 1;
  else if (moves[e.key]) {
    if (view.cursor) {
      const [dg, di] = moves[e.key];
      gap += dg;
      item += di;
    }
  } else return;
  e.preventDefault();
  moveCursor(view, gap, item);
}

/** Put the keyboard cursor on item `item` of walkable gap `gap` (clamped), with its tooltip. */
export function moveCursor(view, gap, item) {
  const gaps = keyGaps(view);
  if (!gaps.length) {
    view.cursor = null;
    return;
  }
  const g = Math.max(0, Math.min(gaps.length - 1, gap));
  const k = Math.max(0, Math.min(keyItemCount(view, gaps[g]) - 1, item));
  view.cursor = { gap: g, item: k };
  const it = keyItem(view, gaps[g], k);
  view.setHover(it.hit, clientPoint(view, it));
  view.readout.textContent = describe(view, it.hit);
}

/** A stand-in for a mouse event at a view-local point (the tooltip and popover place by it). */
function clientPoint(view, { x, y }) {
  const r = view.root.getBoundingClientRect();
  return { clientX: r.left + x, clientY: r.top + y, keyboard: true };
}

/** A sentence for screen readers about a weight or bias. */
function describe(view, hit) {
  const snap = view.snap;
  const W = snap && snap.weights;
  if (hit.kind === "edge") {
    if (hit.i < 0 || hit.j < 0) return `layer ${hit.layer}: bundled weights ${hit.i < 0 ? `into unit ${hit.j}` : `from unit ${hit.i}`}`;
    const row = W && W[`${hit.layer}.W`] ? W[`${hit.layer}.W`][hit.i] : null;
    const v = row ? row[hit.j] : null;
    return `layer ${hit.layer} weight from unit ${hit.i} to unit ${hit.j}${v === null || v === undefined ? "" : `: ${fmt(v, 4)}`}. Enter edits it.`;
  }
  const b = W && W[`${hit.layer}.b`] ? W[`${hit.layer}.b`][hit.unit] : null;
  return `layer ${hit.layer} bias of unit ${hit.unit}${b === null || b === undefined ? "" : `: ${fmt(b, 4)}`}. Enter edits it.`;
}

/** A point on edge (layer, i, j) at fraction u of its horizontal extent (for tests and popovers). */
export function edgePoint(view, layerName, i, j, u = 0.3) {
  const g = view.gaps.find((gg) => gg.name === layerName);
  if (!g) return null;
  const e = g.mode === "full" ? i * g.nj + j : g.mode === "in" ? j : i;
  const t = tOfU(u);
  const s = 3 * t * t - 2 * t * t * t;
  return { x: g.x0 + (g.x1 - g.x0) * u, y: g.y0[e] + (g.y1[e] - g.y0[e]) * s };
}
