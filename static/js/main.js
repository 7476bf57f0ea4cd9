// Entry point: wires the store, the stream, the views and the controls, and runs the ONE
// requestAnimationFrame loop. Messages only mark the store dirty; each frame applies everything
// that arrived since the last one (charts at most ~10 times a second), then advances animations.

import { initA11y } from "./a11y.js";
import { ApiError, api } from "./api.js";
import { Explainer, LivePulse } from "./backward_anim.js";
import { DataView } from "./boundary.js";
import { Histograms, RunCharts } from "./charts.js";
import { CompareView, LearnPanel, formulaNodes } from "./learn.js";
import { Controls, DEFAULT_CONFIG, HYPER_TO_FIELD, hyperOf, stableJson, structuralKey, withDefaults } from "./controls.js";
import { NetworkView } from "./network_view.js";
import { store } from "./store.js";
import { Stream } from "./stream.js";
import { debounce, el, first, fmt, fmtInt, setAttr, setStyle, setText, statusText } from "./util.js";

const $ = (id) => document.getElementById(id);
const CHART_INTERVAL_MS = 100;
const STATUS_INTERVAL_MS = 66; // status line and gradient bars: ~15 updates a second
const PREDICT_INTERVAL_MS = 1200;
const HEALTH_INTERVAL_MS = 4000; // how often the page asks whether the server is still there

const stream = new Stream(store);
const view = new NetworkView($("network"), { onHover: onNetHover, onClick: onNetClick });
const pulse = new LivePulse(view);
const explainer = new Explainer(view, { api, store, onState: onExplainState });
const dataView = new DataView($("data-view"), { onPick: (s) => explainSample(s), onDraw: (p) => drawPoint(p) });
const charts = new RunCharts({ lossHost: $("loss-chart"), gradHost: $("grad-chart"), ratioHost: $("ratio-chart"), accHost: $("acc-chart") });
const histograms = new Histograms($("hist-view"), $("hist-layer"));
const compareView = new CompareView({ api });
const learn = new LearnPanel({
  onOpen: (p) => openLesson(p),
  onTry: (p) => loadSetup(p.try.config, `${p.title} (try)`),
  onCompare: (p) => openLessonCompare(p),
  onExplain: async () => {
    if (compareView.open) await compareView.close();
    explainButton();
  },
});
const controls = new Controls(store, {
  onStructure: (cfg) => {
    controls.writeFragment(cfg, store.session ? store.session.id : null);
    rebuildSoon(cfg);
  },
  onHyper: (cfg) => {
    controls.writeFragment(cfg, store.session ? store.session.id : null);
    applyHyper(cfg);
  },
  onPreset: (preset) => {
    if (preset.kind === "lesson") learn.open(preset);
    else loadSetup(preset.config, preset.title || preset.id);
  },
  onOpenRun: (id) => openRunById(id),
  onPresets: (presets) => learn.setPresets(presets),
  onCompareIds: (ids) => compareView.openIds(ids, { pace: currentPace() }),
  onCloseCompare: () => compareView.close(),
  onRunDeleted: (id) => runDeleted(id),
  onRunRenamed: (s) => scratch.delete(s.id), // a named run is kept when the page builds another
});

/** Build a fresh run from a config (a preset, a lesson or its "try" setup). */
async function loadSetup(config, name) {
  controls.writeConfig(config);
  const cfg = controls.readConfig();
  controls.writeFragment(cfg, null);
  rebuildSoon.cancel();
  return rebuild(cfg, { name, force: true });
}

/** Open a guided experiment: its run at its pace, then what its text promises (explainer, drawing, compare). */
async function openLesson(p) {
  if (compareView.open) await compareView.close();
  if ([...controls.presetSelect.options].some((o) => o.value === p.id)) controls.presetSelect.value = p.id;
  if (p.pace) setSpeed(p.pace);
  setStepLog(!!p.log_steps);
  const s = await loadSetup(p.config, p.lesson ? `${p.lesson}. ${p.title}` : p.title || p.id);
  lessonRun = s && p.fixes ? { id: s.id, fixes: p.fixes } : null;
  if (!s || learn.current !== p) return;
  if (p.mode === "explain") await explainButton(); // "how a step works" opens the explainer
  if (p.compare && p.compare.length) await openLessonCompare(p);
}

/** The side-by-side runs of a lesson: built now, trained when the user presses Start all. */
async function openLessonCompare(p) {
  if (isRunning()) await pause();
  await compareView.openConfigs(p.compare, {
    title: `${p.lesson ? `${p.lesson}. ` : ""}${p.title} — side by side`,
    watch: p.watch ? `Watch: ${p.watch}` : "",
    prefix: p.title,
    pace: p.pace || currentPace(),
    logSteps: !!p.log_steps,
  });
}

// ------------------------------------------------------------------------------ speed

/** Steps per second the speed control asks for, or null for full speed. */
function currentPace() {
  const v = $("speed").value;
  return v === "max" ? null : Number(v);
}

/** Put the speed control at `pace` steps/s, adding that option (in order) when it is not listed. */
function setSpeed(pace) {
  const sel = $("speed");
  const value = pace ? String(pace) : "max";
  if (![...sel.options].some((o) => o.value === value)) {
    const before = [...sel.options].find((o) => o.value === "max" || Number(o.value) > pace);
    sel.insertBefore(el("option", { value, text: `${fmtInt(pace)} steps/s` }), before || null);
  }
  sel.value = value;
}

/** The log-scaled step axis of the run charts (a lesson turns it on when its point is early). */
function setStepLog(on) {
  $("step-log").checked = on;
  charts.setLogSteps(on);
}

/** structuralKey of the config the open session was created with. */
let builtKey = null;
/** HyperparameterUpdate the server holds for the open session. */
let serverHyper = null;
/** Sessions this page created and never trained: deleted when replaced, so the run list stays clean. */
const scratch = new Set();
let lastChart = 0;
let lastStatus = 0;
let lastPredict = 0;
let predicting = false;
let busy = false;
let serverDown = false; // the last health check (or request) found no server

window.__bl = { store, view, explainer, pulse, controls, learn, compareView, charts }; // read-only hook for tests and debugging

// ------------------------------------------------------------------------------ sessions

function datasetInfo(cfg) {
  return cfg && cfg.dataset ? controls.datasetInfo(cfg.dataset.name) : null;
}

function nameFor(cfg) {
  const dense = (cfg.layers || []).filter((l) => l.type === "dense").map((l) => l.units);
  const info = datasetInfo(cfg);
  const inputs = info && info.input_kind === "image" ? "img" : (cfg.features || []).length;
  return `${cfg.dataset.name} ${[inputs, ...dense].join("-")} ${cfg.optimizer.name} lr ${cfg.optimizer.learning_rate}`;
}

const rebuildSoon = debounce((cfg) => rebuild(cfg), 350);

/** Make the open session match `cfg`: PATCH when only hyperparameters differ, else a new session. */
async function rebuild(cfg, opts = {}) {
  const key = structuralKey(cfg);
  if (store.session && key === builtKey && !opts.force) {
    await applyHyper(cfg);
    return store.session;
  }
  let created;
  try {
    created = await api.create(cfg, opts.name || nameFor(cfg));
  } catch (err) {
    showApiError(err);
    return null;
  }
  const old = store.session;
  if (old && old.status === "running") api.stop(old.id).catch(() => {});
  if (old && scratch.has(old.id) && old.step === 0) api.remove(old.id).catch(() => {});
  scratch.add(created.id);
  await openSession(created, { keepForm: true });
  return created;
}

function showApiError(err) {
  if (err instanceof ApiError) controls.showErrors(err.errors);
  else controls.showErrors([{ field: "", message: String(err) }]);
}

/** PATCH the hyperparameters that differ from what the server holds. */
async function applyHyper(cfg) {
  const s = store.session;
  if (!s) return rebuildSoon(cfg);
  if (structuralKey(cfg) !== builtKey) return rebuildSoon(cfg);
  const want = hyperOf(cfg);
  const changes = {};
  for (const [k, v] of Object.entries(want)) if (stableJson(v) !== stableJson(serverHyper ? serverHyper[k] : undefined)) changes[k] = v;
  if (!Object.keys(changes).length) return s;
  try {
    const updated = await api.patch(s.id, changes);
    store.setSession(updated);
    serverHyper = hyperOf(updated.config || cfg);
    controls.clearErrors();
    return updated;
  } catch (err) {
    if (err instanceof ApiError) {
      controls.showErrors(err.errors.map((e) => ({ field: mapHyperField(e.field), message: e.message })));
    } else showApiError(err);
    return null;
  }
}

function mapHyperField(field) {
  if (!field) return field;
  const head = field.split(/[.[]/)[0];
  return HYPER_TO_FIELD[head] ? HYPER_TO_FIELD[head] + field.slice(head.length) : field;
}

/** The Runs list deleted a run; if it was the open one, build a fresh run from the form. */
async function runDeleted(id) {
  scratch.delete(id);
  if (!store.session || store.session.id !== id) return;
  stream.close();
  store.session = null;
  store.dirty.session = true;
  rebuildSoon.cancel();
  await rebuild(controls.readConfig(), { force: true });
}

async function openRunById(id) {
  try {
    const s = await api.session(id);
    controls.showTab("build"); // now, not after the snapshot: a tab picked meanwhile stays
    await openSession(s, { keepForm: false });
  } catch (err) {
    showApiError(err);
  }
}

/** Show a session: architecture, stream, data, snapshot, URL. */
async function openSession(s, { keepForm }) {
  if (explainer.active) explainer.close();
  store.openRun(s);
  const cfg = s.config;
  serverHyper = hyperOf(cfg);
  if (!keepForm) controls.writeConfig(cfg);
  const formCfg = controls.readConfig();
  // the form's own reading of this run: later edits are compared against it
  builtKey = structuralKey(formCfg);
  controls.writeFragment(formCfg, s.id);
  const info = datasetInfo(cfg);
  view.setArchitecture(withDefaults(cfg), info);
  dataView.setRun(cfg, info);
  hideBanner();
  setupBnPanel(cfg);
  const drawing = dataView.drawing;
  $("draw-hint").hidden = !drawing;
  $("data-card").classList.toggle("drawing", drawing);
  pulse.stop();
  stream.open(s.id);
  lastPredict = 0;
  const id = s.id;
  const [snap, data] = await Promise.allSettled([api.snapshot(id), api.data(id, info && info.input_kind === "image" ? 64 : 1000)]);
  if (!store.session || store.session.id !== id) return;
  if (snap.status === "fulfilled" && snap.value && !store.snapshot) {
    store.snapshot = snap.value;
    store.dirty.snapshot = true;
  }
  if (data.status === "fulfilled") {
    store.data = data.value;
    store.dirty.data = true;
  }
}

// ------------------------------------------------------------------------------ transport

function isRunning() {
  return !!(store.session && store.session.status === "running");
}

/** The open session, made to match the form; null when the form cannot be applied (its errors show). */
async function ensureSession() {
  const cfg = controls.readConfig();
  if (!store.session || structuralKey(cfg) !== builtKey) {
    rebuildSoon.cancel();
    return rebuild(cfg);
  }
  const applied = await applyHyper(cfg);
  return applied ? store.session : null;
}

/**
 * The session to train, or null while a form field holds an invalid value: then nothing is
 * sent (no start, no step with the old value) and the field's message is brought into view.
 */
async function readyToTrain(action) {
  controls.flushTyping(); // a number still being typed counts
  let problems = controls.invalidFields();
  if (!problems.length) {
    const s = await ensureSession();
    if (s) return s;
    problems = controls.invalidFields();
  }
  controls.revealErrors();
  const first = problems[0];
  statusNote(first ? `${action} refused: ${first.label} — ${first.message}` : `${action} refused: the setup could not be applied`, "refused");
  return null;
}

async function startOrPause() {
  if (busy) return;
  busy = true;
  try {
    if (isRunning()) {
      await pause();
      return;
    }
    const s = await readyToTrain("Start");
    if (!s) return;
    if (explainer.active) explainer.close();
    scratch.delete(s.id);
    store.setSession(await api.start(s.id, currentPace()));
  } catch (err) {
    statusNote(err.message);
  } finally {
    busy = false;
    store.dirty.session = true;
  }
}

async function pause() {
  const s = store.session;
  if (!s) return;
  try {
    await api.stop(s.id);
    store.setSession(await api.session(s.id));
  } catch (err) {
    statusNote(err.message);
  }
}

/** A new speed while running: the server run restarts at the new pace, between two steps. */
async function changeSpeed() {
  if (busy || !isRunning()) return;
  busy = true;
  try {
    const id = store.session.id;
    await api.stop(id);
    store.setSession(await api.start(id, currentPace()));
  } catch (err) {
    statusNote(err.message);
  } finally {
    busy = false;
    store.dirty.session = true;
  }
}

async function doSteps(n, action) {
  const s = await readyToTrain(action);
  if (!s) return;
  scratch.delete(s.id);
  const r = await api.step(s.id, n);
  if (!store.session || store.session.id !== s.id) return;
  store.latest = { ...(store.latest || {}), ...(r.metrics || {}), step: r.step, epoch: r.epoch };
  store.dirty.latest = true;
  if (r.status && store.session.status !== r.status) {
    store.session = { ...store.session, status: r.status, step: r.step, epoch: r.epoch };
    store.dirty.session = true;
  } else {
    store.session.step = r.step;
  }
}

async function stepButton(n) {
  if (busy || isRunning()) return;
  busy = true;
  try {
    if (explainer.active) explainer.close();
    await doSteps(n, `+${n}`);
  } catch (err) {
    statusNote(err.message);
  } finally {
    busy = false;
  }
}

// ------------------------------------------------------------------------------ server health

/** Ask the server whether it is there; the header and the run's status follow the answer. */
async function checkHealth() {
  let h = null;
  try {
    h = await api.health();
  } catch {
    h = null;
  }
  const health = $("health");
  if (!h) {
    health.textContent = "server unreachable — retrying";
    health.dataset.status = "down";
    if (!serverDown) {
      serverDown = true;
      store.dirty.session = true;
    }
    return;
  }
  health.textContent = `server ${h.status}`;
  health.dataset.status = h.status;
  if (serverDown) {
    serverDown = false;
    store.dirty.session = true;
    const s = store.session; // what happened to the run meanwhile (e.g. interrupted by a restart)
    if (s) {
      try {
        const now = await api.session(s.id);
        if (store.session && store.session.id === now.id) {
          store.session = now;
          store.dirty.session = true;
        }
      } catch (err) {
        statusNote(err.message);
      }
    }
  }
}

async function resetRun() {
  if (explainer.active) explainer.close();
  const s = store.session;
  if (!s) return;
  try {
    const updated = await api.reset(s.id);
    store.openRun(updated);
    store.data = dataView.data;
    stream.open(updated.id);
    const snap = await api.snapshot(updated.id).catch(() => null);
    if (snap && !store.snapshot) {
      store.snapshot = snap;
      store.dirty.snapshot = true;
    }
    hideBanner();
  } catch (err) {
    statusNote(err.message);
  }
}

// ------------------------------------------------------------------------------ drawn points

/** Add (or, with remove, take away the nearest) point of the "points" dataset; rebuilds the run. */
function drawPoint({ x1, x2, label, remove }) {
  const extra = controls.extraDataset || (controls.extraDataset = {});
  const points = Array.isArray(extra.points) ? extra.points.slice() : [];
  if (remove) {
    let best = -1;
    let bestD = Infinity;
    points.forEach((p, i) => {
      const d = (p[0] - x1) ** 2 + (p[1] - x2) ** 2;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    });
    if (best >= 0 && bestD < 1) points.splice(best, 1);
  } else if (points.length < 5000) {
    points.push([Number(x1.toFixed(3)), Number(x2.toFixed(3)), label]);
  }
  extra.points = points;
  const cfg = controls.readConfig();
  controls.writeFragment(cfg, store.session ? store.session.id : null);
  rebuildSoon(cfg);
}

// ------------------------------------------------------------------------------ explainer glue

async function explainSample(sample) {
  const s = store.session;
  if (!s) return;
  if (isRunning()) await pause();
  pulse.stop();
  await explainer.open(sample);
}

async function explainButton() {
  if (!store.session) return;
  if (!store.data) {
    try {
      store.data = await api.data(store.session.id, 1000);
      store.dirty.data = true;
    } catch (err) {
      statusNote(err.message);
      return;
    }
  }
  const sel = dataView.selected;
  const data = store.data;
  if (sel && data[sel.split] && data[sel.split].x[sel.index] !== undefined) {
    await explainSample({ x: data[sel.split].x[sel.index], y: data[sel.split].y[sel.index], ...sel });
  } else {
    const sample = explainer.randomSample();
    if (sample) {
      dataView.setSelected({ split: sample.split, index: sample.index });
      await explainSample(sample);
    }
  }
}

function onExplainState(active) {
  $("explain-btn").classList.toggle("active", active);
  $("center").dataset.explaining = active ? "yes" : "no";
  if (!active && store.snapshot) view.setSnapshot(store.snapshot);
}

// ------------------------------------------------------------------------------ hover and edit

const tooltip = $("tooltip");

function numEl(id, label, value) {
  return el("div", { class: "tip-row" }, [el("span", { class: "tip-k", text: label }), el("span", { class: "tip-v", id, "data-value": value === null || value === undefined ? "" : String(value), text: fmt(value, 4) })]);
}

function at(arr, i, j) {
  if (!arr) return null;
  const row = arr[i];
  if (j === undefined) return row ?? null;
  return row ? row[j] ?? null : null;
}

function onNetHover(hit, e) {
  if (!hit || !e) {
    tooltip.hidden = true;
    return;
  }
  const snap = store.snapshot;
  const rows = [];
  let title = "";
  const source = explainer.active ? "trace" : "snapshot";
  tooltip.dataset.kind = hit.kind;
  tooltip.dataset.source = source;
  for (const k of ["layer", "i", "j", "unit", "col"]) {
    if (hit[k] === undefined || hit[k] === null) tooltip.removeAttribute(`data-${k}`);
    else tooltip.setAttribute(`data-${k}`, String(hit[k]));
  }
  const cols = view.columnModel();
  if (hit.kind === "edge") {
    const from = cols[hit.fromCol];
    const name = hit.layer;
    title = hit.i < 0 || hit.j < 0 ? `L${name}: ${hit.i < 0 ? `all ${from.units} inputs → unit ${hit.j}` : `unit ${hit.i} → all units`} (bundle)` : `L${name} weight w[${hit.i}→${hit.j}]`;
    if (explainer.active) {
      const n = explainer.edgeNumbers(hit);
      if (n) {
        rows.push(numEl("tip-w", "w", n.w), numEl("tip-grad", "∂L/∂w (trace)", n.grad));
        rows.push(el("div", { class: "tip-chain" }, ["∂L/∂w_ij = a_i · δ_j"]));
        rows.push(numEl("tip-a", `a_${hit.i} (input to L${name})`, n.a), numEl("tip-delta", `δ_${hit.j} (∂L/∂z)`, n.delta), numEl("tip-product", "a_i · δ_j", n.product));
        rows.push(numEl("tip-step", `−η·∂L/∂w (η=${fmt(n.lr, 3)})`, -n.lr * n.grad));
      }
    } else if (snap && hit.i >= 0 && hit.j >= 0) {
      rows.push(...liveEdgeRows(snap, hit, from, name));
    }
  } else if (hit.kind === "node" || hit.kind === "bias") {
    const c = cols[hit.col];
    title = c.kind === "input" ? `input ${c.features ? c.features[hit.unit] : hit.unit}` : hit.unit < 0 ? `L${c.name}: ${c.units} units` : `L${c.name} ${c.kind === "conv" ? "filter" : "unit"} ${hit.unit}${c.activation ? ` · ${c.activation}` : ""}`;
    if (explainer.active) {
      const n = explainer.nodeNumbers(hit);
      if (n) {
        rows.push(numEl("tip-z", "z (pre-activation)", n.z), numEl("tip-act", "a (activation)", n.a), numEl("tip-delta", "δ = ∂L/∂z", n.delta));
        if (n.b !== null && n.b !== undefined) rows.push(numEl("tip-b", "b", n.b), numEl("tip-bgrad", "∂L/∂b = δ", n.gb));
        rows.push(el("div", { class: "tip-hint", text: "Click to follow this neuron's chain rule" }));
      }
    } else if (snap && c.name && hit.unit >= 0) {
      const st = snap.nodes && snap.nodes[c.name];
      rows.push(numEl("tip-act", "activation (batch mean)", st && st.activation ? st.activation[hit.unit] : null));
      rows.push(numEl("tip-delta", "|δ| = |∂L/∂z| (batch mean)", st && st.delta ? st.delta[hit.unit] : null));
      rows.push(numEl("tip-b", "bias b", at(snap.weights && snap.weights[`${c.name}.b`], hit.unit)));
      rows.push(numEl("tip-bgrad", "∂L/∂b", at(snap.grads && snap.grads[`${c.name}.b`], hit.unit)));
      if (hit.kind === "bias") rows.push(el("div", { class: "tip-hint", text: "Click to edit this bias" }));
    }
  } else if (hit.kind === "bar") {
    const st = store.latestLayers[hit.layer];
    title = `L${hit.layer} gradient`;
    if (st) {
      rows.push(numEl("tip-gnorm", "‖∂L/∂W‖₂", st.grad_norm), numEl("tip-wnorm", "‖W‖₂", st.weight_norm), numEl("tip-ratio", "update / weight", st.update_ratio));
      rows.push(numEl("tip-dead", "dead units", st.dead_fraction), numEl("tip-sat", "saturated", st.saturated_fraction));
    }
  }
  tooltip.replaceChildren(el("div", { class: "tip-title", text: title }), ...rows);
  tooltip.hidden = false;
  const box = $("center").getBoundingClientRect();
  const tw = tooltip.offsetWidth;
  const th = tooltip.offsetHeight;
  let x = e.clientX - box.left + 14;
  let y = e.clientY - box.top + 14;
  if (x + tw > box.width - 4) x = e.clientX - box.left - tw - 14;
  if (y + th > box.height - 4) y = e.clientY - box.top - th - 10;
  tooltip.style.setProperty("left", `${Math.max(4, x)}px`);
  tooltip.style.setProperty("top", `${Math.max(4, y)}px`);
}

/**
 * The live chain rule of one weight, from the snapshot's last batch: for each sample b,
 * dl_b/dw_ij = a_i * delta_j (a_i: what flows into the layer, the sample's input value on the
 * first layer); dL/dw_ij is their mean over the batch. The numbers shown multiply out exactly.
 */
function liveEdgeRows(snap, hit, from, name) {
  const rows = [];
  const w = at(snap.weights && snap.weights[`${name}.W`], hit.i, hit.j);
  const g = at(snap.grads && snap.grads[`${name}.W`], hit.i, hit.j);
  const me = snap.nodes && snap.nodes[name];
  const samples = me && me.samples;
  rows.push(numEl("tip-w", "w", w));
  if (!samples || !samples.a || !samples.a.length) {
    rows.push(numEl("tip-grad", "∂L/∂w (last batch)", g));
    return rows;
  }
  const batch = snap.batch_size || samples.a.length;
  const shown = samples.a.length;
  const inputName = from.kind === "input" && from.features ? from.features[hit.i] : null;
  const a = samples.a.map((row) => row[hit.i]);
  const d = samples.delta.map((row) => row[hit.j]);
  const products = a.map((v, b) => v * d[b]);
  const mean = products.reduce((sum, v) => sum + v, 0) / shown;
  rows.push(el("div", { class: "tip-chain" }, [`one sample (1 of ${batch} in the last batch): ∂ℓ/∂w_ij = a_i · δ_j`]));
  rows.push(numEl("tip-a", `a_${hit.i}${inputName ? ` = input ${inputName}` : ` (output of unit ${hit.i} below)`}`, a[0]));
  rows.push(numEl("tip-delta", `δ_${hit.j} = ∂ℓ/∂z_${hit.j}`, d[0]));
  rows.push(numEl("tip-product", "a_i · δ_j", products[0]));
  const list = products.slice(0, 6).map((v) => fmt(v, 3)).join(", ");
  rows.push(el("div", { class: "tip-chain" }, [`the whole batch: ∂L/∂w_ij = mean of a_i · δ_j over its ${batch} samples`]));
  rows.push(el("div", { class: "tip-row tip-list", id: "tip-products", "data-count": String(shown) }, [`a_i · δ_j: ${list}${shown > 6 ? `, … (${shown - 6} more)` : ""}`]));
  if (shown === batch) rows.push(numEl("tip-mean", `mean of the ${batch} products = ∂L/∂w`, mean));
  const cfg = store.config || {};
  const changed = (cfg.regularization && cfg.regularization.kind && cfg.regularization.kind !== "none" && cfg.regularization.rate > 0) || cfg.gradient_clip;
  if (changed) {
    const what = [cfg.regularization && cfg.regularization.kind !== "none" && cfg.regularization.rate > 0 ? `${cfg.regularization.kind.toUpperCase()} penalty added` : "", cfg.gradient_clip ? `clipped by ${cfg.gradient_clip.kind}` : ""].filter(Boolean).join(", ");
    rows.push(numEl("tip-grad", `gradient the step used (${what})`, g));
  } else {
    rows.push(numEl("tip-grad", "∂L/∂w the step used", g));
  }
  if (shown < batch) rows.push(el("div", { class: "tip-hint", text: `${shown} of the ${batch} samples are sent for a net this wide; their mean is not the whole batch's.` }));
  rows.push(el("div", { class: "tip-hint", text: "Click to edit this weight · “Explain a step” traces one sample phase by phase" }));
  return rows;
}

let editing = null;
let editorOpener = null;

function onNetClick(hit, e) {
  if (explainer.active) {
    if (hit.kind === "node" || hit.kind === "bias") explainer.pickNode(hit.col, hit.unit);
    return;
  }
  const snap = store.snapshot;
  if (!snap || !snap.weights) return;
  let key;
  let idx;
  let label;
  if (hit.kind === "edge" && hit.i >= 0 && hit.j >= 0) {
    key = `${hit.layer}.W`;
    idx = [hit.i, hit.j];
    label = `w[${hit.i}→${hit.j}] of L${hit.layer}`;
  } else if (hit.kind === "bias" || (hit.kind === "node" && hit.layer !== null && hit.unit >= 0 && view.columnModel()[hit.col].kind === "dense")) {
    key = `${hit.layer}.b`;
    idx = [hit.unit];
    label = `bias of unit ${hit.unit} in L${hit.layer}`;
  } else return;
  const current = idx.length === 2 ? at(snap.weights[key], idx[0], idx[1]) : at(snap.weights[key], idx[0]);
  if (current === null || current === undefined) return;
  editing = { key, idx };
  const pop = $("weight-editor");
  if (pop.hidden) editorOpener = document.activeElement; // focus goes back there on close
  $("we-label").textContent = label;
  $("we-value").value = String(Number(current.toPrecision(6)));
  $("we-error").hidden = true;
  pop.hidden = false;
  const box = $("center").getBoundingClientRect();
  pop.style.setProperty("left", `${Math.min(box.width - 280, Math.max(4, e.clientX - box.left + 8))}px`);
  pop.style.setProperty("top", `${Math.min(box.height - 90, Math.max(4, e.clientY - box.top + 8))}px`);
  $("we-value").focus();
  $("we-value").select();
}

/** Hide the weight editor and give focus back to what had it (the network, from the keyboard). */
function closeWeightEditor() {
  const pop = $("weight-editor");
  const hadFocus = pop.contains(document.activeElement);
  pop.hidden = true;
  editing = null;
  const back = editorOpener;
  editorOpener = null;
  if (hadFocus && back instanceof HTMLElement && back !== document.body && back.isConnected) back.focus();
}

async function applyWeightEdit() {
  if (!editing || !store.session) return;
  const raw = $("we-value").value.trim();
  // Number("") is 0: a blank (or unreadable) field must not set the weight to zero
  const value = raw === "" ? NaN : Number(raw);
  const err = $("we-error");
  if (!Number.isFinite(value)) {
    err.hidden = false;
    err.textContent = raw === "" ? "enter a number: the field is blank" : `must be a finite number, got "${raw}"`;
    $("we-value").setAttribute("aria-invalid", "true");
    $("we-value").focus();
    return;
  }
  $("we-value").removeAttribute("aria-invalid");
  const id = store.session.id;
  try {
    if (isRunning()) await pause();
    const weights = await api.weights(id);
    const arr = weights[editing.key];
    if (editing.idx.length === 2) arr[editing.idx[0]][editing.idx[1]] = value;
    else arr[editing.idx[0]] = value;
    await api.putWeights(id, weights);
    closeWeightEditor();
    const snap = await api.snapshot(id).catch(() => null);
    if (snap) {
      store.snapshot = snap;
      store.dirty.snapshot = true;
    }
  } catch (e2) {
    err.hidden = false;
    err.textContent = e2.message;
  }
}

// ------------------------------------------------------------------------------ banner, status

function showBanner(title, message, kind = "error") {
  $("banner-title").textContent = title;
  $("banner-message").textContent = message;
  $("banner").dataset.kind = kind;
  $("banner").hidden = false;
}

/** The lesson whose run this page built last, with what each banner fix does to it: {id, fixes}. */
let lessonRun = null;

/**
 * Mark the divergence banner's fixes with what they do to the lesson's run (a lesson's `fixes`,
 * which the engine tests run), so a fix that does not help there says so; any other run's
 * banner shows them unmarked.
 */
function markFixes(sessionId) {
  const fixes = lessonRun && lessonRun.id === sessionId ? lessonRun.fixes || {} : {};
  for (const kind of ["lr", "clip", "bn"]) {
    const button = $(`fix-${kind}`);
    const fix = fixes[kind];
    let note = button.querySelector(".fix-note");
    if (!note) {
      note = el("span", { class: "fix-note" });
      button.append(note);
    }
    setText(note, fix ? ` — ${fix.note}` : "");
    if (fix) button.dataset.works = String(!!fix.works);
    else delete button.dataset.works;
  }
}

function hideBanner() {
  $("banner").hidden = true;
}

let noteTimer = null;
function statusNote(text, kind = "note") {
  const n = $("st-event");
  n.textContent = text;
  n.dataset.kind = kind;
  clearTimeout(noteTimer);
  noteTimer = setTimeout(() => {
    if (n.dataset.kind === kind) n.textContent = "";
  }, 6000);
}

/**
 * A fix from the divergence banner: change the setup, start again from the initial weights (the
 * diverged weights teach nothing) and train at the current pace, so "Try: ..." really tries it.
 */
async function fixDivergence(kind) {
  const cfg = controls.readConfig();
  if (kind === "lr") cfg.optimizer.learning_rate = Number((cfg.optimizer.learning_rate / 10).toPrecision(3));
  if (kind === "clip") cfg.gradient_clip = { kind: "norm", threshold: 1 };
  if (kind === "bn") {
    const layers = [];
    cfg.layers.forEach((l, i) => {
      layers.push(l);
      const next = cfg.layers[i + 1];
      if (l.type === "dense" && i < cfg.layers.length - 1 && !(next && next.type === "batchnorm")) layers.push({ type: "batchnorm", momentum: 0.1, eps: 1e-5 });
    });
    cfg.layers = layers;
  }
  controls.writeConfig(cfg);
  hideBanner();
  const next = controls.readConfig();
  controls.writeFragment(next, store.session ? store.session.id : null);
  if (kind === "bn") {
    rebuildSoon.cancel();
    if (!(await rebuild(next))) return;
  } else {
    if (!(await applyHyper(next))) return;
    if (store.session && store.session.step > 0) await resetRun();
  }
  if (!isRunning()) await startOrPause();
}

function describeEvent(e) {
  switch (e.type) {
    case "clip":
      return `step ${fmtInt(e.step)}: gradients clipped${e.message ? ` (${e.message})` : ""}`;
    case "best":
      return `step ${fmtInt(e.step)}: best test loss so far`;
    case "early_stop":
      return `step ${fmtInt(e.step)}: early stop${e.message ? ` — ${e.message}` : ""}`;
    case "diverged":
      return `step ${fmtInt(e.step)}: diverged${e.message ? ` — ${e.message}` : ""}`;
    case "hyperparameters":
      return `step ${fmtInt(e.step)}: ${Object.entries(e.changes || {}).map(([k, v]) => `${k} ${v && typeof v === "object" && "new" in v ? `${fmtMaybe(v.old)} → ${fmtMaybe(v.new)}` : ""}`).join(", ") || "hyperparameters changed"}`;
    default:
      return `${e.step !== undefined ? `step ${fmtInt(e.step)}: ` : ""}${e.message || e.type}`;
  }
}

function fmtMaybe(v) {
  return typeof v === "number" ? fmt(v) : JSON.stringify(v);
}

function pct(v) {
  return v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`;
}

/** "running · 500 steps/s", "running · full speed", or the status in plain words. */
function runStatusText(s) {
  if (s.status !== "running") return statusText(s.status);
  return `running · ${s.pace ? `${fmtInt(s.pace)} steps/s` : "full speed"}`;
}

function renderSession() {
  const s = store.session;
  const running = isRunning();
  const btn = $("btn-start");
  setAttr(btn, "data-state", running ? "running" : "paused");
  setText(btn.querySelector(".label"), running ? "Pause" : "Start");
  setText(btn.querySelector(".play-icon"), running ? "❚❚" : "▶");
  $("btn-step1").disabled = running;
  $("btn-step10").disabled = running;
  const status = !s ? "–" : serverDown ? "unknown: server unreachable" : runStatusText(s);
  setText($("st-status"), status);
  setText($("run-name"), s ? s.name || s.id : "no run yet");
  const pill = $("run-status");
  setText(pill, status);
  setAttr(pill, "data-status", !s ? "none" : serverDown ? "offline" : s.status);
  document.body.dataset.status = s ? s.status : "none";
  $("btn-start").disabled = serverDown;
  const info = datasetInfo(store.config);
  const accTab = document.querySelector("[data-chart-tab='acc']");
  const regression = !!(info && info.task === "regression");
  if (accTab.hidden !== regression) {
    accTab.hidden = regression;
    if (regression && accTab.classList.contains("active")) document.querySelector("[data-chart-tab='ratio']").click();
  }
  if (s && s.status === "diverged") {
    showBanner(`Training diverged (paused at step ${fmtInt(s.step)}).`, s.message || "The loss or the gradients became NaN or infinite; the last good weights are kept.");
    markFixes(s.id);
  } else if (s && s.status === "stopped_early") {
    const best = s.best_step !== null && s.best_step !== undefined ? s.best_step : store.bestStep;
    const ev = store.earlyStop;
    setText($("st-event"), `early stop${best !== null && best !== undefined ? ` — best step ${fmtInt(best)}` : ""}${s.message ? `: ${s.message}` : ""}`);
    $("st-event").dataset.kind = "early_stop";
    const detail = ev && ev.message ? ev.message : s.message || "the test loss stopped improving";
    showBanner(`Early stop at step ${fmtInt(s.step)}${best !== null && best !== undefined ? ` — best step ${fmtInt(best)}` : ""}.`, `${detail.replace(/\.?\s*$/, ".")} The dashed line on the loss chart marks the best step.`, "info");
  } else if ($("banner").dataset.kind === "info") {
    hideBanner();
  }
  if (s && s.step !== undefined && (!store.latest || store.latest.step === undefined || s.step > store.latest.step)) {
    store.latest = { ...(store.latest || {}), step: s.step, epoch: s.epoch };
    renderLatest();
  }
}

function renderLatest() {
  const m = store.latest || {};
  setText($("st-step"), fmtInt(m.step ?? 0));
  $("st-step").dataset.value = String(m.step ?? 0);
  setText($("st-epoch"), fmtInt(m.epoch ?? 0));
  setText($("st-speed"), m.steps_per_second ? fmtInt(m.steps_per_second) : "–");
  setText($("st-loss"), fmt(m.loss ?? null, 4));
  setText($("st-test-loss"), fmt(m.test_loss ?? null, 4));
  setText($("st-acc"), pct(m.accuracy));
  setText($("st-test-acc"), pct(m.test_accuracy));
  if (Object.keys(store.latestLayers).length) {
    view.setLayerStats(store.latestLayers);
    renderBnPanel();
  }
}

// ------------------------------------------------------------------------------ batch-norm panel

let bnLayers = [];
let bnSelected = null;

/** One chip per batch-norm layer of the run; the panel is hidden when there is none. */
function setupBnPanel(cfg) {
  const layers = (cfg && cfg.layers) || [];
  bnLayers = [];
  layers.forEach((l, i) => {
    if (l.type !== "batchnorm") return;
    let units = null;
    for (let k = i - 1; k >= 0; k--) {
      if (layers[k].type === "dense") {
        units = layers[k].units;
        break;
      }
      if (layers[k].type === "conv2d") {
        units = layers[k].filters;
        break;
      }
    }
    bnLayers.push({ name: String(i), units, eps: l.eps ?? 1e-5, after: i - 1 });
  });
  $("bn-panel").hidden = !bnLayers.length;
  if (!bnLayers.length) return;
  bnSelected = bnLayers[0].name;
  $("bn-layers").replaceChildren(
    ...bnLayers.map((b) => {
      const chip = el("button", { type: "button", class: "bn-chip", "data-layer": b.name, title: `batch norm layer ${b.name} (after layer ${b.after})`, text: `L${b.name}` });
      chip.addEventListener("click", () => {
        bnSelected = b.name;
        renderBnPanel(true);
      });
      return chip;
    }),
  );
  $("bn-formula").replaceChildren(
    el("span", { class: "bn-f" }, formulaNodes("x_hat = (x - mu_B) / sqrt(sigma_B^2 + eps)")),
    el("span", { class: "bn-f" }, formulaNodes("y = gamma * x_hat + beta")),
  );
  renderBnPanel(true);
}

/** Live batch mean and variance of the selected batch-norm layer (from the latest metrics frame). */
function renderBnPanel(rebuild = false) {
  if (!bnLayers.length) return;
  const b = bnLayers.find((x) => x.name === bnSelected) || bnLayers[0];
  for (const chip of $("bn-layers").children) chip.classList.toggle("active", chip.dataset.layer === b.name);
  const st = store.latestLayers[b.name];
  const mean = st && Array.isArray(st.batch_mean) ? st.batch_mean : null;
  const vari = st && Array.isArray(st.batch_var) ? st.batch_var : null;
  const n = Math.min(16, (mean && mean.length) || b.units || 0);
  const body = $("bn-body");
  if (rebuild || body.dataset.layer !== b.name || Number(body.dataset.units) !== n) {
    body.dataset.layer = b.name;
    body.dataset.units = String(n);
    const head = [el("span", { class: "bn-k", text: "unit" }), ...Array.from({ length: n }, (_, u) => el("span", { class: "bn-unit", text: String(u) }))];
    const row = (cls, label) => [el("span", { class: "bn-k" }, formulaNodes(label)), ...Array.from({ length: n }, (_, u) => el("span", { class: `bn-cell ${cls}`, "data-unit": u }, [el("i", { class: "bn-bar" }), el("span", { class: "bn-num", text: "–" })]))];
    body.replaceChildren(...head, ...row("bn-mean", "mu_B"), ...row("bn-var", "sigma_B^2"));
    body.style.setProperty("--bn-cols", String(n));
    const more = (mean && mean.length) || b.units || 0;
    body.dataset.more = more > n ? `+${more - n}` : "";
  }
  const maxAbs = (arr) => (arr ? Math.max(1e-12, ...arr.slice(0, n).map((v) => Math.abs(v) || 0)) : 1);
  const mMax = maxAbs(mean);
  const vMax = maxAbs(vari);
  const cells = body.querySelectorAll(".bn-cell");
  for (const cell of cells) {
    const u = Number(cell.dataset.unit);
    const isMean = cell.classList.contains("bn-mean");
    const arr = isMean ? mean : vari;
    const v = arr ? arr[u] : null;
    setAttr(cell, "data-value", v === null || v === undefined ? "" : String(v));
    setText(cell.lastChild, v === null || v === undefined ? "–" : fmt(v, 3));
    const t = v === null || v === undefined ? 0 : Math.min(1, Math.abs(v) / (isMean ? mMax : vMax));
    setStyle(cell.firstChild, "width", `${(t * 100).toFixed(0)}%`);
    setAttr(cell.firstChild, "data-sign", v < 0 ? "neg" : "pos");
  }
  setText($("bn-panel").querySelector(".bn-title"), `Batch norm L${b.name} · live batch statistics${st ? ` · step ${fmtInt(store.latest ? store.latest.step : 0)}` : " · press Start"}`);
}

function renderEvents() {
  const e = store.events[store.events.length - 1];
  if (!e) return;
  const n = $("st-event");
  n.dataset.kind = e.type;
  setText(n, describeEvent(e));
  if (e.type === "diverged" && $("banner").hidden) {
    showBanner("Training diverged.", e.message || describeEvent(e));
    markFixes(store.session ? store.session.id : null);
  }
}

// ------------------------------------------------------------------------------ predictions for the data view

async function refreshPredictions(now) {
  const s = store.session;
  const kind = dataView.kind;
  if (!s || predicting || now - lastPredict < PREDICT_INTERVAL_MS || !store.data) return;
  if (kind !== "image" && kind !== "1d" && kind !== "table") return;
  predicting = true;
  lastPredict = now;
  try {
    if (kind === "1d") {
      const [[x0, x1]] = dataView.extent();
      const xs = Array.from({ length: 121 }, (_, i) => x0 + ((x1 - x0) * i) / 120);
      const r = await api.predict(s.id, xs.map((x) => [x]));
      dataView.setCurve({ xs, ys: r.outputs.map((o) => first(o)[0] ?? o) });
    } else if (kind === "table") {
      const samples = dataView.gallerySamples(8);
      if (samples.length) {
        const r = await api.predict(s.id, samples.map((x) => x.x));
        const cfg = store.config || {};
        const out = (cfg.layers || [])[(cfg.layers || []).length - 1] || {};
        const task = store.data && store.data.task;
        // a tanh output learned targets -1/+1, so 0 splits its two classes; others 0.5
        const cut = out.activation === "tanh" ? 0 : 0.5;
        dataView.setPredictions(r.outputs.map((o) => (task === "regression" ? first(o)[0] ?? o : argmax(first(o), cut))));
      }
    } else {
      const samples = dataView.gallerySamples();
      if (samples.length) {
        const r = await api.predict(s.id, samples.map((x) => x.x));
        dataView.setPredictions(r.outputs.map((o) => argmax(first(o))));
      }
    }
  } catch {
    /* a failed prediction only leaves the view as it was */
  } finally {
    predicting = false;
  }
}

function argmax(v, cut = 0.5) {
  if (!Array.isArray(v)) return v >= cut ? 1 : 0;
  if (v.length === 1) return v[0] >= cut ? 1 : 0;
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}

// ------------------------------------------------------------------------------ the frame loop

function frame(now) {
  try {
    const d = store.dirty;
    if (d.session) {
      d.session = false;
      renderSession();
    }
    if (d.latest && now - lastStatus >= STATUS_INTERVAL_MS) {
      d.latest = false;
      lastStatus = now;
      renderLatest();
    }
    if (d.events) {
      d.events = false;
      renderEvents();
    }
    if (d.connection) {
      d.connection = false;
      const c = $("st-conn");
      c.dataset.connected = store.connected ? "yes" : "no";
      c.textContent = store.connected ? "live" : "offline";
      if (!store.connected && store.session) checkHealth(); // a dropped stream: is the server gone?
    }
    if (d.data) {
      d.data = false;
      dataView.setData(store.data);
      if (dataView.kind === "image" && store.data) {
        const s = dataView.gallerySamples(1)[0];
        if (s) view.setInputImage(Array.isArray(s.x[0][0]) ? s.x[0] : s.x);
      }
      lastPredict = 0;
    }
    if (d.snapshot) {
      d.snapshot = false;
      const snap = store.snapshot;
      if (!explainer.active) view.setSnapshot(snap);
      else view.snap = snap;
      dataView.setGrid(snap ? snap.grid : null);
      histograms.setSnapshot(snap);
      if (pulse.enabled && !explainer.active) pulse.trigger();
      lastPredict = Math.min(lastPredict, now - PREDICT_INTERVAL_MS * 0.5);
    }
    if (d.history && now - lastChart >= CHART_INTERVAL_MS) {
      d.history = false;
      lastChart = now;
      charts.update(store.history, store.config, { clips: store.clips, bestStep: store.bestStep, earlyStop: store.earlyStop });
    }
    compareView.frame(now);
    refreshPredictions(now);
    pulse.frame(now);
    explainer.frame(now);
    view.render(now);
    dataView.render();
  } catch (err) {
    console.error(err); // eslint-disable-line no-console
  }
  requestAnimationFrame(frame);
}

// ------------------------------------------------------------------------------ DOM wiring

function bindDom() {
  $("btn-start").addEventListener("click", startOrPause);
  $("btn-step1").addEventListener("click", () => stepButton(1));
  $("btn-step10").addEventListener("click", () => stepButton(10));
  $("btn-reset").addEventListener("click", resetRun);
  $("speed").addEventListener("change", changeSpeed);
  $("step-log").addEventListener("change", (e) => charts.setLogSteps(e.target.checked));
  $("pulse-toggle").addEventListener("change", (e) => {
    pulse.enabled = e.target.checked;
    if (!pulse.enabled) pulse.stop();
  });
  $("explain-btn").addEventListener("click", () => (explainer.active ? explainer.close() : explainButton()));
  $("show-test").addEventListener("change", (e) => {
    dataView.showTest = e.target.checked;
    dataView.dirty = true;
  });
  $("discretize").addEventListener("change", (e) => {
    dataView.discretize = e.target.checked;
    dataView.dirty = true;
  });
  $("loss-log").addEventListener("change", (e) => charts.loss.setLog(e.target.checked));
  $("grad-log").addEventListener("change", (e) => {
    charts.grad.setLog(e.target.checked);
    charts.ratio.setLog(e.target.checked);
  });
  for (const tab of document.querySelectorAll("[data-chart-tab]")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll("[data-chart-tab]")) t.classList.toggle("active", t === tab);
      for (const b of document.querySelectorAll("[data-chart-body]")) b.hidden = b.dataset.chartBody !== tab.dataset.chartTab;
      $("hist-layer").hidden = tab.dataset.chartTab !== "hist";
      if (tab.dataset.chartTab === "hist") histograms.draw();
      charts.update(store.history, store.config, { clips: store.clips, bestStep: store.bestStep, earlyStop: store.earlyStop });
    });
  }
  $("banner-close").addEventListener("click", hideBanner);
  $("fix-lr").addEventListener("click", () => fixDivergence("lr"));
  $("fix-clip").addEventListener("click", () => fixDivergence("clip"));
  $("fix-bn").addEventListener("click", () => fixDivergence("bn"));
  $("we-apply").addEventListener("click", applyWeightEdit);
  $("we-cancel").addEventListener("click", closeWeightEditor);
  $("we-value").addEventListener("keydown", (e) => {
    if (e.key === "Enter") applyWeightEdit();
  });
  $("weight-editor").addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    closeWeightEditor();
  });
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.defaultPrevented) return; // a widget (tabs, the network, a dialog) used the key
    if (t instanceof HTMLElement && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (e.key === " " && t instanceof HTMLElement && t.closest("button, a[href], summary")) return; // Space presses the focused button
    if (e.key === " " && !e.repeat) {
      e.preventDefault();
      startOrPause();
    } else if (explainer.active && e.key === "ArrowRight") explainer.go(explainer.k + 1, true);
    else if (explainer.active && e.key === "ArrowLeft") explainer.go(explainer.k - 1, true);
    else if (e.key === "Escape") {
      if (explainer.active) explainer.close();
      if (!$("compare").hidden) controls.closeCompare();
    }
  });
}

async function init() {
  bindDom();
  initA11y();
  requestAnimationFrame(frame);
  await checkHealth();
  setInterval(checkHealth, HEALTH_INTERVAL_MS);
  const [ds, ps] = await Promise.allSettled([api.datasets(), api.presets()]);
  if (ds.status === "fulfilled" && ds.value && Array.isArray(ds.value.datasets)) {
    for (const d of ds.value.datasets) store.datasets[d.name] = d;
    controls.fillDatasets(ds.value.datasets);
  }
  store.presets = ps.status === "fulfilled" && ps.value && Array.isArray(ps.value.presets) ? ps.value.presets : [];
  controls.fillPresets(store.presets);

  const frag = Controls.readFragment();
  if (frag.runId) {
    try {
      const s = await api.session(frag.runId);
      if (!frag.config || structuralKey(frag.config) === structuralKey(s.config)) {
        await openSession(s, { keepForm: false });
        if (frag.config) {
          controls.writeConfig(frag.config);
          await applyHyper(controls.readConfig());
        }
        document.body.dataset.ready = "yes";
        return;
      }
    } catch {
      /* the run is gone: rebuild from the config in the link */
    }
  }
  let cfg = frag.config;
  let name;
  if (!cfg && frag.preset) {
    const p = store.presets.find((x) => x.id === frag.preset);
    if (p) {
      cfg = p.config;
      name = p.title;
      $("preset").value = p.id;
    }
  }
  if (!cfg) {
    const p = store.presets.find((x) => x.id === "xor") || null;
    cfg = p ? p.config : DEFAULT_CONFIG;
    name = p ? p.title : undefined;
    if (p) $("preset").value = p.id;
  }
  controls.writeConfig(cfg);
  await rebuild(controls.readConfig(), { name, force: true });
  document.body.dataset.ready = "yes";
}

init();
