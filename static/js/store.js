// The page's state. Stream messages and REST answers are written here; nothing here touches the DOM.
// Writers set dirty flags; the one requestAnimationFrame loop in main.js reads and clears them, so
// any number of messages between two frames costs one repaint.

/** Metric columns kept per run (charts read these arrays directly, uPlot style). */
const RUN_COLUMNS = ["loss", "test_loss", "accuracy", "test_accuracy", "batch_loss", "learning_rate", "max_grad_norm", "clip_count"];
/** Clip events kept per run (the oldest half is thinned past this). */
const MAX_CLIPS = 3000;
const LAYER_COLUMNS = ["grad_norm", "update_ratio", "weight_norm"];
/** Points kept per series; past this, the oldest two thirds are thinned by half (amortised O(1)). */
export const MAX_POINTS = 3000;

function finiteOrNull(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Empty columnar history: {step: [], loss: [], ..., layers: {name: {grad_norm: [], ...}}}. */
export function emptyHistory() {
  const h = { step: [], layers: {} };
  for (const c of RUN_COLUMNS) h[c] = [];
  return h;
}

/** History from a metrics-columns document (the "hello" message or GET /metrics). */
export function historyFromColumns(cols) {
  const h = emptyHistory();
  if (!cols || !Array.isArray(cols.step)) return h;
  const n = cols.step.length;
  h.step = cols.step.slice();
  for (const c of RUN_COLUMNS) {
    const src = Array.isArray(cols[c]) ? cols[c] : [];
    h[c] = Array.from({ length: n }, (_, i) => finiteOrNull(src[i]));
  }
  for (const [name, layer] of Object.entries(cols.layers || {})) {
    const dst = {};
    for (const c of LAYER_COLUMNS) {
      const src = Array.isArray(layer[c]) ? layer[c] : [];
      dst[c] = Array.from({ length: n }, (_, i) => positiveOrNull(src[i]));
    }
    h.layers[name] = dst;
  }
  thin(h);
  return h;
}

function positiveOrNull(v) {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : null;
}

function thinArray(a, cut) {
  // keep every second element of a[0..cut), then the rest untouched
  let w = 0;
  for (let r = 0; r < cut; r += 2) a[w++] = a[r];
  for (let r = cut; r < a.length; r++) a[w++] = a[r];
  a.length = w;
}

/** Halve the oldest two thirds of every column when a history grows past MAX_POINTS. */
export function thin(h) {
  if (h.step.length <= MAX_POINTS) return;
  const cut = Math.floor((h.step.length * 2) / 3);
  thinArray(h.step, cut);
  for (const c of RUN_COLUMNS) thinArray(h[c], cut);
  for (const layer of Object.values(h.layers)) for (const c of LAYER_COLUMNS) thinArray(layer[c], cut);
}

/** Append one "metrics" message to a history (a layer first seen later is back-filled with nulls). */
export function appendMetrics(h, m) {
  const n = h.step.length;
  if (n && m.step <= h.step[n - 1]) return false; // a replayed frame: keep steps increasing
  h.step.push(m.step);
  for (const c of RUN_COLUMNS) h[c].push(finiteOrNull(m[c]));
  const seen = new Set();
  for (const layer of m.layers || []) {
    let dst = h.layers[layer.name];
    if (!dst) {
      dst = {};
      for (const c of LAYER_COLUMNS) dst[c] = new Array(n).fill(null);
      h.layers[layer.name] = dst;
    }
    for (const c of LAYER_COLUMNS) dst[c].push(positiveOrNull(layer[c]));
    seen.add(layer.name);
  }
  for (const [name, dst] of Object.entries(h.layers)) {
    if (!seen.has(name)) for (const c of LAYER_COLUMNS) dst[c].push(null);
  }
  thin(h);
  return true;
}

/** The single page state. */
export const store = {
  /** SessionPublic of the open run, or null. */
  session: null,
  /** Config document of the open run (as the server holds it). */
  config: null,
  /** GET /api/datasets entries by name. */
  datasets: {},
  /** GET /api/presets entries. */
  presets: [],
  /** Columnar metrics of the open run. */
  history: emptyHistory(),
  /** The latest "metrics" message (per-layer stats by name in latestLayers). */
  latest: null,
  latestLayers: {},
  /** The latest engine snapshot. */
  snapshot: null,
  /** Raw data of the open run (GET /data), for the data view and the explainer. */
  data: null,
  /** Recent events, newest last (bounded). */
  events: [],
  /** Clip events of the open run (for the loss chart's markers), oldest first. */
  clips: [],
  /** Step of the best test loss (early stopping), from metrics frames or the session. */
  bestStep: null,
  /** The run's early-stop event, if it stopped early. */
  earlyStop: null,
  /** Whether the WebSocket is connected. */
  connected: false,
  /** Messages received since load (for the status line and tests). */
  received: 0,
  dirty: { session: false, history: false, latest: false, snapshot: false, events: false, data: false, connection: false },

  markAll() {
    for (const k of Object.keys(this.dirty)) this.dirty[k] = true;
  },

  /** Forget everything about the previous run. */
  openRun(session) {
    this.session = session;
    this.config = session ? session.config : null;
    this.history = emptyHistory();
    this.latest = session && session.metrics ? { ...session.metrics, step: session.step, epoch: session.epoch } : null;
    this.latestLayers = {};
    this.snapshot = null;
    this.data = null;
    this.events = [];
    this.clips = [];
    this.bestStep = session && session.best_step !== undefined ? session.best_step : null;
    this.earlyStop = null;
    this.markAll();
  },

  setSession(session) {
    if (!session) return;
    if (this.session && session.id !== this.session.id) return;
    // A REST answer can arrive after a newer WebSocket status (a run that diverges within a
    // step of POST /start): never let an older state overwrite a newer one.
    if (this.session && session.updated_at && this.session.updated_at && session.updated_at < this.session.updated_at) return;
    this.session = session;
    this.config = session.config || this.config;
    if (session.best_step !== null && session.best_step !== undefined && session.best_step !== this.bestStep) {
      this.bestStep = session.best_step;
      this.dirty.history = true;
    }
    if (session.metrics && (!this.latest || session.step >= (this.latest.step ?? -1))) {
      this.latest = { ...this.latest, ...session.metrics, step: session.step, epoch: session.epoch };
      this.dirty.latest = true;
    }
    this.dirty.session = true;
  },

  addEvent(event) {
    this.events.push(event);
    if (this.events.length > 50) this.events.splice(0, this.events.length - 50);
    this.dirty.events = true;
    if (event.type === "clip") {
      const last = this.clips[this.clips.length - 1];
      if (!last || event.step !== last.step) this.clips.push(event);
      if (this.clips.length > MAX_CLIPS) this.clips = this.clips.filter((e, i) => i >= MAX_CLIPS / 2 || i % 2 === 0);
      this.dirty.history = true;
    } else if (event.type === "early_stop") {
      this.earlyStop = event;
      if (event.best_step !== null && event.best_step !== undefined) this.bestStep = event.best_step;
      this.dirty.history = true;
    } else if (event.type === "best") {
      this.bestStep = event.step;
      this.dirty.history = true;
    }
    if (event.type === "reset") {
      this.history = emptyHistory();
      this.clips = [];
      this.bestStep = null;
      this.earlyStop = null;
      this.dirty.history = true;
    }
  },

  /** Apply one server message (called by stream.js for every frame, in arrival order). */
  push(msg) {
    this.received += 1;
    switch (msg.type) {
      case "hello":
        if (msg.session) {
          this.session = msg.session;
          this.config = msg.config || msg.session.config || this.config;
          this.dirty.session = true;
          if (msg.session.metrics) {
            this.latest = { ...msg.session.metrics, step: msg.session.step, epoch: msg.session.epoch };
            this.dirty.latest = true;
          }
        }
        this.history = historyFromColumns(msg.history);
        this.dirty.history = true;
        this.clips = [];
        for (const e of (msg.history && msg.history.events) || []) this.addEvent(e);
        break;
      case "metrics":
        if (this.history.step.length && msg.step < this.history.step[this.history.step.length - 1]) {
          this.history = emptyHistory(); // the run was reset under us
          this.clips = [];
        }
        this.latest = msg;
        if (msg.best_step !== null && msg.best_step !== undefined && msg.best_step !== this.bestStep) this.bestStep = msg.best_step;
        this.latestLayers = {};
        for (const layer of msg.layers || []) this.latestLayers[layer.name] = layer;
        if (appendMetrics(this.history, msg)) this.dirty.history = true;
        this.dirty.latest = true;
        break;
      case "snapshot": {
        const { type, ...snap } = msg; // eslint-disable-line no-unused-vars
        this.snapshot = snap;
        this.dirty.snapshot = true;
        break;
      }
      case "status":
        this.setSession(msg.session);
        break;
      case "event":
        if (msg.event) this.addEvent(msg.event);
        break;
      case "error":
        this.addEvent({ type: "error", message: msg.message });
        break;
      default:
        break;
    }
  },
};
