// Where everything of the network drawing goes: the columns of a run's layers (inputs, then one per
// dense or conv layer; pool, flatten, batch-norm and dropout layers are tags on the column before
// them), the ones that fit the width, node positions and sizes, the edges of each gap between two
// columns, and label texts and rows that keep apart. Functions over the view's state; the view
// (network_view.js) turns the result into SVG and canvas.

import { svg } from "./util.js";

const MAX_DRAWN_UNITS = 64; // wider layers are drawn as a bundle with a count
const MAX_DRAWN_FILTERS = 16;
const SVG_EDGE_LIMIT = 500; // above this many edges, edges go to a canvas
export const HEADER = 44; // column titles on one row
export const HEADER_STAGGERED = 62; // titles alternating over two rows
export const NOTE_H = 24; // the "showing n of m layers" note above the titles
const STRIP = 92; // height of the gradient meter at the bottom
export const STAT_ROW = 13; // a second row of dead / saturated labels (10 px text)
export const BAR_LABEL_ROW = 13; // a second row of gradient-norm values (10 px text)
// Closest column centres drawn. At 28 px the node squares are ~12 px (bias marks need 10, neuron
// maps 8), labels on two rows keep apart, and a batch-norm layer's second bar just meets the next
// column's bar; closer, it all runs together. At 1280x720 this draws up to 16 hidden layers,
// at 1440x900 up to 18 (tests/browser/test_layout.py).
export const MIN_COL_STEP = 28;
export const LABEL_GAP = 4; // px between neighbouring labels
const SHORT_ACTIVATION = { sigmoid: "sigm", tanh: "tanh", relu: "relu", leaky_relu: "leaky", linear: "lin", softmax: "smax" };
export const LEFT = 70;
const RIGHT = 74;
const TYPE_LABELS = { maxpool2d: "max pool", avgpool2d: "avg pool", flatten: "flatten", batchnorm: "batch norm", dropout: "dropout" };

/** Bezier x-progress u(t) for control points at the horizontal midpoint, and its inverse. */
function uOf(t) {
  return 1.5 * t - 1.5 * t * t + t * t * t;
}
export function tOfU(u) {
  let t = u;
  for (let k = 0; k < 6; k++) {
    const f = uOf(t) - u;
    const d = 1.5 - 3 * t + 3 * t * t;
    t -= f / d;
    if (t < 0) t = 0;
    else if (t > 1) t = 1;
  }
  return t;
}

export function buildModel(view) {
  const cfg = view.config;
  const cols = [];
  const kind = view.info ? view.info.input_kind : cfg.features ? "2d" : "2d";
  const isImage = kind === "image" || (cfg.layers || []).some((l) => l.type === "conv2d");
  if (isImage) {
    cols.push({ kind: "image", name: null, layerIndex: -1, units: 1, label: "Input image", tags: [] });
  } else {
    const feats = cfg.features && cfg.features.length ? cfg.features : ["x1", "x2"];
    cols.push({ kind: "input", name: null, layerIndex: -1, units: feats.length, features: feats, label: "Input", tags: [] });
  }
  (cfg.layers || []).forEach((layer, i) => {
    const name = String(i);
    if (layer.type === "dense") {
      cols.push({ kind: "dense", name, layerIndex: i, units: layer.units, activation: layer.activation, label: `Dense ${layer.units}`, tags: [] });
    } else if (layer.type === "conv2d") {
      cols.push({ kind: "conv", name, layerIndex: i, units: layer.filters, activation: layer.activation, label: `Conv ${layer.filters}×${layer.kernel_size}²`, tags: [] });
    } else {
      const prev = cols[cols.length - 1];
      let tag = TYPE_LABELS[layer.type] || layer.type;
      if (layer.type === "dropout") tag += ` ${layer.rate}`;
      if (layer.type === "maxpool2d" || layer.type === "avgpool2d") tag += ` ${layer.size}`;
      prev.tags.push({ text: tag, name, type: layer.type });
    }
  });
  const last = cols[cols.length - 1];
  if (last.kind === "dense") last.output = true;
  for (const c of cols) {
    c.bundle = c.kind === "conv" ? c.units > MAX_DRAWN_FILTERS : c.units > MAX_DRAWN_UNITS;
    c.drawn = c.kind === "image" ? 1 : c.bundle ? 0 : c.units;
  }
  const kept = capColumns(view, cols);
  kept.forEach((c, i) => (c.index = i));
  view.cols = kept;
  view.gaps = [];
  for (let g = 0; g + 1 < kept.length; g++) {
    const from = kept[g];
    const to = kept[g + 1];
    let mode;
    if (from.skipAfter) mode = "skip"; // columns left out in between: no edges to draw
    else if (to.kind === "conv") mode = "conv";
    else if (from.bundle || from.kind === "image" || from.kind === "conv") mode = to.bundle ? "single" : "in";
    else if (to.bundle) mode = "out";
    else mode = "full";
    view.gaps.push({ index: g, from, to, mode, name: to.name });
  }
}

/**
 * The columns that fit the width (a column every MIN_COL_STEP px at least): the input, the first
 * and last hidden columns and the output. Sets view.skipped ({count, names}) when some are left out.
 */
function capColumns(view, cols) {
  view.skipped = null;
  for (const c of cols) c.skipAfter = 0;
  const room = Math.floor((view.width - LEFT - RIGHT - 40) / MIN_COL_STEP) + 1;
  if (cols.length <= Math.max(room, 3)) return cols;
  const hidden = cols.slice(1, -1);
  const keep = Math.max(1, room - 2);
  const head = Math.ceil(keep / 2);
  const tail = keep - head;
  const left = hidden.slice(0, head);
  const right = tail ? hidden.slice(hidden.length - tail) : [];
  const out = hidden.slice(head, hidden.length - tail);
  left[left.length - 1].skipAfter = out.length;
  view.skipped = { count: out.length, names: out.map((c) => c.name), hidden: hidden.length, drawn: keep };
  return [cols[0], ...left, ...right, cols[cols.length - 1]];
}

export function layout(view) {
  const W = view.width;
  const H = view.height;
  const n = view.cols.length;
  const top = view.skipped ? NOTE_H : 0;
  const strip = STRIP + (view.labels ? view.labels.stripExtra : 0);
  const areaTop = top + (view.labels && view.labels.stagger ? HEADER_STAGGERED : HEADER) + 10;
  const areaBottom = H - strip - 14;
  const areaH = Math.max(60, areaBottom - areaTop);
  const spacing = n > 1 ? (W - LEFT - RIGHT) / (n - 1) : 0;
  view.colSpacing = spacing;
  const is2d = view.info ? view.info.input_kind === "2d" : true;
  view.cols.forEach((c, i) => {
    c.x = n > 1 ? LEFT + 20 + i * ((W - LEFT - RIGHT - 40) / (n - 1)) : W / 2;
    const maxS = c.kind === "conv" ? Math.min(30, spacing * 0.22) : Math.min(is2d ? 34 : 26, spacing * 0.42);
    const count = c.kind === "image" ? 1 : c.drawn;
    if (c.kind === "image") {
      c.s = Math.min(76, spacing * 0.55, areaH * 0.5);
      c.w = c.s;
    } else if (c.bundle) {
      c.s = Math.min(26, spacing * 0.3);
      c.w = c.s;
    } else {
      c.s = Math.max(4, Math.min(maxS, (areaH / count) * 0.78));
      c.w = c.kind === "conv" ? c.s * 2 + 4 : c.s;
    }
    c.nodes = [];
    if (c.bundle) {
      const h = Math.min(areaH * 0.7, 220);
      c.bundleBox = { x: c.x - c.w / 2, y: areaTop + (areaH - h) / 2, w: c.w, h };
      c.nodes.push({ x: c.x, y: areaTop + areaH / 2, unit: -1 });
    } else {
      const gapY = count > 1 ? Math.min(c.s * 0.9 + 6, (areaH - count * c.s) / (count - 1)) : 0;
      const total = count * c.s + (count - 1) * Math.max(gapY, 1);
      let y = areaTop + (areaH - total) / 2 + c.s / 2;
      for (let u = 0; u < count; u++) {
        c.nodes.push({ x: c.x, y, unit: u });
        y += c.s + Math.max(gapY, 1);
      }
    }
  });
  for (const g of view.gaps) {
    g.x0 = g.from.x + g.from.w / 2;
    g.x1 = g.to.x - g.to.w / 2;
    const src = g.mode === "full" || g.mode === "out" ? g.from.nodes : [g.from.nodes.length === 1 ? g.from.nodes[0] : { y: (areaTop + areaBottom) / 2 }];
    const dst = g.mode === "full" || g.mode === "in" || g.mode === "conv" ? g.to.nodes : [g.to.nodes[0]];
    const fromList = g.mode === "conv" && !g.from.bundle && g.from.kind !== "image" ? [{ y: (areaTop + areaBottom) / 2 }] : src;
    g.ni = fromList.length;
    g.nj = dst.length;
    g.count = g.ni * g.nj;
    g.y0 = new Float32Array(g.count);
    g.y1 = new Float32Array(g.count);
    for (let i = 0; i < g.ni; i++) {
      for (let j = 0; j < g.nj; j++) {
        g.y0[i * g.nj + j] = fromList[i].y;
        g.y1[i * g.nj + j] = dst[j].y;
      }
    }
    g.w = new Float32Array(g.count); // weight shown per edge (signed)
    g.gl = new Float32Array(g.count); // gradient glow base per edge
  }
  view.edgeCount = view.gaps.reduce((s, g) => s + g.count, 0);
  view.useCanvasEdges = view.edgeCount > SVG_EDGE_LIMIT;
  view.stripTop = H - strip;
}

/** Width in px of `text` drawn with SVG class `cls` (0 while the view is not rendered). */
export function textWidth(view, cls, text) {
  const cache = view.widths || (view.widths = new Map());
  const key = `${cls}|${text}`;
  if (cache.has(key)) return cache.get(key);
  const t = svg("text", { class: cls, x: 0, y: -100 });
  t.textContent = text;
  view.topSvg.append(t);
  const w = t.getComputedTextLength();
  t.remove();
  if (w > 0) cache.set(key, w);
  return w;
}

/** Title and sub-title of a column's header at one of three lengths. */
export function headerText(c, length) {
  const bn = c.tags.some((t) => t.type === "batchnorm");
  const parts = [];
  if (c.activation) parts.push(c.activation);
  for (const t of c.tags) parts.push(t.text);
  if (c.kind === "input") parts.push(`${c.units} feature${c.units === 1 ? "" : "s"}`);
  if (length === "full") return [c.output ? `Output ${c.units}` : c.label, parts.join(" · ")];
  const first = parts.filter((t) => t !== "batch norm").slice(0, 1).join("") + (bn ? " +BN" : "");
  if (length === "narrow") return [c.output ? `Out ${c.units}` : c.kind === "dense" ? `${c.units} units` : c.label, first];
  const title = c.kind === "input" ? "Input" : c.kind === "image" ? "Image" : c.output ? `Out ${c.units}` : c.kind === "conv" ? c.label.replace("Conv ", "") : String(c.units);
  const sub = c.kind === "input" ? `${c.units} in` : c.activation ? `${SHORT_ACTIVATION[c.activation] || c.activation}${bn ? "+BN" : ""}` : first;
  return [title, sub];
}

/** Whether labels of these widths, centred on their columns, keep LABEL_GAP apart per row. */
function labelsFit(view, widths, rows) {
  const last = new Array(rows).fill(-Infinity);
  for (let k = 0; k < view.cols.length; k++) {
    const c = view.cols[k];
    const row = k % rows;
    const w = widths[k];
    if (c.x - w / 2 < 2 || c.x + w / 2 > view.width - 2) return false;
    if (c.x - w / 2 < last[row] + LABEL_GAP) return false;
    last[row] = c.x + w / 2;
  }
  return true;
}

/** Choose header texts and rows, and whether stat and gradient labels take two rows. */
export function planLabels(view) {
  const variants = [["full", 1], ["narrow", 1], ["narrow", 2], ["compact", 2]];
  let plan = null;
  for (const [length, rows] of variants) {
    const texts = view.cols.map((c) => headerText(c, length));
    const widths = texts.map(([t, sub]) => Math.max(textWidth(view, "col-title", t), textWidth(view, "col-sub", sub)));
    plan = { length, rows, texts };
    if (labelsFit(view, widths, rows)) break;
  }
  const step = view.cols.length > 1 ? view.cols[1].x - view.cols[0].x : view.width;
  const fits = (cls, text, rows) => textWidth(view, cls, text) + LABEL_GAP <= step * rows;
  // dead / saturated share: both, the larger one, or just its number; on two rows when needed
  let stat = "number";
  let statRows = fits("col-stat", "100%", 1) ? 1 : 2;
  if (fits("col-stat", "dead 100% · sat 100%", 1)) [stat, statRows] = ["both", 1];
  else if (fits("col-stat", "dead 100%", 1)) [stat, statRows] = ["one", 1];
  else if (fits("col-stat", "dead 100%", 2)) [stat, statRows] = ["one", 2];
  const barRows = fits("gradbar-label", "1.2e-10", 1) ? 1 : 2;
  return {
    header: plan,
    stagger: plan.rows === 2,
    stat,
    statRows,
    barRows,
    stripExtra: (statRows === 2 ? STAT_ROW : 0) + (barRows === 2 ? BAR_LABEL_ROW : 0),
  };
}
