// The compare view: 2-3 runs side by side, each with its own WebSocket into its own run state
// (the reducer of run_state.js, as the main view), loss chart and per-layer gradient-norm chart,
// stepped in lockstep so every column is at the same step; the frame loop calls frame().

import { ApiError } from "./api.js";
import { bnCells, fillBnCells, unitsBefore } from "./bn_panel.js";
import { LineChart, layerNames, layerSeries } from "./charts.js";
import { selectedPace, showPace } from "./pace_select.js";
import { applyMessage, createRunState, lastEvent } from "./run_state.js";
import { Stream } from "./stream.js";
import { el, fmt, fmtInt, setAttr, setText, statusText } from "./util.js";

const CHART_MS = 120;

/** A run state whose every message also marks the compare view for redrawing. */
function runStore(view) {
  const state = createRunState();
  state.push = (msg) => {
    applyMessage(state, msg);
    view.dirty = true;
  };
  return state;
}

/** The overlay comparing 2-3 runs live, stepped in lockstep at a pace a person can follow. */
export class CompareView {
  constructor({ api, onClose }) {
    this.api = api;
    this.onClose = onClose;
    this.overlay = document.getElementById("compare");
    this.grid = document.getElementById("compare-grid");
    this.runs = [];
    this.dirty = false;
    this.lastDraw = 0;
    this.driving = null; // {stopped, done} while the page steps the runs in turn
    this.generation = 0;
    document.getElementById("compare-close").addEventListener("click", () => this.close());
    this.toggle = document.getElementById("compare-toggle");
    this.toggle.addEventListener("click", () => (this.isRunning() ? this.pauseAll() : this.startAll()));
    this.logBox = document.getElementById("compare-log");
    this.logBox.addEventListener("change", () => {
      for (const r of this.runs) r.loss.setLog(this.logBox.checked);
      this.dirty = true;
    });
    this.logXBox = document.getElementById("compare-logx");
    this.logXBox.addEventListener("change", () => {
      for (const r of this.runs) {
        r.loss.setLogX(this.logXBox.checked);
        r.grad.setLogX(this.logXBox.checked);
      }
      this.dirty = true;
    });
    this.speed = document.getElementById("compare-speed");
  }

  get open() {
    return !this.overlay.hidden;
  }

  /** Steps per second each run is asked for, or null for as fast as they go. */
  pace() {
    return selectedPace(this.speed);
  }

  setPace(pace) {
    showPace(this.speed, pace);
  }

  /** Compare existing runs (from the Runs tab). */
  async openIds(ids, opts = {}) {
    const gen = await this.reset(opts);
    const sessions = await Promise.all(ids.map((id) => this.api.session(id).catch((err) => ({ id, error: err.message }))));
    if (gen !== this.generation) return;
    this.build(sessions.map((s) => ({ session: s.error ? null : s, id: s.id, label: s.error ? s.id : s.name || s.id, error: s.error })));
    const external = this.runs.filter((r) => r.external).length;
    const here = this.runs.length - external;
    this.setNote(
      external
        ? `${external === 1 ? "The PyTorch run is" : "The PyTorch runs are"} followed live as ${external === 1 ? "its script trains it" : "their scripts train them"}${here ? "; ▶ Start all trains the others here, in turn" : ""}.`
        : "Press ▶ Start all: the runs then train in turn, always at the same step.",
    );
  }

  /** Create one run per {label, config} (a lesson's "compare"); they train when the user presses Start all. */
  async openConfigs(list, opts = {}) {
    const gen = await this.reset(opts);
    this.setNote("creating the runs…");
    const sessions = await Promise.all(
      list.map((c) =>
        this.api.create(c.config, `${opts.prefix ? `${opts.prefix}: ` : ""}${c.label}`).catch((err) => ({ error: err instanceof ApiError ? err.message : String(err) })),
      ),
    );
    if (gen !== this.generation) {
      for (const s of sessions) if (s.id) this.api.remove(s.id).catch(() => {});
      return;
    }
    this.build(sessions.map((s, k) => ({ session: s.error ? null : s, id: s.id, label: list[k].label, error: s.error, config: list[k].config })));
    this.owned = new Set(sessions.filter((s) => s.id).map((s) => s.id));
    const pace = this.pace();
    this.setNote(`Press ▶ Start all: the ${this.runs.length} runs then train in turn at ${pace ? `${fmtInt(pace)} steps/s each` : "full speed"}, always at the same step.`);
  }

  async reset(opts) {
    this.generation += 1;
    await this.teardown();
    this.overlay.hidden = false;
    this.overlay.dataset.count = "0";
    document.getElementById("compare-title").textContent = opts.title || "Compare runs";
    const watch = document.getElementById("compare-watch");
    watch.textContent = opts.watch || "";
    watch.hidden = !opts.watch;
    if (opts.pace !== undefined) this.setPace(opts.pace);
    this.logXBox.checked = !!opts.logSteps;
    this.grid.replaceChildren();
    this.owned = new Set();
    this.setNote("");
    return this.generation;
  }

  setNote(text) {
    document.getElementById("compare-note").textContent = text;
  }

  build(entries) {
    this.grid.dataset.cols = String(entries.length);
    this.overlay.dataset.count = String(entries.length);
    for (const [k, e] of entries.entries()) {
      const col = el("div", { class: "compare-col", "data-run": e.id || "", "data-index": k });
      this.grid.append(col);
      if (e.error || !e.session) {
        col.append(el("h3", { text: e.label }), el("p", { class: "field-error", text: e.error || "no run" }));
        continue;
      }
      const s = e.session;
      const cfg = s.config || e.config || {};
      const status = el("span", { class: "pill", "data-status": s.status, text: statusText(s.status) });
      const stepEl = el("span", { class: "cmp-step", "data-value": String(s.step), text: `step ${fmtInt(s.step)}` });
      const lossEl = el("span", { class: "cmp-loss", "data-value": "", text: "" });
      const testEl = el("span", { class: "cmp-test-loss", "data-value": "", text: "" });
      const accEl = el("span", { class: "cmp-acc", "data-value": "", text: "" });
      const noteEl = el("p", { class: "cmp-note", hidden: true });
      const statsEl = el("div", { class: "cmp-stats" });
      const external = cfg.kind === "external"; // trained by its own script: followed, never stepped here
      const bnEl = external ? null : batchNormStrip(cfg);
      col.append(
        el("div", { class: "cmp-head" }, [el("h3", { text: s.name || e.label }), status]),
        el("p", { class: "hint", text: describeConfig(cfg) }),
        el("div", { class: "cmp-live" }, [stepEl, lossEl, testEl, accEl]),
        statsEl,
        ...(bnEl ? [bnEl] : []),
        noteEl,
      );
      const lossHost = el("div", { class: "chart compare-chart", "data-compare": `loss-${k}`, "data-points": "0" });
      const gradHost = el("div", { class: "chart compare-chart", "data-compare": `grad-${k}`, "data-points": "0" });
      col.append(el("h4", { text: "Loss" }), lossHost, el("h4", { text: "Gradient norm per layer" }), gradHost);
      const loss = new LineChart(lossHost, { id: `cmp-loss-${k}`, height: 160, log: this.logBox.checked, logX: this.logXBox.checked, yRange: [0, 1] });
      loss.setSeries([
        { label: "train", color: "#0877bd", width: 1.8 },
        { label: "test", color: "#f59322", width: 1.8 },
      ]);
      const grad = new LineChart(gradHost, { id: `cmp-grad-${k}`, height: 160, log: true, logX: this.logXBox.checked });
      // step and metrics shown: the answer of the last lockstep round (the same step in every column)
      const run = { id: s.id, label: e.label, cfg, external, session: s, loss, grad, status, stepEl, lossEl, testEl, accEl, noteEl, statsEl, bnEl, store: null, stream: null, step: s.step, metrics: s.metrics };
      run.store = runStore(this);
      run.store.session = s;
      run.stream = new Stream(run.store);
      run.stream.open(s.id);
      this.runs.push(run);
    }
    this.dirty = true;
    this.syncToggle();
  }

  isRunning() {
    return !!this.driving;
  }

  syncToggle() {
    const running = this.isRunning();
    setText(this.toggle, running ? "❚❚ Pause all" : "▶ Start all");
    setAttr(this.toggle, "data-state", running ? "running" : "paused");
    this.toggle.disabled = !this.runs.some((r) => !r.external);
  }

  /**
   * Train every run, in lockstep: each round steps every run by the same number of steps (POST
   * /step, one run after the other), so after each round all of them are at the same step and
   * their numbers compare directly. At a pace, a round is about 0.1 s of steps; at full speed,
   * rounds grow until a request takes 60-150 ms. Only one run trains at any moment, so this never
   * asks for more than one of the server's training slots.
   */
  async startAll() {
    if (!this.runs.some((r) => !r.external) || this.driving) return;
    for (const r of this.runs.filter((x) => !x.external)) {
      this.owned.add(r.id);
      if (r.store.session && r.store.session.status === "running") await this.api.stop(r.id).catch(() => {});
    }
    const gen = this.generation;
    const driving = { stopped: false, done: null, rate: null };
    this.driving = driving;
    driving.done = this.drive(gen, driving);
    this.syncToggle();
    this.dirty = true;
  }

  async drive(gen, driving) {
    let chunk = 20; // full speed: steps per request, adapted below
    const t0 = performance.now();
    const step0 = Math.min(...this.runs.filter((r) => !r.external).map((r) => r.step));
    while (!driving.stopped && gen === this.generation) {
      const live = this.runs.filter((r) => !r.dead && !r.external);
      if (!live.length) break;
      const pace = this.pace();
      const tick = pace === null ? 0 : Math.max(100, 1000 / pace); // ms per round
      const k = pace === null ? chunk : Math.max(1, Math.round((pace * tick) / 1000));
      const started = performance.now();
      const answers = [];
      // a round, once begun, steps every run even if Pause is pressed meanwhile: a pause between
      // two runs of one round would leave them at different steps
      for (const r of live) {
        for (let attempt = 0; ; attempt += 1) {
          try {
            answers.push([r, await this.api.step(r.id, k)]);
            break;
          } catch (err) {
            // 429: every training slot is busy for a moment; the round waits for this run
            if (err && err.status === 429 && attempt < 100 && gen === this.generation) {
              await new Promise((ok) => setTimeout(ok, 100));
              continue;
            }
            if (!err || err.status !== 409) {
              r.dead = true;
              r.note = err ? err.message : "step failed";
            }
            break;
          }
        }
      }
      // every column shows the round's step at once, never one run ahead of another
      for (const [r, res] of answers) {
        r.step = res.step;
        r.metrics = res.metrics;
        if (res.status && res.status !== "paused" && res.status !== "idle") {
          r.dead = true; // diverged or stopped early: it stays where it stopped
          r.store.session = { ...(r.store.session || {}), status: res.status };
        }
      }
      const done = Math.max(0, ...live.map((r) => r.step)) - step0;
      const seconds = (performance.now() - t0) / 1000;
      driving.rate = seconds > 0.5 ? done / seconds : null;
      this.dirty = true;
      const spent = performance.now() - started;
      if (pace === null) {
        const per = spent / Math.max(1, live.length);
        if (per < 60 && chunk < 400) chunk = Math.min(400, Math.ceil(chunk * 1.5));
        else if (per > 150 && chunk > 5) chunk = Math.max(5, Math.floor(chunk / 1.5));
      }
      await new Promise((ok) => setTimeout(ok, Math.max(0, tick - spent)));
    }
    if (this.driving === driving) this.driving = null;
    this.syncToggle();
    this.dirty = true;
  }

  async pauseAll() {
    const driving = this.driving;
    if (!driving) return;
    driving.stopped = true;
    await driving.done; // the round in flight ends first: the runs stay at the same step
    this.syncToggle();
  }

  async teardown() {
    const driving = this.driving;
    if (driving) {
      driving.stopped = true;
      this.driving = null;
    }
    const runs = this.runs;
    this.runs = [];
    for (const r of runs) {
      r.stream.close();
      r.loss.destroy();
      r.grad.destroy();
    }
    const owned = this.owned || new Set();
    await Promise.allSettled(runs.filter((r) => owned.has(r.id)).map((r) => this.api.stop(r.id)));
  }

  async close() {
    this.generation += 1;
    this.overlay.hidden = true;
    await this.teardown();
    this.grid.replaceChildren();
    if (this.onClose) this.onClose();
  }

  /** Called by the page's animation frame (frame_loop.js): charts at most every CHART_MS. */
  frame(now) {
    if (!this.dirty || !this.runs.length || now - this.lastDraw < CHART_MS) return;
    this.dirty = false;
    this.lastDraw = now;
    // one loss range for all columns, so the curves read alike
    let hi = 0;
    for (const r of this.runs) {
      for (const col of [r.store.history.loss, r.store.history.test_loss]) for (const v of col) if (v !== null && v > hi && Number.isFinite(v)) hi = v;
    }
    const range = [0, hi > 0 ? hi * 1.05 : 1];
    const driving = this.driving;
    for (const r of this.runs) {
      const h = r.store.history;
      r.loss.opts.yRange = range;
      r.loss.setData([h.step, h.loss, h.test_loss]);
      const names = layerNames(h);
      r.grad.setSeries(layerSeries(names, r.cfg));
      r.grad.setData([h.step, ...names.map((n) => h.layers[n].grad_norm)]);
      const s = r.store.session;
      if (r.external && r.store.latest) {
        // its script's own steps, as they stream in (no lockstep for a run trained elsewhere)
        r.step = r.store.latest.step ?? r.step;
        r.metrics = r.store.latest;
      }
      const inTurn = driving && !r.dead && !r.external;
      const status = inTurn ? "running" : s ? s.status : "idle";
      setAttr(r.status, "data-status", status);
      setText(r.status, inTurn ? "running (in turn)" : statusText(status));
      setText(r.stepEl, `step ${fmtInt(r.step)}`);
      setAttr(r.stepEl, "data-value", String(r.step));
      const m = r.metrics || {};
      for (const [node, key, label, digits] of [[r.lossEl, "loss", "loss", 4], [r.testEl, "test_loss", "test", 4], [r.accEl, "test_accuracy", "test acc", null]]) {
        const v = m[key];
        setAttr(node, "data-value", v === null || v === undefined ? "" : String(v));
        setText(node, v === null || v === undefined ? "" : digits ? `${label} ${fmt(v, digits)}` : `${label} ${(v * 100).toFixed(1)}%`);
      }
      const layers = Object.values(r.store.latestLayers);
      setText(r.statsEl, layerStatsText(layers, r.cfg));
      if (r.bnEl) fillBnCells(r.bnEl.querySelectorAll(".bn-cell"), r.store.latestLayers[r.bnEl.dataset.layer], r.bnEl.querySelectorAll(".bn-cell").length / 2);
      const diverged = lastEvent(r.store, "diverged");
      const note = r.note || (diverged && diverged.message) || (s && s.status === "diverged" ? s.message : "");
      r.noteEl.hidden = !note;
      if (note) setText(r.noteEl, note);
    }
    if (driving) {
      const pace = this.pace();
      const rate = driving.rate;
      const stopped = this.runs.filter((r) => r.dead).length;
      this.setNote(
        `Training in turn${pace ? ` at ${fmtInt(pace)} steps/s each` : " at full speed"}${rate ? ` (${fmtInt(rate)} steps/s reached)` : ""}: ` +
          (stopped ? `the others stay at the same step; ${stopped === 1 ? "one run has" : `${stopped} runs have`} stopped where its note says.` : "every column is at the same step."),
      );
    }
    this.syncToggle();
  }
}

/**
 * The live batch statistics of a run's first batch-norm layer, inside its compare column (the
 * page's own batch-norm panel is under the overlay): per unit, the batch mean and variance.
 */
function batchNormStrip(cfg) {
  const layers = cfg.layers || [];
  const index = layers.findIndex((l) => l.type === "batchnorm");
  if (index < 0) return null;
  const units = unitsBefore(layers, index) ?? 8;
  const n = Math.min(8, units);
  const body = el("div", { class: "bn-body" }, bnCells(n));
  body.style.setProperty("--bn-cols", String(n));
  return el("div", { class: "cmp-bn", "data-layer": String(index) }, [el("div", { class: "bn-title", text: `batch norm L${index} · live batch mean and variance${units > n ? ` (first ${n} of ${units} units)` : ""}` }), body]);
}

/** "dead: L0 12% L1 40%" for ReLU layers, "saturated: ..." for sigmoid/tanh ones. */
function layerStatsText(layers, cfg) {
  if (!layers || !layers.length) return "";
  const dead = [];
  const sat = [];
  for (const l of layers) {
    const conf = cfg.layers ? cfg.layers[Number(l.name)] : null;
    const act = conf ? conf.activation : "";
    if ((act === "relu" || act === "leaky_relu") && typeof l.dead_fraction === "number") dead.push(`L${l.name} ${Math.round(l.dead_fraction * 100)}%`);
    if ((act === "sigmoid" || act === "tanh") && typeof l.saturated_fraction === "number") sat.push(`L${l.name} ${Math.round(l.saturated_fraction * 100)}%`);
  }
  return [dead.length ? `dead ReLU: ${dead.join(" ")}` : "", sat.length ? `saturated: ${sat.join(" ")}` : ""].filter(Boolean).join(" · ");
}

function describeConfig(cfg) {
  if (cfg.kind === "external") return `${cfg.model || "model"} (${cfg.framework || "script"}) · ${(cfg.layers || []).filter((l) => l.parameters > 0).length} layers with parameters · trained by its own script`;
  const layers = (cfg.layers || []).map((l) => (l.type === "dense" ? `${l.units} ${l.activation || ""}`.trim() : l.type)).join(" → ");
  const o = cfg.optimizer || {};
  const opt = o.name ? `${o.name}${o.momentum ? ` μ ${o.momentum}` : ""} lr ${o.learning_rate}` : "";
  return [cfg.dataset ? cfg.dataset.name : "", layers, opt].filter(Boolean).join(" · ");
}
