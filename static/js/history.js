// A run's metrics as columns (uPlot's layout: one array per series, all indexed like `step`), with
// a bounded length: past MAX_POINTS the oldest points are thinned, so a long run costs what a
// short one does. Pure data: no DOM, no state of its own.

/** Metric columns kept per run (charts read these arrays directly, uPlot style). */
const RUN_COLUMNS = ["loss", "test_loss", "accuracy", "test_accuracy", "batch_loss", "learning_rate", "max_grad_norm", "clip_count"];
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

