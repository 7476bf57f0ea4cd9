// The pictures inside the network drawing, painted into the view's offscreen map buffer at
// snapshot rate: each neuron's output over the input plane (2-D data), the activation of the last
// batch otherwise, conv filters and their feature maps, the input image, bias marks and the
// per-filter gradient bars.

import { classColor, divergingRGB, logPos, rgbCss, setAttr, tintRGB } from "./util.js";

const FEATURE_FUNCS = {
  x1: (a) => a,
  x2: (a, b) => b,
  "x1^2": (a) => a * a,
  "x2^2": (a, b) => b * b,
  "x1*x2": (a, b) => a * b,
  "sin(x1)": (a) => Math.sin(a),
  "sin(x2)": (a, b) => Math.sin(b),
};

/** Per-neuron heatmaps (2-D data), activation fills, conv filters and feature maps. */
export function drawMaps(view) {
  view.dirty.maps = false;
  drawFilterBars(view);
  view.composeNeeded = true;
  const ctx = view.mapCtx;
  ctx.clearRect(0, 0, view.width, view.height);
  const snap = view.snap;
  const grid = snap && snap.grid;
  const rgb = [0, 0, 0];
  const explainVals = view.explain && view.explain.values;
  for (const c of view.cols) {
    if (c.bundle) continue;
    const els = view.nodeEls[c.index];
    if (c.kind === "image") {
      const node = c.nodes[0];
      const img = (!view.explain && snapshotImage(view)) || view.inputImage;
      if (img) paintImage(view, ctx, img, node.x - c.s / 2, node.y - c.s / 2, c.s, c.s, "grey");
      continue;
    }
    if (c.kind === "conv") {
      const conv = snap && snap.conv && snap.conv[c.name];
      for (const node of c.nodes) {
        const x = node.x - c.w / 2;
        const y = node.y - c.s / 2;
        if (conv && conv.filters && conv.filters[node.unit]) {
          const f = conv.filters[node.unit];
          const k = Array.isArray(f[0]) && Array.isArray(f[0][0]) ? meanChannels(f) : f;
          paintImage(view, ctx, k, x, y, c.s, c.s, "diverging");
        }
        const traced = view.explain && view.explain.featureMaps ? view.explain.featureMaps[c.index] : null;
        const maps = traced || (conv && conv.feature_maps);
        if (maps && maps[node.unit]) paintImage(view, ctx, maps[node.unit], x + c.s + 4, y, c.s, c.s, "grey");
      }
      continue;
    }
    const vals = explainVals && explainVals[c.index];
    const neuronMaps = grid && grid.neurons && c.name !== null ? grid.neurons[c.name] : null;
    for (const node of c.nodes) {
      const x = node.x - c.s / 2;
      const y = node.y - c.s / 2;
      if (vals && vals[node.unit] !== undefined) {
        // explainer: the node is filled with its value for the traced sample (deltas on a log scale)
        const v = vals[node.unit];
        const t = view.explain.kind === "δ" ? Math.sign(v) * logPos(v, 1e-6, 1) : scaleFor(c, v, 1);
        divergingRGB(t, rgb);
        ctx.fillStyle = rgbCss(rgb);
        ctx.fillRect(x, y, c.s, c.s);
      } else if (grid && c.kind === "input" && c.s >= 8) {
        const map = grid.inputs && grid.inputs[c.features[node.unit]];
        if (map) paintNeuron(view, ctx, map, "input", x, y, c.s);
        else paintFeature(view, ctx, grid, c.features[node.unit], x, y, c.s);
      } else if (neuronMaps && neuronMaps[node.unit] && c.s >= 8) {
        paintNeuron(view, ctx, neuronMaps[node.unit], c.activation, x, y, c.s);
      } else if (c.output && grid && Array.isArray(grid.classes) && grid.classes.length === c.units && grid.classes[node.unit] && c.s >= 8) {
        // multi-class output: each unit's map over the plane, in its class's colour (as the data
        // view's legend); raw (non-probability) outputs keep the diverging scale of other neurons
        const map = grid.classes[node.unit];
        if (grid.class_values === "probability") {
          const col = classColor(node.unit, c.units);
          paintGrid(view, ctx, map.length, (r, k) => map[r][k], x, y, c.s, (v, out) => tintRGB(col, v, out));
        } else paintNeuron(view, ctx, map, c.activation, x, y, c.s);
      } else if (c.output && grid && grid.output && c.units === 1 && c.s >= 8) {
        paintNeuron(view, ctx, grid.output, c.activation, x, y, c.s);
      } else if (c.output && grid && grid.output && c.units === 2 && c.s >= 8 && view.config.loss === "cross_entropy") {
        // two-class softmax: the engine's map is p1 - p0; unit 1 shows it, unit 0 its negation
        const sign = node.unit === 1 ? 1 : -1;
        paintGrid(view, ctx, grid.output.length, (r, k) => sign * grid.output[r][k], x, y, c.s);
      } else if (snap && snap.nodes && c.name && snap.nodes[c.name]) {
        const a = snap.nodes[c.name].activation;
        const v = a ? a[node.unit] : 0;
        divergingRGB(scaleFor(c, v, 1), rgb);
        ctx.fillStyle = rgbCss(rgb);
        ctx.fillRect(x, y, c.s, c.s);
      } else {
        ctx.fillStyle = "#f1f3f4";
        ctx.fillRect(x, y, c.s, c.s);
      }
    }
    // bias marks
    if (els && c.name) {
      const b = snap && snap.weights ? snap.weights[`${c.name}.b`] : null;
      const eb = view.explain && view.explain.biases ? view.explain.biases[c.index] : null;
      for (const node of c.nodes) {
        const mark = els[node.unit] && els[node.unit].bias;
        if (!mark) continue;
        const v = eb ? eb[node.unit] : b ? b[node.unit] : 0;
        divergingRGB(v, rgb);
        setAttr(mark, "fill", rgbCss(rgb));
      }
    }
  }
}

/** The sample the snapshot's feature maps come from ([h][w], channels averaged), or null. */
function snapshotImage(view) {
  const conv = view.snap && view.snap.conv;
  if (!conv) return null;
  const first = view.cols.find((c) => c.kind === "conv");
  const entry = first && conv[first.name];
  const img = entry && entry.input;
  if (!Array.isArray(img) || !img.length) return null;
  return Array.isArray(img[0]) && Array.isArray(img[0][0]) ? (img.length === 1 ? img[0] : meanChannels(img)) : img;
}

/** Per-filter gradient bars from the snapshot's conv entries. */
function drawFilterBars(view) {
  const snap = view.snap;
  const max = {};
  for (const fb of view.filterBars || []) {
    const conv = snap && snap.conv && snap.conv[fb.col.name];
    const g = conv && conv.filter_grad_norm;
    if (g && max[fb.col.name] === undefined) max[fb.col.name] = Math.max(...g.map((v) => (Number.isFinite(v) ? v : 0)), 1e-30);
    const v = g ? g[fb.unit] : null;
    const t = v === null || v === undefined || !Number.isFinite(v) ? 0 : v / max[fb.col.name];
    const h = Math.max(v ? 1 : 0, t * fb.s);
    setAttr(fb.bar, "y", (fb.y + fb.s - h).toFixed(1));
    setAttr(fb.bar, "height", h.toFixed(1));
    setAttr(fb.bar, "data-value", v === null || v === undefined ? "" : String(v));
  }
}

/** A value mapped to [-1, 1] for colouring, by activation range. */
function scaleFor(c, v, maxAbs) {
  if (c.kind === "input") return v / Math.max(1, maxAbs || 1);
  switch (c.activation) {
    case "sigmoid":
    case "softmax":
      return 2 * v - 1;
    case "tanh":
      return v;
    default:
      return v / Math.max(1, maxAbs || 1);
  }
}

function paintNeuron(view, ctx, map, activation, x, y, s) {
  const res = map.length;
  let maxAbs = 0;
  if (activation !== "tanh" && activation !== "sigmoid") {
    for (const row of map) for (const v of row) if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
  }
  const c = { kind: "dense", activation };
  paintGrid(view, ctx, res, (r, k) => scaleFor(c, map[r][k], maxAbs), x, y, s);
}

function paintFeature(view, ctx, grid, feature, x, y, s) {
  const res = 24;
  const [x0, x1] = grid.x;
  const [y0, y1] = grid.y;
  const f = FEATURE_FUNCS[feature] || FEATURE_FUNCS.x1;
  let maxAbs = 0;
  const vals = new Float32Array(res * res);
  for (let r = 0; r < res; r++) {
    const b = y0 + ((y1 - y0) * r) / (res - 1);
    for (let k = 0; k < res; k++) {
      const a = x0 + ((x1 - x0) * k) / (res - 1);
      const v = f(a, b);
      vals[r * res + k] = v;
      if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
    }
  }
  paintGrid(view, ctx, res, (r, k) => vals[r * res + k] / (maxAbs || 1), x, y, s);
}

/**
 * Paint a res x res grid (row 0 = lowest y, drawn at the bottom) into the square at x, y; each
 * value becomes a colour through colorOf(v, rgb) (default: the orange-grey-blue scale of [-1, 1]).
 */
function paintGrid(view, ctx, res, valueAt, x, y, s, colorOf = divergingRGB) {
  const off = view.offscreen;
  if (off.width !== res || off.height !== res) {
    off.width = res;
    off.height = res;
  }
  const octx = off.getContext("2d");
  if (!view.gridImage || view.gridImage.width !== res) view.gridImage = octx.createImageData(res, res);
  const img = view.gridImage;
  const d = img.data;
  const rgb = [0, 0, 0];
  for (let r = 0; r < res; r++) {
    const py = res - 1 - r;
    for (let k = 0; k < res; k++) {
      colorOf(valueAt(r, k), rgb);
      const o = (py * res + k) * 4;
      d[o] = rgb[0];
      d[o + 1] = rgb[1];
      d[o + 2] = rgb[2];
      d[o + 3] = 255;
    }
  }
  octx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, x, y, s, s);
}

/** Paint a 2-D array as an image: "grey" (min..max) or "diverging" (symmetric around 0). */
function paintImage(view, ctx, arr, x, y, w, h, mode) {
  const rows = arr.length;
  const cols = rows ? arr[0].length : 0;
  if (!rows || !cols) return;
  const off = view.offscreen;
  off.width = cols;
  off.height = rows;
  const octx = off.getContext("2d");
  const img = octx.createImageData(cols, rows);
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of arr) for (const v of row) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const maxAbs = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  const rgb = [0, 0, 0];
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < cols; k++) {
      const v = arr[r][k];
      const o = (r * cols + k) * 4;
      if (mode === "grey") {
        const t = hi > lo ? (v - lo) / (hi - lo) : 0;
        const g = 250 - t * 215;
        img.data[o] = g;
        img.data[o + 1] = g;
        img.data[o + 2] = g + 5 * t;
      } else {
        divergingRGB(v / maxAbs, rgb);
        img.data[o] = rgb[0];
        img.data[o + 1] = rgb[1];
        img.data[o + 2] = rgb[2];
      }
      img.data[o + 3] = 255;
    }
  }
  octx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, x, y, w, h);
}

function meanChannels(f) {
  // f: [c][kh][kw] -> [kh][kw]
  const c = f.length;
  const kh = f[0].length;
  const kw = f[0][0].length;
  const out = Array.from({ length: kh }, () => new Array(kw).fill(0));
  for (let ch = 0; ch < c; ch++) for (let r = 0; r < kh; r++) for (let k = 0; k < kw; k++) out[r][k] += f[ch][r][k] / c;
  return out;
}
