// The network drawing. Built once per architecture (and on resize); every later update only restyles
// elements found by id, through setAttr's cache, or repaints a canvas layer that is marked dirty.
//
// Layers, bottom to top:  edge canvas (many edges) | edge SVG (few edges) | glow canvas (pulse) |
// map canvas (neuron heatmaps, filters) | top SVG (node frames, bias marks, labels, gradient meter).
// Columns: the inputs, then one per dense or conv layer; pool, flatten, batchnorm and dropout layers
// are drawn as tags on the column before them. Column labels shorten and stagger over two rows to
// stay apart as columns get closer; past MIN_COL_STEP the middle columns are left out, with a note.
// With focus (Tab), the arrow keys walk the weights and biases and Enter acts like a click.
// Geometry lives in network_layout.js, the neuron maps in network_maps.js, the glow in
// network_glow.js, the mouse and keyboard in network_pointer.js.

import { drawGlow } from "./network_glow.js";
import { BAR_LABEL_ROW, HEADER, HEADER_STAGGERED, LABEL_GAP, LEFT, NOTE_H, STAT_ROW, buildModel, headerText, layout, planLabels, textWidth } from "./network_layout.js";
import { drawMaps } from "./network_maps.js";
import { drawHighlight, edgePoint, hitTest, moveCursor, onKey } from "./network_pointer.js";
import { divergingRGB, el, featureLabel, fitCanvas, flat, fmt, glowOf, logPos, rgbCss, setAttr, setText, svg } from "./util.js";

const GRAD_LO = 1e-8;
const GRAD_HI = 1e2;

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
      const hit = hitTest(this, ...this.localXY(e));
      if (hit && this.handlers.onClick) this.handlers.onClick(hit, e);
    });
    root.addEventListener("keydown", (e) => onKey(this, e));
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

  // ------------------------------------------------------------------ labels that fit

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
    buildModel(this);
    this.labels = null;
    layout(this); // column x positions do not depend on the label plan, the heights do
    this.labels = planLabels(this);
    layout(this);
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
    const labelW = Math.max(textWidth(this, "col-stat", statWorst), textWidth(this, "gradbar-label", "1.2e-10"));
    const room = first ? first.x - labelW / 2 - LABEL_GAP : W;
    const full = "‖∂L/∂W‖ per layer";
    title.textContent = 6 + textWidth(this, "strip-title", full) <= room ? full : "‖∂L/∂W‖";
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
      const [fullTitle, fullSub] = headerText(c, "full");
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
            t.textContent = featureLabel(c.features[node.unit]);
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
    if (cursor && document.activeElement === this.root) moveCursor(this, cursor.gap, cursor.item);
    else if (cursor) this.setHover(null, null);
  }

  // ------------------------------------------------------------------ render (called every frame)

  render(now = performance.now()) {
    if (this.dirty.build) this.build();
    if (!this.cols.length) return;
    if (this.dirty.weights) this.drawEdges();
    if (this.dirty.maps) drawMaps(this);
    if (this.dirty.bars) this.drawBars();
    if (this.dirty.explain) this.drawExplain();
    drawGlow(this, now);
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
    const hit = hitTest(this, x, y);
    this.setHover(hit, e);
  }

  setHover(hit, e) {
    const same = JSON.stringify(hit) === JSON.stringify(this.hover);
    this.hover = hit;
    if (!same) drawHighlight(this, hit);
    if (this.handlers.onHover) this.handlers.onHover(hit, e);
  }

  // ------------------------------------------------------------------ keyboard

  /** A point on edge (layer, i, j) at fraction u of its horizontal extent (for tests and popovers). */
  edgePoint(layerName, i, j, u = 0.3) {
    return edgePoint(this, layerName, i, j, u);
  }

  /** Centre of a node in page-local coordinates (for popovers). */
  nodeCenter(col, unit) {
    const c = this.cols[col];
    const n = c && (c.nodes[unit] || c.nodes[0]);
    return n ? { x: n.x, y: n.y } : null;
  }

}

function pctText(v) {
  return v > 0 && v < 0.01 ? "<1%" : `${Math.round(v * 100)}%`;
}
