// "Explain a step": one sample traced through the network (POST /trace) and shown as frames the
// user can play, pause and step through: forward, loss, backward (the chain rule for one
// highlighted neuron, with the live numbers), update (w <- w - eta * dL/dw). The current phase is
// in #explainer[data-phase]; the words and numbers of each phase come from explainer_text.js.

import { renderText } from "./explainer_text.js";
import { clamp01, el, first, glowOf } from "./util.js";

const FRAME_MS = 1700;

export class Explainer {
  /**
   * @param {NetworkView} view
   * @param {{api, store, onState: Function}} deps  onState(active) when it opens or closes
   */
  constructor(view, deps) {
    this.view = view;
    this.api = deps.api;
    this.store = deps.store;
    this.onState = deps.onState || (() => {});
    this.box = document.getElementById("explainer");
    this.trace = null;
    this.frames = [];
    this.k = 0;
    this.playing = false;
    this.lastAdvance = 0;
    this.highlight = {}; // col -> unit chosen by the user
    this.sample = null;
    this.updateAnim = null;
    document.getElementById("ex-prev").addEventListener("click", () => this.go(this.k - 1, true));
    document.getElementById("ex-next").addEventListener("click", () => this.go(this.k + 1, true));
    document.getElementById("ex-play").addEventListener("click", () => this.togglePlay());
    document.getElementById("ex-close").addEventListener("click", () => this.close());
    document.getElementById("ex-random").addEventListener("click", () => this.openRandom());
    for (const chip of this.box.querySelectorAll("[data-phase-chip]")) {
      chip.addEventListener("click", () => {
        const k = this.frames.findIndex((f) => f.phase === chip.dataset.phaseChip);
        if (k >= 0) this.go(k, true);
      });
    }
  }

  get active() {
    return !!this.trace;
  }

  /** A random training sample of the open run (needs store.data). */
  randomSample() {
    const data = this.store.data;
    const split = data && data.train && data.train.x && data.train.x.length ? data.train : data && data.test;
    if (!split || !split.x || !split.x.length) return null;
    const i = Math.floor(Math.random() * split.x.length);
    return { x: split.x[i], y: split.y[i], split: split === data.train ? "train" : "test", index: i };
  }

  async openRandom() {
    const s = this.randomSample();
    if (!s) {
      this.showMessage("No data loaded for this run yet.");
      return;
    }
    await this.open(s);
  }

  showMessage(text) {
    this.box.hidden = false;
    document.getElementById("ex-text").replaceChildren(el("p", { class: "field-error", text }));
  }

  /** Trace one sample ({x, y}) and show its first frame. */
  async open(sample) {
    const session = this.store.session;
    if (!session) return;
    this.box.hidden = false;
    this.box.dataset.state = "loading";
    let trace;
    try {
      trace = await this.api.trace(session.id, [sample.x], [sample.y]);
    } catch (err) {
      this.box.dataset.state = "error";
      this.showMessage(`Could not trace this sample: ${err.message}`);
      return;
    }
    this.sample = sample;
    this.trace = trace;
    if (Array.isArray(sample.x) && Array.isArray(sample.x[0]) && Array.isArray(sample.x[0][0])) this.view.setInputImage(sample.x[0]);
    const opt = session.config && session.config.optimizer ? session.config.optimizer : {};
    this.lr = typeof trace.learning_rate === "number" ? trace.learning_rate : opt.learning_rate ?? 0.03;
    this.optimizer = opt.name || "sgd";
    this.loss = trace.loss_name || (session.config ? session.config.loss : "mse");
    this.box.dataset.state = "ready";
    this.box.dataset.sample = JSON.stringify(sample.x);
    this.box.dataset.target = JSON.stringify(sample.y);
    this.box.dataset.step = String(session.step);
    this.prepare();
    this.highlight = {};
    this.onState(true);
    this.go(0, false);
    this.playing = true;
    this.lastAdvance = performance.now();
    this.syncPlay();
  }

  close() {
    this.trace = null;
    this.frames = [];
    this.playing = false;
    this.updateAnim = null;
    this.box.hidden = true;
    this.box.dataset.phase = "";
    this.view.setExplain(null);
    this.view.glow = null;
    this.onState(false);
  }

  togglePlay() {
    if (!this.trace) return;
    this.playing = !this.playing;
    if (this.playing && this.k >= this.frames.length - 1) this.go(0, false);
    this.lastAdvance = performance.now();
    this.syncPlay();
  }

  syncPlay() {
    const b = document.getElementById("ex-play");
    b.textContent = this.playing ? "⏸ pause" : "▶ play";
    this.box.dataset.playing = this.playing ? "yes" : "no";
  }

  /** The trace entry of a config layer index (matched by name when the engine gives one). */
  layerOf(index) {
    const layers = this.trace.layers || [];
    return layers.find((l) => String(l.name) === String(index)) || layers[index] || null;
  }

  /** Per column: forward values, deltas, weights, gradients, from the trace. */
  prepare() {
    const cols = this.view.columnModel();
    const tr = this.trace;
    this.colData = cols.map((c) => {
      if (c.kind === "input") {
        const l0 = tr.layers && tr.layers[0];
        return { a: l0 ? first(l0.input) : [] };
      }
      if (c.kind === "image") return { a: null };
      const L = this.layerOf(c.layerIndex);
      if (!L) return { a: null };
      if (c.kind === "conv") {
        // per filter: the mean of its feature map and of its deltas (maps are too big to list)
        return { L, a: perFilterMean(first(L.output)), delta: perFilterMean(first(L.grad_preactivation)), conv: true, maps: first(L.output) };
      }
      return {
        L,
        a: first(L.output),
        z: first(L.preactivation),
        delta: first(L.grad_preactivation),
        dA: first(L.grad_output),
        fprime: L.derivative ? first(L.derivative) : null,
        input: first(L.input),
        W: L.W,
        b: L.b,
        gW: L.grad_W,
        gb: L.grad_b,
      };
    });
    // edge glow bases and weights for full gaps
    this.gapGlow = this.view.gaps.map((g) => {
      const d = this.colData[g.to.index];
      const out = new Float32Array(g.count);
      if (!d || !d.gW || g.mode !== "full") return out;
      for (let i = 0; i < g.ni; i++) for (let j = 0; j < g.nj; j++) out[i * g.nj + j] = glowOf(d.gW[i] ? d.gW[i][j] : 0);
      return out;
    });
    this.gapW = this.view.gaps.map((g) => {
      const d = this.colData[g.to.index];
      if (!d || !d.W || g.mode !== "full" || !Array.isArray(d.W[0])) return null;
      const w0 = new Float32Array(g.count);
      const w1 = new Float32Array(g.count);
      for (let i = 0; i < g.ni; i++) {
        for (let j = 0; j < g.nj; j++) {
          const w = d.W[i][j];
          w0[i * g.nj + j] = w;
          w1[i * g.nj + j] = w - this.lr * (d.gW ? d.gW[i][j] : 0);
        }
      }
      return { w0, w1, cur: new Float32Array(w0) };
    });
    let maxDelta = 0;
    for (const gw of this.gapW) if (gw) for (let e = 0; e < gw.w0.length; e++) maxDelta = Math.max(maxDelta, Math.abs(gw.w1[e] - gw.w0[e]));
    this.magnify = maxDelta > 0 ? Math.min(1e4, Math.max(1, 10 ** Math.floor(Math.log10(0.6 / maxDelta)))) : 1;
    const C = cols.length;
    const frames = [];
    for (let c = 0; c < C; c++) frames.push({ phase: "forward", col: c });
    frames.push({ phase: "loss", col: C - 1 });
    for (let c = C - 1; c >= 1; c--) if (cols[c].kind === "dense" || cols[c].kind === "conv") frames.push({ phase: "backward", col: c });
    frames.push({ phase: "update", col: C - 1 });
    this.frames = frames;
  }

  /** Default highlighted unit of a column: the user's choice, else the largest |value|. */
  unitFor(col, kind) {
    if (this.highlight[col] !== undefined) return this.highlight[col];
    const d = this.colData[col];
    const arr = d ? (kind === "delta" ? d.delta : d.a) : null;
    if (!arr || !arr.length) return 0;
    let best = 0;
    for (let u = 1; u < Math.min(arr.length, 64); u++) if (Math.abs(arr[u]) > Math.abs(arr[best])) best = u;
    return best;
  }

  /** The user clicked a node while explaining: make it the highlighted one and redraw. */
  pickNode(col, unit) {
    if (!this.trace || unit < 0) return;
    this.highlight[col] = unit;
    this.go(this.k, false);
  }

  go(k, user) {
    if (!this.trace) return;
    const n = this.frames.length;
    this.k = Math.max(0, Math.min(n - 1, k));
    if (user) {
      this.playing = false;
      this.syncPlay();
    }
    const f = this.frames[this.k];
    this.box.dataset.phase = f.phase;
    this.box.dataset.frame = String(this.k);
    this.box.dataset.frames = String(n);
    this.box.dataset.col = String(f.col);
    for (const chip of this.box.querySelectorAll("[data-phase-chip]")) {
      const idx = this.frames.findIndex((x) => x.phase === chip.dataset.phaseChip);
      const last = this.frames.map((x) => x.phase).lastIndexOf(chip.dataset.phaseChip);
      chip.dataset.state = this.k >= idx && this.k <= last ? "current" : this.k > last ? "done" : "todo";
    }
    this.renderFrame(f);
    this.lastAdvance = performance.now();
  }

  renderFrame(f) {
    const cols = this.view.columnModel();
    const C = cols.length;
    const values = {};
    const glow = { mode: "forward", nodeBase: [], edgeBase: [], colEnv: new Float32Array(C), gapEnv: new Float32Array(Math.max(0, C - 1)), changed: true };
    let kind = "a";
    let weights = null;
    let highlightNode = null;
    this.updateAnim = null;
    if (f.phase === "forward" || f.phase === "loss") {
      for (let c = 0; c <= Math.min(f.col, C - 1); c++) if (this.colData[c].a) values[c] = this.colData[c].a;
      for (let c = 0; c < C; c++) {
        glow.colEnv[c] = c === f.col ? 1 : c < f.col ? 0.25 : 0;
        const a = this.colData[c].a || [];
        const base = new Float32Array(Math.max(1, a.length));
        for (let u = 0; u < a.length; u++) base[u] = 0.3 + 0.7 * clamp01(Math.abs(a[u]));
        if (!a.length) base.fill(0.8);
        glow.nodeBase.push(base);
      }
      for (let g = 0; g < C - 1; g++) glow.gapEnv[g] = g === f.col - 1 ? 1 : 0;
      if (cols[f.col].kind !== "input" && cols[f.col].kind !== "image") highlightNode = { col: f.col, unit: this.unitFor(f.col, "a") };
    } else if (f.phase === "backward") {
      kind = "δ";
      for (let c = C - 1; c >= f.col; c--) if (this.colData[c].delta) values[c] = this.colData[c].delta;
      glow.mode = "backward";
      for (let c = 0; c < C; c++) {
        glow.colEnv[c] = c === f.col ? 1 : c > f.col ? 0.45 : 0;
        const d = this.colData[c].delta || [];
        const base = new Float32Array(Math.max(1, d.length));
        for (let u = 0; u < d.length; u++) base[u] = glowOf(d[u]);
        glow.nodeBase.push(base);
      }
      for (let g = 0; g < C - 1; g++) {
        glow.gapEnv[g] = g === f.col - 1 ? 1 : g > f.col - 1 ? 0.4 : 0;
        glow.edgeBase.push(this.gapGlow[g]);
      }
      highlightNode = { col: f.col, unit: this.unitFor(f.col, "delta") };
    } else if (f.phase === "update") {
      kind = "δ";
      for (let c = 0; c < C; c++) if (this.colData[c].delta) values[c] = this.colData[c].delta;
      weights = {};
      this.gapW.forEach((gw, g) => {
        if (gw) {
          gw.cur.set(gw.w0);
          weights[g] = gw.cur;
        }
      });
      this.updateAnim = { start: performance.now(), duration: 1400 };
      glow.mode = "backward";
      for (let c = 0; c < C; c++) glow.nodeBase.push(new Float32Array(1));
      for (let g = 0; g < C - 1; g++) {
        glow.gapEnv[g] = 0.5;
        glow.edgeBase.push(this.gapGlow[g]);
      }
    }
    const featureMaps = {};
    this.colData.forEach((d, c) => {
      if (d && d.maps) featureMaps[c] = d.maps;
    });
    this.view.setExplain({ values, kind, highlightCol: f.col, highlightNode, weights, featureMaps });
    this.view.glow = glow;
    renderText(this, f, highlightNode);
  }

  /** Per-frame work: autoplay and the update-phase edge animation. */
  frame(now) {
    if (!this.trace) return;
    if (this.updateAnim && this.view.explain && this.view.explain.weights) {
      const t = clamp01((now - this.updateAnim.start) / this.updateAnim.duration);
      const e = t < 0.5 ? 2 * t * t : 1 - (-2 * t + 2) ** 2 / 2;
      this.gapW.forEach((gw) => {
        if (!gw) return;
        for (let k = 0; k < gw.w0.length; k++) gw.cur[k] = gw.w0[k] + (gw.w1[k] - gw.w0[k]) * this.magnify * e;
      });
      this.view.dirty.weights = true;
      if (t >= 1) this.updateAnim = null;
    }
    if (this.playing && now - this.lastAdvance > FRAME_MS) {
      if (this.k >= this.frames.length - 1) {
        this.playing = false;
        this.syncPlay();
      } else {
        this.go(this.k + 1, false);
      }
    }
  }

  // ---------------------------------------------------------------- hover numbers (for the network tooltip, tooltip.js)

  /** Chain-rule numbers of an edge hit, or null when the trace has none for it. */
  edgeNumbers(hit) {
    if (!this.trace || hit.i < 0 || hit.j < 0) return null;
    const d = this.colData[hit.toCol];
    if (!d || !d.input || !d.delta || !d.gW || !Array.isArray(d.gW[0])) return null;
    const a = d.input[hit.i];
    const delta = d.delta[hit.j];
    return { a, delta, product: a * delta, grad: d.gW[hit.i][hit.j], w: d.W ? d.W[hit.i][hit.j] : null, lr: this.lr };
  }

  /** Forward and backward values of a node hit. */
  nodeNumbers(hit) {
    if (!this.trace || hit.unit < 0) return null;
    const d = this.colData[hit.col];
    if (!d) return null;
    return {
      a: d.a ? d.a[hit.unit] : null,
      z: d.z ? d.z[hit.unit] : null,
      delta: d.delta ? d.delta[hit.unit] : null,
      gb: d.gb ? first(d.gb)[hit.unit] : null,
      b: d.b ? first(d.b)[hit.unit] : null,
    };
  }
}

/** [filters][h][w] -> [filters] means. */
function perFilterMean(maps) {
  if (!Array.isArray(maps)) return null;
  return maps.map((m) => {
    const v = Array.isArray(m) ? m.flat(Infinity) : [m];
    return v.length ? v.reduce((s, x) => s + x, 0) / v.length : 0;
  });
}
