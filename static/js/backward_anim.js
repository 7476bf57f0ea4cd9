// The backward pass, animated from real numbers.
//   LivePulse: each snapshot of a training run drives one sweep: forward (activations light up,
//     input to output), then backward (every edge and node glows with the log of its real gradient,
//     output to input). Snapshots that arrive mid-sweep are not queued: the next sweep uses the
//     newest one (animation frames are dropped, never data).
//   Explainer: "explain this step" for one sample, from POST /trace: forward, loss, backward (the
//     chain rule for one highlighted neuron with the live numbers), update (w <- w - eta * dL/dw),
//     as frames the user can play, pause and step through. The current phase is in
//     #explainer[data-phase]; the numbers are in elements with stable ids and data-value attributes.

import {
  activationDerivative,
  derivativeText,
  el,
  first,
  fmt,
  glowOf,
} from "./util.js";

function clamp01(v) {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Envelope of a wavefront at signed distance d (d > 0: already passed). */
function wave(d, lead, trail) {
  if (d >= 0) return clamp01(1 - d / trail);
  return clamp01(1 + d / lead);
}

export class LivePulse {
  constructor(view) {
    this.view = view;
    this.enabled = true;
    this.active = null; // {start, tf, tb, nodeF, nodeB}
    this.pending = false;
    this.lastEnd = 0;
    this.count = 0; // sweeps played (tests read it via data-pulses)
  }

  /** A new snapshot arrived: play a sweep now if idle, else after the current one. */
  trigger() {
    if (!this.enabled) return;
    this.pending = true;
  }

  stop() {
    this.active = null;
    this.pending = false;
    if (!this.view.explain) this.view.glow = null;
  }

  begin(now) {
    const view = this.view;
    const cols = view.columnModel();
    const snap = view.snap;
    if (!cols.length || !snap) return;
    const C = cols.length;
    const nodeF = [];
    const nodeB = [];
    for (const c of cols) {
      const n = c.nodes ? c.nodes.length : 0;
      const f = new Float32Array(Math.max(1, n));
      const b = new Float32Array(Math.max(1, n));
      const st = c.name && snap.nodes ? snap.nodes[c.name] : null;
      if (c.bundle || c.kind === "image" || c.kind === "conv") {
        f.fill(0.8);
        const conv = snap.conv && snap.conv[c.name];
        if (conv && conv.filter_grad_norm) conv.filter_grad_norm.forEach((g, k) => k < b.length && (b[k] = glowOf(g)));
        else if (st && st.delta) b.fill(glowOf(st.delta.reduce((s, v) => s + Math.abs(v), 0) / st.delta.length));
      } else if (c.kind === "input") {
        f.fill(0.7);
      } else if (st) {
        let max = 0;
        for (const v of st.activation || []) max = Math.max(max, Math.abs(v));
        const scale = c.activation === "tanh" || c.activation === "sigmoid" ? 1 : Math.max(max, 1e-9);
        for (let u = 0; u < n; u++) {
          f[u] = 0.25 + 0.75 * clamp01(Math.abs((st.activation || [])[u] ?? 0) / scale);
          b[u] = glowOf((st.delta || [])[u] ?? 0);
        }
      }
      nodeF.push(f);
      nodeB.push(b);
    }
    const tf = Math.min(700, Math.max(320, 130 * C));
    const tb = Math.min(1100, Math.max(520, 210 * C));
    this.active = { start: now, tf, tb, fade: 380, nodeF, nodeB, C };
    this.count += 1;
    view.root.dataset.pulses = String(this.count);
    view.glow = { mode: "forward", nodeBase: nodeF, edgeBase: null, colEnv: new Float32Array(C), gapEnv: new Float32Array(Math.max(0, C - 1)), changed: true };
  }

  /** Advance the sweep; called once per animation frame. */
  frame(now) {
    const view = this.view;
    if (view.explain) return; // the explainer owns the glow
    if (!this.active) {
      if (this.pending && this.enabled && now - this.lastEnd > 120) {
        this.pending = false;
        this.begin(now);
      }
      if (!this.active) return;
    }
    const a = this.active;
    const g = view.glow;
    if (!g || g.colEnv.length !== a.C) {
      this.active = null;
      return;
    }
    const t = now - a.start;
    const C = a.C;
    if (t < a.tf) {
      const p = (t / a.tf) * (C - 0.5);
      g.mode = "forward";
      g.nodeBase = a.nodeF;
      for (let c = 0; c < C; c++) g.colEnv[c] = wave(p - c, 0.5, 1.6);
      for (let k = 0; k < C - 1; k++) g.gapEnv[k] = wave(p - (k + 0.5), 0.6, 0.9);
    } else if (t < a.tf + a.tb + a.fade) {
      const tt = t - a.tf;
      const p = (C - 1) - (Math.min(tt, a.tb) / a.tb) * (C - 0.5); // moves from the output to the input
      const fade = tt > a.tb ? 1 - (tt - a.tb) / a.fade : 1;
      g.mode = "backward";
      g.nodeBase = a.nodeB;
      for (let c = 0; c < C; c++) g.colEnv[c] = wave(c - p, 0.5, 2.2) * fade;
      for (let k = 0; k < C - 1; k++) g.gapEnv[k] = wave(k + 0.5 - p, 0.6, 2.2) * fade;
    } else {
      this.active = null;
      this.lastEnd = now;
      view.glow = null;
      return;
    }
    g.changed = true;
  }
}

// ------------------------------------------------------------------------------ explainer

const PHASE_TITLES = { forward: "Forward pass", loss: "Loss", backward: "Backward pass", update: "Update" };
const FRAME_MS = 1700;

/** HTML-free formula building: spans with ids and data-value so tests can read the numbers. */
function num(id, value, cls = "") {
  const attrs = { class: `num ${cls}`.trim(), "data-value": String(value) };
  if (id) attrs.id = id;
  return el("span", attrs, [fmt(value, 4)]);
}

function term(...parts) {
  return el("span", { class: "term" }, parts);
}

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
    this.renderText(f, highlightNode);
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

  // ---------------------------------------------------------------- text and chain rule

  renderText(f, hn) {
    const cols = this.view.columnModel();
    const title = document.getElementById("ex-title");
    const text = document.getElementById("ex-text");
    const cr = document.getElementById("chain-rule");
    const sampleBox = document.getElementById("ex-sample");
    const c = cols[f.col];
    const where = c.kind === "input" ? "inputs" : c.output ? `output layer (L${c.name})` : `layer L${c.name}`;
    title.textContent = `${PHASE_TITLES[f.phase]}${f.phase === "forward" || f.phase === "backward" ? ` · ${where}` : ""}  (${this.k + 1}/${this.frames.length})`;
    const x = this.sample.x;
    const shownX = Array.isArray(x) && typeof x[0] === "number" ? `x = (${x.map((v) => fmt(v, 3)).join(", ")})` : "x = image";
    sampleBox.textContent = `sample ${this.sample.split || ""} #${this.sample.index ?? "?"}: ${shownX}, target y = ${JSON.stringify(this.sample.y)} · weights of step ${this.box.dataset.step}`;
    cr.replaceChildren();
    cr.dataset.phase = f.phase;
    cr.removeAttribute("data-layer");
    cr.removeAttribute("data-unit");
    const d = this.colData[f.col];
    if (f.phase === "forward") {
      if (c.kind === "input" || c.kind === "image") {
        text.replaceChildren(el("p", { text: "The sample enters the network: each input node holds one feature of x." }));
        return;
      }
      const j = hn.unit;
      if (d.conv) {
        text.replaceChildren(
          el("p", {}, ["Each filter slides over its input and sums weighted pixels at every position: ", el("span", { class: "formula", text: "z[f,y,x] = Σ w[f,c,u,v] · a[c,y+u,x+v] + b[f]" }), " Shown: each feature map's mean."]),
        );
        cr.append(el("div", { class: "cr-title", text: `filter ${j} of L${c.name}` }), el("div", { class: "cr-line" }, ["mean activation = ", num("cr-a", d.a[j], "hl")]));
        return;
      }
      text.replaceChildren(
        el("p", {}, ["Each neuron sums its weighted inputs and applies its activation: ", el("span", { class: "formula", text: "z_j = Σᵢ w_ij a_i + b_j,  a_j = f(z_j)" })]),
      );
      if (!d.input || !d.W || !Array.isArray(d.W[0])) return this.simpleValue(cr, d, j, "a");
      const terms = [];
      const n = d.input.length;
      for (let i = 0; i < Math.min(n, 4); i++) terms.push(term(num(null, d.W[i][j]), " · ", num(null, d.input[i])), " + ");
      if (n > 4) terms.push(el("span", { text: `… (${n - 4} more) + ` }));
      cr.dataset.layer = c.name;
      cr.dataset.unit = String(j);
      cr.append(
        el("div", { class: "cr-title", text: `neuron ${j} of L${c.name}` }),
        el("div", { class: "cr-line" }, ["z = ", ...terms, num("cr-bias", first(d.b)[j] ?? d.b[j]), " = ", num("cr-z", d.z[j], "hl")]),
        el("div", { class: "cr-line" }, [`a = ${c.activation}(z) = `, num("cr-a", d.a[j], "hl")]),
      );
    } else if (f.phase === "loss") {
      this.renderLoss(text, cr);
    } else if (f.phase === "backward") {
      this.renderBackward(text, cr, f, hn.unit);
    } else if (f.phase === "update") {
      this.renderUpdate(text, cr);
    }
  }

  simpleValue(cr, d, j, key) {
    const v = d && d[key] ? d[key][j] : null;
    if (v !== null && v !== undefined) cr.append(el("div", { class: "cr-line" }, [`${key}[${j}] = `, num(`cr-${key}`, v, "hl")]));
  }

  renderLoss(text, cr) {
    const cols = this.view.columnModel();
    const out = this.colData[cols.length - 1];
    const y = this.sample.y;
    const loss = this.trace.loss;
    const formulas = {
      mse: "L = mean over outputs of (ŷ − y)²",
      bce: "L = −[y·log p + (1 − y)·log(1 − p)]",
      cross_entropy: "L = −log softmax(z)_y = −log p_y",
    };
    text.replaceChildren(
      el("p", {}, ["The error at the output, measured by the loss: ", el("span", { class: "formula", text: formulas[this.loss] || this.loss })]),
    );
    const yhat = out && out.a ? out.a : [];
    // the engine's own target encoding (e.g. -1/+1 for a tanh output with mse, one-hot...)
    const enc = this.trace.targets !== undefined && this.trace.targets !== null ? first(this.trace.targets) : y;
    const yv = Array.isArray(enc) ? enc.flat(Infinity) : [enc];
    const parts = [];
    if (this.loss === "mse") {
      yhat.slice(0, 4).forEach((p, k) => {
        const target = yv[k] ?? yv[0];
        parts.push(term("(", num(null, p), " − ", num(null, target), ")²"), k < Math.min(yhat.length, 4) - 1 ? " + " : "");
      });
      if (yhat.length > 1) parts.unshift(`(1/${yhat.length})·[`), parts.push("]");
    } else if (this.loss === "bce") {
      parts.push("−[", num(null, yv[0]), "·log ", num(null, yhat[0]), " + (1 − ", num(null, yv[0]), ")·log(1 − ", num(null, yhat[0]), ")]");
    } else {
      const cls = Number(yv[0]);
      parts.push("−log ", num(null, yhat[cls] ?? NaN), ` (p of class ${cls})`);
    }
    const encoded = stableText(yv) !== stableText(Array.isArray(y) ? y.flat(Infinity) : [y]);
    cr.append(
      el("div", { class: "cr-title", text: encoded ? `loss of this sample (label ${JSON.stringify(y)} is the target ${yv.map((v) => fmt(v, 3)).join(", ")})` : "loss of this sample" }),
      el("div", { class: "cr-line" }, ["ŷ = ", ...yhat.slice(0, 6).map((v, k) => el("span", {}, [k ? ", " : "", num(null, v)]))]),
      el("div", { class: "cr-line" }, ["L = ", ...parts, " = ", num("cr-loss", loss, "hl")]),
    );
  }

  renderBackward(text, cr, f, j) {
    const cols = this.view.columnModel();
    const c = cols[f.col];
    const d = this.colData[f.col];
    if (d.conv) {
      text.replaceChildren(el("p", {}, ["The deltas reach the convolution: each filter's gradient sums a·δ over every position it touched: ", el("span", { class: "formula", text: "∂L/∂w[f,c,u,v] = Σ_y,x δ[f,y,x] · a[c,y+u,x+v]" })]));
      cr.dataset.layer = c.name;
      cr.dataset.unit = String(j);
      cr.append(el("div", { class: "cr-title", text: `filter ${j} of L${c.name}` }), el("div", { class: "cr-line" }, ["mean δ = ", num("cr-delta", d.delta ? d.delta[j] : NaN, "hl")]));
      return;
    }
    const delta = d.delta ? d.delta[j] : NaN;
    const z = d.z ? d.z[j] : NaN;
    const a = d.a ? d.a[j] : NaN;
    const fprime = d.fprime && d.fprime[j] !== undefined ? d.fprime[j] : activationDerivative(c.activation, z, a);
    cr.dataset.layer = c.name;
    cr.dataset.unit = String(j);
    cr.append(el("div", { class: "cr-title", text: `δ of neuron ${j} in L${c.name}  (δ = ∂L/∂z)` }));
    const fused = c.output && this.loss === "cross_entropy";
    if (c.output) {
      text.replaceChildren(
        el("p", {}, [
          "The backward pass starts at the output: how much the loss changes with each output's pre-activation. ",
          el("span", { class: "formula", text: fused ? "δ_j = p_j − [j = y]  (softmax fused with cross-entropy)" : "δ_j = f'(z_j) · ∂L/∂a_j" }),
        ]),
      );
      if (fused) {
        const t = this.trace.targets !== undefined && this.trace.targets !== null ? first(this.trace.targets) : this.sample.y;
        const yv = Array.isArray(t) ? t.flat(Infinity)[0] : t;
        cr.append(el("div", { class: "cr-line" }, ["δ = ", num("cr-p", a), " − ", num("cr-onehot", Number(yv) === j ? 1 : 0), " = ", num("cr-delta", delta, "hl")]));
      } else {
        const dA = d.dA ? d.dA[j] : delta / (fprime || 1);
        cr.append(
          el("div", { class: "cr-line" }, [`f'(z) = ${derivativeText(c.activation)} = `, num("cr-fprime", fprime)]),
          el("div", { class: "cr-line" }, ["∂L/∂a = ", num("cr-sum", dA), this.loss === "mse" ? el("span", { class: "hint", text: "  (= 2(ŷ − y)/n for the mean of squared errors)" }) : ""]),
          el("div", { class: "cr-line" }, ["δ = ", num(null, fprime), " × ", num(null, dA), " = ", num("cr-delta", delta, "hl")]),
        );
      }
    } else {
      text.replaceChildren(
        el("p", {}, [
          "Each hidden neuron's δ is its activation's slope times the δs of the next layer, weighted by the connecting weights (the chain rule): ",
          el("span", { class: "formula", text: "δ_j = f'(z_j) · Σ_k w_jk δ_k" }),
        ]),
      );
      const next = cols[f.col + 1];
      const nd = next ? this.colData[next.index] : null;
      const direct = next && nd && nd.W && Array.isArray(nd.W[0]) && nd.delta && next.layerIndex === c.layerIndex + 1;
      let sum;
      const terms = [];
      if (direct) {
        sum = 0;
        const K = nd.delta.length;
        for (let k = 0; k < K; k++) sum += nd.W[j][k] * nd.delta[k];
        for (let k = 0; k < Math.min(K, 4); k++) terms.push(term(num(null, nd.W[j][k]), " · ", num(null, nd.delta[k])), k < Math.min(K, 4) - 1 ? " + " : "");
        if (K > 4) terms.push(el("span", { text: ` + … (${K - 4} more)` }));
      } else {
        sum = d.dA ? d.dA[j] : NaN;
        terms.push(el("span", { class: "hint", text: "∂L/∂a_j through the layers in between" }));
      }
      cr.append(
        el("div", { class: "cr-line" }, ["Σ_k w_jk δ_k = ", ...terms, " = ", num("cr-sum", sum)]),
        el("div", { class: "cr-line" }, [`f'(z_j) = ${derivativeText(c.activation)} = `, num("cr-fprime", fprime)]),
        el("div", { class: "cr-line" }, ["δ_j = ", num(null, fprime), " × ", num(null, sum), " = ", num("cr-delta", delta, "hl")]),
      );
    }
    cr.append(el("div", { class: "cr-foot", text: "Hover an incoming edge: ∂L/∂w_ij = a_i · δ_j." }));
  }

  renderUpdate(text, cr) {
    const opt = this.optimizer;
    text.replaceChildren(
      el("p", {}, [
        "Every weight takes a step against its gradient: ",
        el("span", { class: "formula", text: `w ← w − η · ∂L/∂w   (η = ${fmt(this.lr, 3)})` }),
        this.magnify > 1 ? el("span", { class: "hint", text: ` Edge width changes are drawn ×${this.magnify} so they are visible.` }) : "",
        opt !== "sgd" ? el("span", { class: "hint", text: ` This run trains with ${opt}, which rescales the step; shown is the plain gradient step of this one sample.` }) : "",
      ]),
    );
    // the edge with the largest gradient
    let best = null;
    this.view.gaps.forEach((g) => {
      const d = this.colData[g.to.index];
      if (!d || !d.gW || g.mode !== "full") return;
      for (let i = 0; i < g.ni; i++) for (let j = 0; j < g.nj; j++) {
        const v = Math.abs(d.gW[i][j]);
        if (!best || v > best.v) best = { v, g, i, j, d };
      }
    });
    if (!best) return;
    const w = best.d.W[best.i][best.j];
    const gw = best.d.gW[best.i][best.j];
    cr.dataset.layer = best.g.name;
    cr.append(
      el("div", { class: "cr-title", text: `largest step: w[${best.i}→${best.j}] of L${best.g.name}` }),
      el("div", { class: "cr-line" }, ["w' = ", num("cr-w", w), " − ", num("cr-lr", this.lr), " × ", num("cr-grad", gw), " = ", num("cr-wnew", w - this.lr * gw, "hl")]),
    );
  }

  // ---------------------------------------------------------------- hover numbers (for main's tooltip)

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

function stableText(list) {
  return list.map((v) => Number(v)).join(",");
}

