// The network drawing. Built once per architecture (and on resize); every later update only restyles
// elements found by id, through setAttr's cache, or repaints a canvas layer that is marked dirty.
//
// Layers, bottom to top:  edge canvas (many edges) | edge SVG (few edges) | glow canvas (pulse) |
// map canvas (neuron heatmaps, filters) | top SVG (node frames, bias marks, labels, gradient meter).
// Columns: the inputs, then one per dense or conv layer; pool, flatten, batchnorm and dropout layers
// are drawn as tags on the column before them. Column labels shorten and stagger over two rows to
// stay apart as columns get closer; past MIN_COL_STEP the middle columns are left out, with a note.
// With focus (Tab), the arrow keys walk the weights and biases and Enter acts like a click.

import {
  BLUE,
  ORANGE,
  classColor,
  divergingRGB,
  el,
  fitCanvas,
  flat,
  fmt,
  glowOf,
  logPos,
  rgbCss,
  setAttr,
  setText,
  svg,
  tintRGB,
} from "./util.js";

const MAX_DRAWN_UNITS = 64; // wider layers are drawn as a bundle with a count
const MAX_DRAWN_FILTERS = 16;
const SVG_EDGE_LIMIT = 500; // above this many edges, edges go to a canvas
const HEADER = 44; // column titles on one row
const HEADER_STAGGERED = 62; // titles alternating over two rows
const NOTE_H = 24; // the "showing n of m layers" note above the titles
const STRIP = 92; // height of the gradient meter at the bottom
const STAT_ROW = 13; // a second row of dead / saturated labels (10 px text)
const BAR_LABEL_ROW = 13; // a second row of gradient-norm values (10 px text)
// Closest column centres drawn. At 28 px the node squares are ~12 px (bias marks need 10, neuron
// maps 8), labels on two rows keep apart, and a batch-norm layer's second bar just meets the next
// column's bar; closer, it all runs together. At 1280x720 this draws up to 16 hidden layers,
// at 1440x900 up to 18 (tests/browser/test_layout.py).
export const MIN_COL_STEP = 28;
const LABEL_GAP = 4; // px between neighbouring labels
const SHORT_ACTIVATION = { sigmoid: "sigm", tanh: "tanh", relu: "relu", leaky_relu: "leaky", linear: "lin", softmax: "smax" };
const LEFT = 70;
const RIGHT = 74;
const GRAD_LO = 1e-8;
const GRAD_HI = 1e2;
const FWD_GLOW = [255, 176, 0];
const GLOW_MIN_MS = 30; // glow repaints at most ~30 times a second
const GLOW_EDGE_CAP = 320; // edges that glow per gap, strongest first
const BWD_GLOW = [224, 36, 94];

const FEATURE_FUNCS = {
  x1: (a) => a,
  x2: (a, b) => b,
  "x1^2": (a) => a * a,
  "x2^2": (a, b) => b * b,
  "x1*x2": (a, b) => a * b,
  "sin(x1)": (a) => Math.sin(a),
  "sin(x2)": (a, b) => Math.sin(b),
};
const FEATURE_LABELS = { x1: "x₁", x2: "x₂", "x1^2": "x₁²", "x2^2": "x₂²", "x1*x2": "x₁x₂", "sin(x1)": "sin x₁", "sin(x2)": "sin x₂" };
const TYPE_LABELS = { maxpool2d: "max pool", avgpool2d: "avg pool", flatten: "flatten", batchnorm: "batch norm", dropout: "dropout" };

/** Bezier x-progress u(t) for control points at the horizontal midpoint, and its inverse. */
function uOf(t) {
  return 1.5 * t - 1.5 * t * t + t * t * t;
}
function tOfU(u) {
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

/** Edge width for a weight, Playground-like: thin for small weights, capped at 7 px. */
export function edgeWidth(w) {
  const a = Math.min(Math.abs(w), 3);
  return 0.5 + (a / 3) * 6.5;
}

export class NetworkView {
  /**
   * @param {HTMLElement} root  an empty, positioned container
   * @param {{onHover?: Function, onClick?: Function}} handlers  hit = {kind: "edge"|"node"|"bias", ...}
   */
  constructor(root, handlers = {}) {
    this.root = root;
    this.handlers = handlers;
    this.edgeCanvas = el("canvas", { class: "net-layer net-canvas" });
    this.edgeSvg = svg("svg", { class: "net-layer" });
    // one visible canvas for the neuron maps and the glow: maps are drawn into an offscreen buffer
    // at snapshot rate and blitted under each glow repaint (fewer layers to composite per frame)
    this.paintCanvas = el("canvas", { class: "net-layer net-canvas" });
    this.mapBuffer = document.createElement("canvas");
    this.topSvg = svg("svg", { class: "net-layer net-top", id: "net-top" });
    // what the keyboard cursor points at, for screen readers; the cap note for everyone
    this.readout = el("p", { class: "sr-only", "aria-live": "polite" });
    this.note = el("p", { class: "net-note", role: "status", hidden: true });
    root.append(this.edgeCanvas, this.edgeSvg, this.paintCanvas, this.topSvg, this.note, this.readout);
    this.cursor = null; // keyboard position: {gap, item}
    this.cols = [];
    this.gaps = [];
    this.config = null;
    this.info = null;
    this.snap = null;
    this.layerStats = {};
    this.width = 0;
    this.height = 0;
    this.dirty = { build: false, weights: false, maps: false, bars: false, glow: false, explain: false };
    /** Pulse / explainer glow: per column node intensities and per gap edge intensities. */
    this.glow = null; // {mode: "forward"|"backward", nodeBase: [Float32Array], edgeBase: [Float32Array], colEnv, gapEnv}
    /** Explainer overlay: {values: {col: number[]}, kind: "a"|"δ", highlightCol, highlightNode, weights: {gap: Float32Array}}. */
    this.explain = null;
    this.hover = null;
    this.inputImage = null; // [h][w] of the sample shown in an image input column
    this.offscreen = document.createElement("canvas");
    this.resizeObserver = new ResizeObserver(() => {
      const r = this.root.getBoundingClientRect();
      if (Math.abs(r.width - this.width) > 1 || Math.abs(r.height - this.height) > 1) this.dirty.build = true;
    });
    this.resizeObserver.observe(root);
    root.addEventListener("mousemove", (e) => this.onMove(e));
    root.addEventListener("mouseleave", () => this.setHover(null, null));
    root.addEventListener("click", (e) => {
      const hit = this.hitTest(...this.localXY(e));
      if (hit && this.handlers.onClick) this.handlers.onClick(hit, e);
    });
    root.addEventListener("keydown", (e) => this.onKey(e));
    // the cursor survives a trip to the weight editor; the mouse takes over from it
    root.addEventListener("blur", () => this.cursor && this.setHover(null, null));
    root.addEventListener("mousedown", () => (this.cursor = null));
  }

  // ------------------------------------------------------------------ model

  /** Set the architecture from a run config and its dataset entry (rebuilds on the next render). */
  setArchitecture(config, info) {
    this.config = config;
    this.info = info || null;
    this.snap = null;
    this.explain = null;
    this.glow = null;
    this.dirty.build = true;
  }

  setSnapshot(snap) {
    this.snap = snap;
    this.dirty.weights = this.dirty.maps = true;
    if (this.cols.length) this.computeGapValues();
  }

  setLayerStats(stats) {
    this.layerStats = stats || {};
    this.dirty.bars = true;
  }

  setExplain(explain) {
    this.explain = explain;
    this.dirty.explain = this.dirty.weights = this.dirty.maps = true;
  }

  setInputImage(img) {
    this.inputImage = img;
    this.dirty.maps = true;
  }

  /** The columns as the layout sees them (used by the pulse and the explainer). */
  columnModel() {
    return this.cols;
  }

  buildModel() {
    const cfg = this.config;
    const cols = [];
    const kind = this.info ? this.info.input_kind : cfg.features ? "2d" : "2d";
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
    const kept = this.capColumns(cols);
    kept.forEach((c, i) => (c.index = i));
    this.cols = kept;
    this.gaps = [];
    for (let g = 0; g + 1 < kept.length; g++) {
      const from = kept[g];
      const to = kept[g + 1];
      let mode;
      if (from.skipAfter) mode = "skip"; // columns left out in between: no edges to draw
      else if (to.kind === "conv") mode = "conv";
      else if (from.bundle || from.kind === "image" || from.kind === "conv") mode = to.bundle ? "single" : "in";
      else if (to.bundle) mode = "out";
      else mode = "full";
      this.gaps.push({ index: g, from, to, mode, name: to.name });
    }
  }

  /**
   * The columns that fit the width (a column every MIN_COL_STEP px at least): the input, the first
   * and last hidden columns and the output. Sets this.skipped ({count, names}) when some are left out.
   */
  capColumns(cols) {
    this.skipped = null;
    for (const c of cols) c.skipAfter = 0;
    const room = Math.floor((this.width - LEFT - RIGHT - 40) / MIN_COL_STEP) + 1;
    if (cols.length <= Math.max(room, 3)) return cols;
    const hidden = cols.slice(1, -1);
    const keep = Math.max(1, room - 2);
    const head = Math.ceil(keep / 2);
    const tail = keep - head;
    const left = hidden.slice(0, head);
    const right = tail ? hidden.slice(hidden.length - tail) : [];
    const out = hidden.slice(head, hidden.length - tail);
    left[left.length - 1].skipAfter = out.length;
    this.skipped = { count: out.length, names: out.map((c) => c.name), hidden: hidden.length, drawn: keep };
    return [cols[0], ...left, ...right, cols[cols.length - 1]];
  }

  layout() {
    const W = this.width;
    const H = this.height;
    const n = this.cols.length;
    const top = this.skipped ? NOTE_H : 0;
    const strip = STRIP + (this.labels ? this.labels.stripExtra : 0);
    const areaTop = top + (this.labels && this.labels.stagger ? HEADER_STAGGERED : HEADER) + 10;
    const areaBottom = H - strip - 14;
    const areaH = Math.max(60, areaBottom - areaTop);
    const spacing = n > 1 ? (W - LEFT - RIGHT) / (n - 1) : 0;
    this.colSpacing = spacing;
    const is2d = this.info ? this.info.input_kind === "2d" : true;
    this.cols.forEach((c, i) => {
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
    for (const g of this.gaps) {
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
    this.edgeCount = this.gaps.reduce((s, g) => s + g.count, 0);
    this.useCanvasEdges = this.edgeCount > SVG_EDGE_LIMIT;
    this.stripTop = H - strip;
  }

  // ------------------------------------------------------------------ labels that fit

  /** Width in px of `text` drawn with SVG class `cls` (0 while the view is not rendered). */
  textWidth(cls, text) {
    const cache = this.widths || (this.widths = new Map());
    const key = `${cls}|${text}`;
    if (cache.has(key)) return cache.get(key);
    const t = svg("text", { class: cls, x: 0, y: -100 });
    t.textContent = text;
    this.topSvg.append(t);
    const w = t.getComputedTextLength();
    t.remove();
    if (w > 0) cache.set(key, w);
    return w;
  }

  /** Title and sub-title of a column's header at one of three lengths. */
  headerText(c, length) {
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
  labelsFit(widths, rows) {
    const last = new Array(rows).fill(-Infinity);
    for (let k = 0; k < this.cols.length; k++) {
      const c = this.cols[k];
      const row = k % rows;
      const w = widths[k];
      if (c.x - w / 2 < 2 || c.x + w / 2 > this.width - 2) return false;
      if (c.x - w / 2 < last[row] + LABEL_GAP) return false;
      last[row] = c.x + w / 2;
    }
    return true;
  }

  /** Choose header texts and rows, and whether stat and gradient labels take two rows. */
  planLabels() {
    const variants = [["full", 1], ["narrow", 1], ["narrow", 2], ["compact", 2]];
    let plan = null;
    for (const [length, rows] of variants) {
      const texts = this.cols.map((c) => this.headerText(c, length));
      const widths = texts.map(([t, sub]) => Math.max(this.textWidth("col-title", t), this.textWidth("col-sub", sub)));
      plan = { length, rows, texts };
      if (this.labelsFit(widths, rows)) break;
    }
    const step = this.cols.length > 1 ? this.cols[1].x - this.cols[0].x : this.width;
    const fits = (cls, text, rows) => this.textWidth(cls, text) + LABEL_GAP <= step * rows;
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

  /** "Showing 16 of 24 hidden layers" when the width left columns out (hidden otherwise). */
  showCapNote() {
    const sk = this.skipped;
    this.root.dataset.hiddenLayers = String(sk ? sk.hidden : Math.max(0, this.cols.length - 2));
    this.root.dataset.drawnLayers = String(sk ? sk.drawn : Math.max(0, this.cols.length - 2));
    this.note.hidden = !sk;
    if (!sk) return;
    const names = sk.names.length > 1 ? `L${sk.names[0]}–L${sk.names[sk.names.length - 1]} are` : `L${sk.names[0]} is`;
    this.note.textContent = `Showing ${sk.drawn} of ${sk.hidden} hidden layers: ${names} left out at this width. The charts show all layers.`;
  }

  /** A band where columns were left out, with how many. */
  drawSkip(top, c) {
    const next = this.cols[c.index + 1];
    const x0 = c.x + c.w / 2 + 3;
    const x1 = next.x - next.w / 2 - 3;
    const y0 = (this.skipped ? NOTE_H : 0) + (this.labels.stagger ? HEADER_STAGGERED : HEADER) + 10;
    const y1 = this.stripTop - 16;
    top.append(svg("rect", { x: x0, y: y0, width: Math.max(2, x1 - x0), height: y1 - y0, rx: 4, class: "skip-band", id: "skip-band", "data-count": c.skipAfter }));
    const t = svg("text", { class: "skip-label", "text-anchor": "middle", transform: `translate(${((x0 + x1) / 2 + 4).toFixed(1)},${((y0 + y1) / 2).toFixed(1)}) rotate(-90)` });
    t.textContent = `${c.skipAfter} layer${c.skipAfter === 1 ? "" : "s"} not drawn`;
    top.append(t);
  }

  /** Weights and gradient magnitudes per drawn edge, from the snapshot (or explainer override). */
  computeGapValues() {
    const snap = this.snap;
    for (const g of this.gaps) {
      g.w.fill(0);
      g.gl.fill(0);
      g.hasWeights = false;
      if (!snap) continue;
      if (g.mode === "conv") {
        const conv = snap.conv && snap.conv[g.name];
        if (conv && conv.filters) {
          for (let j = 0; j < g.nj; j++) {
            const f = flat(conv.filters[j]);
            let s = 0;
            for (const v of f) s += v;
            g.w[j] = f.length ? (s / f.length) * 3 : 0;
            g.gl[j] = glowOf(conv.filter_grad_norm ? conv.filter_grad_norm[j] : 0);
          }
          g.hasWeights = true;
        }
        continue;
      }
      const W = snap.weights && snap.weights[`${g.name}.W`];
      const G = snap.grads && snap.grads[`${g.name}.W`];
      if (W) g.hasWeights = true;
      if (g.mode === "full") {
        for (let i = 0; i < g.ni; i++) {
          const wr = W && W[i];
          const gr = G && G[i];
          for (let j = 0; j < g.nj; j++) {
            const e = i * g.nj + j;
            if (wr) g.w[e] = wr[j];
            if (gr) g.gl[e] = glowOf(gr[j]);
          }
        }
      } else if (W || G) {
        // bundles: one edge per unit of the small side, showing the RMS of its weights, signed by the mean
        const rows = (W || G).length;
        const colsN = (W || G)[0] ? (W || G)[0].length : 0;
        for (let e = 0; e < g.count; e++) {
          let sw = 0;
          let sw2 = 0;
          let sg2 = 0;
          let n = 0;
          if (g.mode === "in") {
            for (let i = 0; i < rows; i++) {
              if (W) { sw += W[i][e]; sw2 += W[i][e] * W[i][e]; }
              if (G) sg2 += G[i][e] * G[i][e];
              n++;
            }
          } else if (g.mode === "out") {
            for (let j = 0; j < colsN; j++) {
              if (W) { sw += W[e][j]; sw2 += W[e][j] * W[e][j]; }
              if (G) sg2 += G[e][j] * G[e][j];
              n++;
            }
          }
          if (n) {
            g.w[e] = Math.sign(sw) * Math.sqrt(sw2 / n) * 2;
            g.gl[e] = glowOf(Math.sqrt(sg2 / n));
          }
        }
      }
    }
  }

  // ------------------------------------------------------------------ build DOM

  build() {
    const r = this.root.getBoundingClientRect();
    this.width = Math.max(200, r.width);
    this.height = Math.max(200, r.height);
    if (!this.config) return;
    const cursor = this.cursor; // a resize (the explainer opening, say) keeps the keyboard's place
    this.buildModel();
    this.labels = null;
    this.layout(); // column x positions do not depend on the label plan, the heights do
    this.labels = this.planLabels();
    this.layout();
    this.computeGapValues();
    this.showCapNote();
    const W = this.width;
    const H = this.height;
    for (const s of [this.edgeSvg, this.topSvg]) {
      s.replaceChildren();
      s.setAttribute("width", W);
      s.setAttribute("height", H);
      s.setAttribute("viewBox", `0 0 ${W} ${H}`);
    }
    this.edgeCtx = fitCanvas(this.edgeCanvas, W, H);
    this.paintCtx = fitCanvas(this.paintCanvas, W, H);
    this.mapCtx = fitCanvas(this.mapBuffer, W, H);
    this.edgeCtx.clearRect(0, 0, W, H);
    this.root.dataset.edges = this.useCanvasEdges ? "canvas" : "svg";
    this.edgeCanvas.hidden = !this.useCanvasEdges;
    this.edgeSvg.style.setProperty("display", this.useCanvasEdges ? "none" : "block");
    this.root.dataset.edgeCount = String(this.edgeCount);

    // edges (SVG mode): one path per edge, restyled by id later
    if (!this.useCanvasEdges) {
      for (const g of this.gaps) {
        g.paths = [];
        const xm = (g.x0 + g.x1) / 2;
        for (let e = 0; e < g.count; e++) {
          const y0 = g.y0[e];
          const y1 = g.y1[e];
          const p = svg("path", {
            id: `edge-${g.name}-${Math.floor(e / g.nj)}-${e % g.nj}`,
            class: "edge",
            d: `M${g.x0.toFixed(1)},${y0.toFixed(1)} C${xm.toFixed(1)},${y0.toFixed(1)} ${xm.toFixed(1)},${y1.toFixed(1)} ${g.x1.toFixed(1)},${y1.toFixed(1)}`,
            "data-layer": g.name,
            "data-i": Math.floor(e / g.nj),
            "data-j": e % g.nj,
          });
          g.paths.push(p);
          this.edgeSvg.append(p);
        }
      }
    }

    const top = this.topSvg;
    // gradient meter: axis with decades, then one bar per column with parameters
    const strip = svg("g", { class: "grad-strip" });
    const labels = this.labels;
    const sTop = this.stripTop + 18 + labels.stripExtra;
    const sBot = H - 16;
    this.stripRange = [sTop, sBot];
    for (let d = -8; d <= 2; d += 2) {
      const y = sBot - ((d + 8) / 10) * (sBot - sTop);
      strip.append(svg("line", { x1: LEFT - 6, x2: W - 10, y1: y, y2: y, class: d === 0 ? "grid-line grid-one" : "grid-line" }));
      if (d % 4 !== 0 && d !== 2) continue;
      const t = svg("text", { x: LEFT - 10, y: y + 3, class: "axis-label", "text-anchor": "end" });
      t.textContent = d === 0 ? "1" : `1e${d}`;
      strip.append(t);
    }
    const title = svg("text", { x: 6, y: this.stripTop + 8, class: "strip-title" });
    // the whole title when it ends before the first column's stat and gradient labels can start
    const first = this.cols.find((c) => c.name);
    const statWorst = labels.stat === "both" ? "dead 100% · sat 100%" : labels.stat === "one" ? "dead 100%" : "100%";
    const labelW = Math.max(this.textWidth("col-stat", statWorst), this.textWidth("gradbar-label", "1.2e-10"));
    const room = first ? first.x - labelW / 2 - LABEL_GAP : W;
    const full = "‖∂L/∂W‖ per layer";
    title.textContent = 6 + this.textWidth("strip-title", full) <= room ? full : "‖∂L/∂W‖";
    const tip = svg("title");
    tip.textContent = "gradient norm of each layer's weights, log scale";
    title.append(tip);
    strip.append(title);
    top.append(strip);
    this.bars = [];
    let mainBars = 0;
    for (const c of this.cols) {
      if (!c.name) continue;
      const barRow = labels.barRows === 2 ? mainBars++ % 2 : 0; // the first bar's value stays clear of the strip title
      const names = [c.name, ...c.tags.filter((t) => t.type === "batchnorm").map((t) => t.name)];
      names.forEach((name, k) => {
        const bx = c.x - 7 + k * 16;
        const track = svg("rect", { x: bx, y: sTop, width: 12, height: sBot - sTop, class: "gradbar-track", rx: 2 });
        const bar = svg("rect", { x: bx, y: sBot, width: 12, height: 0, class: k > 0 ? "gradbar gradbar-bn" : "gradbar", id: `gradbar-${name}`, "data-layer": name, rx: 2 });
        // batch-norm bars sit beside their dense layer's bar; their value shows on hover only
        const label = svg("text", { x: bx + 6, y: sTop - 4 - barRow * BAR_LABEL_ROW, class: k > 0 ? "gradbar-label bn" : "gradbar-label", "text-anchor": "middle" });
        // shown while the layer's gradients are being clipped
        const flag = svg("text", { x: bx + 6, y: sBot + 11, class: "clip-flag", "text-anchor": "middle", id: `clipflag-${name}`, "data-layer": name, "data-clipped": "no" });
        flag.textContent = "✂ clipped";
        top.append(track, bar, label, flag);
        this.bars.push({ name, bar, label, flag, top: sTop, bottom: sBot, bn: k > 0 });
      });
    }

    // columns: header, tags, nodes
    this.nodeEls = [];
    this.colStats = [];
    this.filterBars = [];
    const headTop = this.skipped ? NOTE_H : 0;
    if (labels.stat === "number") {
      // bare percentages under the columns: say once, at the left, what they count
      const acts = new Set(this.cols.map((c) => c.activation));
      const relu = acts.has("relu") || acts.has("leaky_relu");
      const squash = acts.has("sigmoid") || acts.has("tanh");
      const legend = svg("text", { x: 6, y: this.stripTop - 5, class: "col-stat", id: "colstat-legend" }); // clear of the strip title
      legend.textContent = relu && squash ? "% dead / sat" : relu ? "% dead" : "% saturated";
      top.append(legend);
    }
    for (const c of this.cols) {
      if (c.name && (c.kind === "dense" || c.kind === "conv")) {
        // dead / saturated share of the layer's units, under its nodes (second row below the first)
        const row = labels.statRows === 2 ? this.colStats.length % 2 : 0;
        const t = svg("text", { x: c.x, y: this.stripTop - 3 + row * STAT_ROW, class: "col-stat", "text-anchor": "middle", id: `colstat-${c.name}`, "data-layer": c.name });
        top.append(t);
        this.colStats.push({ col: c, text: t });
      }
      const row = labels.stagger ? c.index % 2 : 0;
      const [titleText, subText] = labels.header.texts[c.index];
      const h = svg("text", { x: c.x, y: headTop + (labels.stagger ? 14 + row * 29 : 16), class: "col-title", "text-anchor": "middle" });
      h.textContent = titleText;
      const sub = svg("text", { x: c.x, y: headTop + (labels.stagger ? 28 + row * 29 : 30), class: "col-sub", "text-anchor": "middle" });
      sub.textContent = subText;
      const header = svg("g", { class: "col-header", "data-col": c.index, "data-layer": c.name ?? "input" });
      const [fullTitle, fullSub] = this.headerText(c, "full");
      const tip = svg("title");
      tip.textContent = `${c.name !== null ? `L${c.name}: ` : ""}${fullTitle}${fullSub ? ` · ${fullSub}` : ""}`;
      header.append(tip, h, sub);
      top.append(header);
      if (c.skipAfter) this.drawSkip(top, c);
      const els = [];
      if (c.bundle) {
        const b = c.bundleBox;
        top.append(svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 6, class: "bundle", id: `bundle-${c.index}` }));
        const t = svg("text", { x: c.x, y: b.y + b.h + 14, class: "bundle-label", "text-anchor": "middle" });
        t.textContent = `${c.units} ${c.kind === "conv" ? "filters" : "units"}`;
        top.append(t);
      } else {
        for (const node of c.nodes) {
          const x = node.x - c.w / 2;
          const y = node.y - c.s / 2;
          const frame = svg("rect", {
            x,
            y,
            width: c.w,
            height: c.s,
            rx: c.s > 12 ? 3 : 1.5,
            class: `node node-${c.kind}`,
            id: `node-${c.index}-${node.unit}`,
            "data-col": c.index,
            "data-unit": node.unit,
            "data-layer": c.name ?? "input",
          });
          top.append(frame);
          let bias = null;
          if ((c.kind === "dense" || c.kind === "conv") && c.s >= 10) {
            const bs = Math.max(4, Math.min(7, c.s * 0.22));
            bias = svg("rect", { x: x - bs - 1.5, y: y + c.s - bs, width: bs, height: bs, class: "bias", id: `bias-${c.index}-${node.unit}` });
            top.append(bias);
          }
          if (c.kind === "conv") {
            // per-filter gradient norm, relative to the layer's largest, right of the filter's map
            const bx = x + c.w + 3;
            const track = svg("rect", { x: bx, y, width: 4, height: c.s, class: "filter-gradbar-track", rx: 1 });
            const fbar = svg("rect", { x: bx, y: y + c.s, width: 4, height: 0, class: "filter-gradbar", rx: 1, id: `filterbar-${c.name}-${node.unit}`, "data-layer": c.name, "data-filter": node.unit });
            top.append(track, fbar);
            this.filterBars.push({ col: c, unit: node.unit, bar: fbar, y, s: c.s });
          }
          if (c.kind === "image") {
            const cap = svg("text", { x: node.x, y: node.y + c.s / 2 + 13, class: "image-caption", "text-anchor": "middle", id: "image-caption" });
            cap.textContent = "this sample →";
            const cap2 = svg("text", { x: node.x, y: node.y + c.s / 2 + 25, class: "image-caption", "text-anchor": "middle" });
            cap2.textContent = "its feature maps";
            top.append(cap, cap2);
          }
          if (c.kind === "input" && c.s >= 12) {
            const t = svg("text", { x: x - 6, y: node.y + 4, class: "feature-label", "text-anchor": "end" });
            t.textContent = FEATURE_LABELS[c.features[node.unit]] || c.features[node.unit];
            top.append(t);
          }
          els.push({ frame, bias });
        }
      }
      this.nodeEls.push(els);
    }
    this.valueGroup = svg("g", { class: "values" });
    this.highlight = svg("path", { class: "edge-highlight", d: "" });
    top.append(this.valueGroup, this.highlight);
    this.dirty.build = false;
    this.dirty.weights = this.dirty.maps = this.dirty.bars = this.dirty.explain = true;
    this.glowDrawn = false;
    this.lastGlow = 0;
    this.cursor = null;
    if (cursor && document.activeElement === this.root) this.moveCursor(cursor.gap, cursor.item);
    else if (cursor) this.setHover(null, null);
  }

  // ------------------------------------------------------------------ render (called every frame)

  render(now = performance.now()) {
    if (this.dirty.build) this.build();
    if (!this.cols.length) return;
    if (this.dirty.weights) this.drawEdges();
    if (this.dirty.maps) this.drawMaps();
    if (this.dirty.bars) this.drawBars();
    if (this.dirty.explain) this.drawExplain();
    this.drawGlow(now);
  }

  edgeWeights(g) {
    const o = this.explain && this.explain.weights && this.explain.weights[g.index];
    return o || g.w;
  }

  drawEdges() {
    this.dirty.weights = false;
    const rgb = [0, 0, 0];
    if (!this.useCanvasEdges) {
      for (const g of this.gaps) {
        const w = this.edgeWeights(g);
        for (let e = 0; e < g.count; e++) {
          const p = g.paths[e];
          if (!g.hasWeights && !(this.explain && this.explain.weights)) {
            setAttr(p, "stroke", "#c9ced3");
            setAttr(p, "stroke-width", "0.8");
            continue;
          }
          divergingRGB(w[e], rgb);
          setAttr(p, "stroke", rgbCss(rgb));
          setAttr(p, "stroke-width", edgeWidth(w[e]).toFixed(2));
        }
      }
      return;
    }
    // canvas: bucket edges by colour and width so each bucket is one stroke
    const ctx = this.edgeCtx;
    ctx.clearRect(0, 0, this.width, this.height);
    const buckets = new Map();
    for (const g of this.gaps) {
      const w = this.edgeWeights(g);
      for (let e = 0; e < g.count; e++) {
        const v = g.hasWeights ? w[e] : 0;
        const tone = Math.round(Math.max(-1, Math.min(1, v)) * 6); // -6..6
        const width = Math.round(edgeWidth(v) * 2) / 2;
        const key = tone * 100 + width * 2;
        let b = buckets.get(key);
        if (!b) buckets.set(key, (b = { tone, width, list: [] }));
        b.list.push(g, e);
      }
    }
    for (const b of buckets.values()) {
      divergingRGB(b.tone / 6, rgb);
      ctx.strokeStyle = rgbCss(rgb, 0.9);
      ctx.lineWidth = b.width;
      ctx.beginPath();
      for (let k = 0; k < b.list.length; k += 2) {
        const g = b.list[k];
        const e = b.list[k + 1];
        const xm = (g.x0 + g.x1) / 2;
        ctx.moveTo(g.x0, g.y0[e]);
        ctx.bezierCurveTo(xm, g.y0[e], xm, g.y1[e], g.x1, g.y1[e]);
      }
      ctx.stroke();
    }
  }

  /** Per-neuron heatmaps (2-D data), activation fills, conv filters and feature maps. */
  drawMaps() {
    this.dirty.maps = false;
    this.drawFilterBars();
    this.composeNeeded = true;
    const ctx = this.mapCtx;
    ctx.clearRect(0, 0, this.width, this.height);
    const snap = this.snap;
    const grid = snap && snap.grid;
    const rgb = [0, 0, 0];
    const explainVals = this.explain && this.explain.values;
    for (const c of this.cols) {
      if (c.bundle) continue;
      const els = this.nodeEls[c.index];
      if (c.kind === "image") {
        const node = c.nodes[0];
        const img = (!this.explain && this.snapshotImage()) || this.inputImage;
        if (img) this.paintImage(ctx, img, node.x - c.s / 2, node.y - c.s / 2, c.s, c.s, "grey");
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
            this.paintImage(ctx, k, x, y, c.s, c.s, "diverging");
          }
          const traced = this.explain && this.explain.featureMaps ? this.explain.featureMaps[c.index] : null;
          const maps = traced || (conv && conv.feature_maps);
          if (maps && maps[node.unit]) this.paintImage(ctx, maps[node.unit], x + c.s + 4, y, c.s, c.s, "grey");
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
          const t = this.explain.kind === "δ" ? Math.sign(v) * logPos(v, 1e-6, 1) : this.scaleFor(c, v, 1);
          divergingRGB(t, rgb);
          ctx.fillStyle = rgbCss(rgb);
          ctx.fillRect(x, y, c.s, c.s);
        } else if (grid && c.kind === "input" && c.s >= 8) {
          const map = grid.inputs && grid.inputs[c.features[node.unit]];
          if (map) this.paintNeuron(ctx, map, "input", x, y, c.s);
          else this.paintFeature(ctx, grid, c.features[node.unit], x, y, c.s);
        } else if (neuronMaps && neuronMaps[node.unit] && c.s >= 8) {
          this.paintNeuron(ctx, neuronMaps[node.unit], c.activation, x, y, c.s);
        } else if (c.output && grid && Array.isArray(grid.classes) && grid.classes.length === c.units && grid.classes[node.unit] && c.s >= 8) {
          // multi-class output: each unit's map over the plane, in its class's colour (as the data
          // view's legend); raw (non-probability) outputs keep the diverging scale of other neurons
          const map = grid.classes[node.unit];
          if (grid.class_values === "probability") {
            const col = classColor(node.unit, c.units);
            this.paintGrid(ctx, map.length, (r, k) => map[r][k], x, y, c.s, (v, out) => tintRGB(col, v, out));
          } else this.paintNeuron(ctx, map, c.activation, x, y, c.s);
        } else if (c.output && grid && grid.output && c.units === 1 && c.s >= 8) {
          this.paintNeuron(ctx, grid.output, c.activation, x, y, c.s);
        } else if (c.output && grid && grid.output && c.units === 2 && c.s >= 8 && this.config.loss === "cross_entropy") {
          // two-class softmax: the engine's map is p1 - p0; unit 1 shows it, unit 0 its negation
          const sign = node.unit === 1 ? 1 : -1;
          this.paintGrid(ctx, grid.output.length, (r, k) => sign * grid.output[r][k], x, y, c.s);
        } else if (snap && snap.nodes && c.name && snap.nodes[c.name]) {
          const a = snap.nodes[c.name].activation;
          const v = a ? a[node.unit] : 0;
          divergingRGB(this.scaleFor(c, v, 1), rgb);
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
        const eb = this.explain && this.explain.biases ? this.explain.biases[c.index] : null;
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
  snapshotImage() {
    const conv = this.snap && this.snap.conv;
    if (!conv) return null;
    const first = this.cols.find((c) => c.kind === "conv");
    const entry = first && conv[first.name];
    const img = entry && entry.input;
    if (!Array.isArray(img) || !img.length) return null;
    return Array.isArray(img[0]) && Array.isArray(img[0][0]) ? (img.length === 1 ? img[0] : meanChannels(img)) : img;
  }

  /** Per-filter gradient bars from the snapshot's conv entries. */
  drawFilterBars() {
    const snap = this.snap;
    const max = {};
    for (const fb of this.filterBars || []) {
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
  scaleFor(c, v, maxAbs) {
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

  paintNeuron(ctx, map, activation, x, y, s) {
    const res = map.length;
    let maxAbs = 0;
    if (activation !== "tanh" && activation !== "sigmoid") {
      for (const row of map) for (const v of row) if (Math.abs(v) > maxAbs) maxAbs = Math.abs(v);
    }
    const c = { kind: "dense", activation };
    this.paintGrid(ctx, res, (r, k) => this.scaleFor(c, map[r][k], maxAbs), x, y, s);
  }

  paintFeature(ctx, grid, feature, x, y, s) {
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
    this.paintGrid(ctx, res, (r, k) => vals[r * res + k] / (maxAbs || 1), x, y, s);
  }

  /**
   * Paint a res x res grid (row 0 = lowest y, drawn at the bottom) into the square at x, y; each
   * value becomes a colour through colorOf(v, rgb) (default: the orange-grey-blue scale of [-1, 1]).
   */
  paintGrid(ctx, res, valueAt, x, y, s, colorOf = divergingRGB) {
    const off = this.offscreen;
    if (off.width !== res || off.height !== res) {
      off.width = res;
      off.height = res;
    }
    const octx = off.getContext("2d");
    if (!this.gridImage || this.gridImage.width !== res) this.gridImage = octx.createImageData(res, res);
    const img = this.gridImage;
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
  paintImage(ctx, arr, x, y, w, h, mode) {
    const rows = arr.length;
    const cols = rows ? arr[0].length : 0;
    if (!rows || !cols) return;
    const off = this.offscreen;
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

  drawBars() {
    this.dirty.bars = false;
    for (const b of this.bars || []) {
      const st = this.layerStats[b.name];
      const v = st ? st.grad_norm : null;
      const t = v === null || v === undefined ? 0 : logPos(v, GRAD_LO, GRAD_HI);
      const h = Math.max(0, t * (b.bottom - b.top));
      setAttr(b.bar, "y", (b.bottom - h).toFixed(1));
      setAttr(b.bar, "height", h.toFixed(1));
      const state = v === null || v === undefined ? "none" : !Number.isFinite(v) || v > 100 ? "exploding" : v < 1e-6 ? "vanishing" : "ok";
      setAttr(b.bar, "data-state", state);
      setAttr(b.bar, "data-value", v === null || v === undefined ? "" : String(v));
      setText(b.label, v === null || v === undefined ? "" : fmt(v, 2));
      setAttr(b.flag, "data-clipped", st && st.clipped ? "yes" : "no");
      setAttr(b.bar, "data-clipped", st && st.clipped ? "yes" : "no");
    }
    for (const { col, text } of this.colStats || []) {
      const st = this.layerStats[col.name];
      let label = "";
      let level = "ok";
      let share = 0;
      if (st) {
        const dead = st.dead_fraction;
        const sat = st.saturated_fraction;
        const relu = col.activation === "relu" || col.activation === "leaky_relu";
        const squash = col.activation === "sigmoid" || col.activation === "tanh";
        const bits = [];
        let top = null; // [share, text] of the larger one
        if (typeof dead === "number" && (relu || dead > 0)) {
          bits.push(`dead ${pctText(dead)}`);
          share = Math.max(share, dead);
          top = [dead, bits[bits.length - 1]];
        }
        if (typeof sat === "number" && (squash || sat > 0)) {
          bits.push(`sat ${pctText(sat)}`);
          share = Math.max(share, sat);
          if (!top || sat > top[0]) top = [sat, bits[bits.length - 1]];
        }
        // as much as the column spacing leaves room for (planLabels); the tooltip has both
        const mode = this.labels ? this.labels.stat : "both";
        label = mode === "both" || !top ? bits.join(" · ") : mode === "one" ? top[1] : pctText(top[0]);
        level = share >= 0.5 ? "bad" : share >= 0.2 ? "warn" : "ok";
        setAttr(text, "data-dead", typeof dead === "number" ? String(dead) : "");
        setAttr(text, "data-saturated", typeof sat === "number" ? String(sat) : "");
      }
      setText(text, label);
      setAttr(text, "data-level", level);
    }
  }

  /** Pulse / explainer glow: edges and node rings, all on one canvas (no DOM writes per frame). */
  drawGlow(now) {
    const glow = this.glow;
    const ctx = this.paintCtx;
    if (!glow) {
      if (this.glowDrawn || this.composeNeeded) {
        this.compose(ctx);
        this.glowDrawn = false;
      }
      return;
    }
    if (!glow.changed && this.glowDrawn && !this.composeNeeded) return;
    if (this.glowDrawn && !this.composeNeeded && now - this.lastGlow < GLOW_MIN_MS) return; // <= ~30 repaints/s
    this.lastGlow = now;
    glow.changed = false;
    this.glowDrawn = true;
    this.compose(ctx);
    const color = glow.mode === "forward" ? FWD_GLOW : BWD_GLOW;
    // edges, bucketed by quantised alpha; backward uses each edge's |dL/dw|, forward a uniform sweep.
    // Wide gaps glow only their strongest edges, so a 64x64 gap costs what a small one does.
    const levels = 6;
    const lists = Array.from({ length: levels }, () => []);
    for (const g of this.gaps) {
      const env = glow.gapEnv ? glow.gapEnv[g.index] : 0;
      if (!(env > 0.02)) continue;
      const base = glow.mode === "backward" ? (glow.edgeBase && glow.edgeBase[g.index]) || g.gl : null;
      const floor = base ? topThreshold(base, GLOW_EDGE_CAP) : 0;
      const stride = !base && g.count > GLOW_EDGE_CAP ? Math.ceil(g.count / GLOW_EDGE_CAP) : 1;
      for (let e = 0; e < g.count; e += stride) {
        const b = base ? base[e] : 0.55;
        if (base && b < floor) continue;
        const a = b * env;
        if (a < 0.08) continue;
        const q = Math.min(levels - 1, Math.floor(a * levels));
        lists[q].push(g, e);
      }
    }
    ctx.lineCap = "round";
    lists.forEach((list, q) => {
      if (!list.length) return;
      ctx.strokeStyle = rgbCss(color, 0.12 + (q / (levels - 1)) * 0.6);
      ctx.lineWidth = 1.5 + q * 0.9;
      ctx.beginPath();
      for (let k = 0; k < list.length; k += 2) {
        const g = list[k];
        const e = list[k + 1];
        const xm = (g.x0 + g.x1) / 2;
        ctx.moveTo(g.x0, g.y0[e]);
        ctx.bezierCurveTo(xm, g.y0[e], xm, g.y1[e], g.x1, g.y1[e]);
      }
      ctx.stroke();
    });
    // node rings: a halo around each node, as bright as its activation (forward) or |delta| (backward)
    const rings = Array.from({ length: levels }, () => []);
    for (const c of this.cols) {
      const env = glow.colEnv ? glow.colEnv[c.index] : 0;
      if (!(env > 0.02)) continue;
      const base = glow.nodeBase ? glow.nodeBase[c.index] : null;
      if (c.bundle) {
        const a = env * (base ? base[0] ?? 0.6 : 1);
        if (a >= 0.05) rings[Math.min(levels - 1, Math.floor(a * levels))].push(c.bundleBox.x - 3, c.bundleBox.y - 3, c.bundleBox.w + 6, c.bundleBox.h + 6);
        continue;
      }
      for (const node of c.nodes) {
        const a = env * (base ? base[node.unit] ?? 0 : 1);
        if (a < 0.05) continue;
        rings[Math.min(levels - 1, Math.floor(a * levels))].push(node.x - c.w / 2 - 3, node.y - c.s / 2 - 3, c.w + 6, c.s + 6);
      }
    }
    rings.forEach((list, q) => {
      if (!list.length) return;
      ctx.strokeStyle = rgbCss(color, 0.25 + (q / (levels - 1)) * 0.75);
      ctx.lineWidth = 4;
      ctx.beginPath();
      for (let k = 0; k < list.length; k += 4) ctx.rect(list[k], list[k + 1], list[k + 2], list[k + 3]);
      ctx.stroke();
    });
  }

  /** The visible canvas = the neuron maps buffer (the glow is drawn over it by drawGlow). */
  compose(ctx) {
    this.composeNeeded = false;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.paintCanvas.width, this.paintCanvas.height);
    ctx.drawImage(this.mapBuffer, 0, 0);
    ctx.restore();
  }

  /** Values written beside nodes and the highlighted column / node of the explainer. */
  drawExplain() {
    this.dirty.explain = false;
    const ex = this.explain;
    this.valueGroup.replaceChildren();
    for (const els of this.nodeEls) for (const n of els) setAttr(n.frame, "data-highlight", "");
    this.root.dataset.explain = ex ? "on" : "off";
    if (!ex) return;
    for (const c of this.cols) {
      const vals = ex.values && ex.values[c.index];
      const els = this.nodeEls[c.index];
      if (ex.highlightCol === c.index) for (const n of els) setAttr(n.frame, "data-highlight", "col");
      if (!vals || c.bundle || c.kind === "image") continue;
      if (c.nodes.length > 16) continue;
      for (const node of c.nodes) {
        const v = vals[node.unit];
        if (v === undefined) continue;
        const t = svg("text", {
          x: node.x + c.w / 2 + 4,
          y: node.y - c.s / 2 + 2,
          class: `node-value kind-${ex.kind || "a"}`,
          "data-col": c.index,
          "data-unit": node.unit,
          "data-value": v,
        });
        t.textContent = fmt(v, 3);
        this.valueGroup.append(t);
      }
    }
    if (ex.highlightNode) {
      const { col, unit } = ex.highlightNode;
      const n = this.nodeEls[col] && this.nodeEls[col][unit];
      if (n) setAttr(n.frame, "data-highlight", "node");
    }
  }

  // ------------------------------------------------------------------ hit testing and hover

  localXY(e) {
    const r = this.root.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  onMove(e) {
    const [x, y] = this.localXY(e);
    const hit = this.hitTest(x, y);
    this.setHover(hit, e);
  }

  setHover(hit, e) {
    const same = JSON.stringify(hit) === JSON.stringify(this.hover);
    this.hover = hit;
    if (!same) this.drawHighlight(hit);
    if (this.handlers.onHover) this.handlers.onHover(hit, e);
  }

  /** Hit test at local x, y -> {kind: "node"|"bias"|"edge"|"bar", ...} or null. */
  hitTest(x, y) {
    for (const c of this.cols) {
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
    for (const b of this.bars || []) {
      const bx = Number(b.bar.getAttribute("x"));
      if (x >= bx - 2 && x <= bx + 14 && y >= b.top - 14 && y <= b.bottom) return { kind: "bar", layer: b.name };
    }
    for (const g of this.gaps) {
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

  drawHighlight(hit) {
    if (!this.highlight) return;
    const biasMark = hit && hit.kind === "bias" && this.nodeEls[hit.col] && this.nodeEls[hit.col][hit.unit] ? this.nodeEls[hit.col][hit.unit].bias : null;
    if (biasMark) {
      const x = Number(biasMark.getAttribute("x")) - 2;
      const y = Number(biasMark.getAttribute("y")) - 2;
      const w = Number(biasMark.getAttribute("width")) + 4;
      setAttr(this.highlight, "d", `M${x},${y} h${w} v${w} h${-w} Z`);
    } else if (hit && hit.kind === "edge") {
      const g = this.gaps[hit.gap];
      const xm = (g.x0 + g.x1) / 2;
      const y0 = g.y0[hit.e];
      const y1 = g.y1[hit.e];
      setAttr(this.highlight, "d", `M${g.x0},${y0} C${xm},${y0} ${xm},${y1} ${g.x1},${y1}`);
    } else {
      setAttr(this.highlight, "d", "");
    }
  }

  // ------------------------------------------------------------------ keyboard

  /** Gaps the keyboard walks: ones with edges to point at (not conv, not left-out columns). */
  keyGaps() {
    return this.gaps.filter((g) => g.count > 0 && g.mode !== "conv" && g.mode !== "skip");
  }

  /** The k-th thing of a gap: its edges, then the bias of each unit it feeds. */
  keyItem(g, k) {
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

  keyItemCount(g) {
    const biases = g.to.kind === "dense" && !g.to.bundle && g.to.s >= 10 ? g.to.nodes.length : 0;
    return g.count + biases;
  }

  /** Arrow keys move a cursor over weights and biases (with the tooltip), Enter acts like a click. */
  onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    // only after keyboard focus: a mouse click leaves the arrows to the page (the explainer's steps)
    if (!this.cursor && !this.root.matches(":focus-visible")) return;
    const gaps = this.keyGaps();
    if (!gaps.length) return;
    let { gap, item } = this.cursor || { gap: 0, item: 0 };
    gap = Math.min(gap, gaps.length - 1);
    const count = (g) => this.keyItemCount(g);
    if (e.key === "Escape" && this.cursor) {
      this.cursor = null;
      this.setHover(null, null);
      e.preventDefault();
      return;
    }
    if (e.key === "Enter") {
      if (!this.cursor) return;
      const it = this.keyItem(gaps[gap], item);
      if (this.handlers.onClick) this.handlers.onClick(it.hit, this.clientPoint(it));
      e.preventDefault();
      return;
    }
    const moves = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1], PageDown: [0, 10], PageUp: [0, -10] };
    if (e.key === "Home") item = 0;
    else if (e.key === "End") item = count(gaps[gap]) - 1;
    else if (moves[e.key]) {
      if (this.cursor) {
        const [dg, di] = moves[e.key];
        gap += dg;
        item += di;
      }
    } else return;
    e.preventDefault();
    this.moveCursor(gap, item);
  }

  /** Put the keyboard cursor on item `item` of walkable gap `gap` (clamped), with its tooltip. */
  moveCursor(gap, item) {
    const gaps = this.keyGaps();
    if (!gaps.length) {
      this.cursor = null;
      return;
    }
    const g = Math.max(0, Math.min(gaps.length - 1, gap));
    const k = Math.max(0, Math.min(this.keyItemCount(gaps[g]) - 1, item));
    this.cursor = { gap: g, item: k };
    const it = this.keyItem(gaps[g], k);
    this.setHover(it.hit, this.clientPoint(it));
    this.readout.textContent = this.describe(it.hit);
  }

  /** A stand-in for a mouse event at a view-local point (the tooltip and popover place by it). */
  clientPoint({ x, y }) {
    const r = this.root.getBoundingClientRect();
    return { clientX: r.left + x, clientY: r.top + y, keyboard: true };
  }

  /** A sentence for screen readers about a weight or bias. */
  describe(hit) {
    const snap = this.snap;
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

  /** Centre of a node in page-local coordinates (for popovers). */
  nodeCenter(col, unit) {
    const c = this.cols[col];
    const n = c && (c.nodes[unit] || c.nodes[0]);
    return n ? { x: n.x, y: n.y } : null;
  }

  /** A point on edge (layer, i, j) at fraction u of its horizontal extent (for tests and popovers). */
  edgePoint(layerName, i, j, u = 0.3) {
    const g = this.gaps.find((gg) => gg.name === layerName);
    if (!g) return null;
    const e = g.mode === "full" ? i * g.nj + j : g.mode === "in" ? j : i;
    const t = tOfU(u);
    const s = 3 * t * t - 2 * t * t * t;
    return { x: g.x0 + (g.x1 - g.x0) * u, y: g.y0[e] + (g.y1[e] - g.y0[e]) * s };
  }
}

function pctText(v) {
  return v > 0 && v < 0.01 ? "<1%" : `${Math.round(v * 100)}%`;
}

/** The value of the cap-th largest entry (cached on the array): entries below it do not glow. */
function topThreshold(arr, cap) {
  if (arr.length <= cap) return 0;
  if (arr._thr !== undefined) return arr._thr;
  const sorted = Float32Array.from(arr).sort();
  arr._thr = sorted[arr.length - cap];
  return arr._thr;
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

export { BLUE, ORANGE };
