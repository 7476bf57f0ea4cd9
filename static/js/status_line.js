// What the open run is doing, in the header and the status line: the Start button and the step
// buttons follow whether it trains, the pill and the footer show its status and latest numbers,
// the event slot the newest event or a note from the page, the banner a divergence, an early stop
// or a run the server cannot save (a full disk).

import { isExternal } from "./external_mode.js";
import { isRunning } from "./run_state.js";
import { fmt, fmtInt, setAttr, setText, statusText } from "./util.js";

const $ = (id) => document.getElementById(id);
/** The status line's evaluated numbers: train and test loss and accuracy. */
const EVALUATED_IDS = ["st-loss", "st-test-loss", "st-acc", "st-test-acc"];

function fmtMaybe(v) {
  return typeof v === "number" ? fmt(v) : JSON.stringify(v);
}

function pct(v) {
  return v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`;
}

/** One event in words: "step 120: gradients clipped (...)". */
export function describeEvent(e) {
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

/** "running · 500 steps/s", "running · full speed", or the status in plain words. */
function runStatusText(s) {
  if (s.status !== "running") return statusText(s.status);
  return `running · ${s.pace ? `${fmtInt(s.pace)} steps/s` : "full speed"}`;
}

export class StatusLine {
  /**
   * @param {{store: object, view: object, bnPanel: object, banner: object, health: object, charts: object}} parts
   *   health.down: the last health check found no server; charts.syncAccuracyTab(store.config)
   */
  constructor({ store, view, bnPanel, banner, health, charts }) {
    this.store = store;
    this.view = view;
    this.bnPanel = bnPanel;
    this.banner = banner;
    this.health = health;
    this.charts = charts;
    this.noteTimer = null;
  }

  /** A note in the event slot, gone after 6 s unless something else took the slot. */
  note(text, kind = "note") {
    const n = $("st-event");
    n.textContent = text;
    n.dataset.kind = kind;
    clearTimeout(this.noteTimer);
    this.noteTimer = setTimeout(() => {
      if (n.dataset.kind === kind) n.textContent = "";
    }, 6000);
  }

  renderSession() {
    const store = this.store;
    const s = store.session;
    const running = isRunning(store);
    const down = this.health.down;
    const btn = $("btn-start");
    setAttr(btn, "data-state", running ? "running" : "paused");
    setText(btn.querySelector(".label"), running ? "Pause" : "Start");
    setText(btn.querySelector(".play-icon"), running ? "❚❚" : "▶");
    const external = isExternal(s); // its script trains it (external_mode.js says so in the titles)
    $("btn-step1").disabled = running || external;
    $("btn-step10").disabled = running || external;
    const status = !s ? "–" : down ? "unknown: server unreachable" : runStatusText(s);
    setText($("st-status"), status);
    setText($("run-name"), s ? s.name || s.id : "no run yet");
    const pill = $("run-status");
    setText(pill, status);
    setAttr(pill, "data-status", !s ? "none" : down ? "offline" : s.status);
    document.body.dataset.status = s ? s.status : "none";
    btn.disabled = down || external;
    this.charts.syncAccuracyTab(store.config);
    if (s && s.status === "diverged") {
      this.banner.showDiverged(s);
    } else if (s && s.status === "stopped_early") {
      const best = s.best_step !== null && s.best_step !== undefined ? s.best_step : store.bestStep;
      setText($("st-event"), `early stop${best !== null && best !== undefined ? ` — best step ${fmtInt(best)}` : ""}${s.message ? `: ${s.message}` : ""}`);
      $("st-event").dataset.kind = "early_stop";
      this.banner.showEarlyStop(s, best, store.earlyStop);
    } else {
      this.banner.hideInfo();
    }
    if (s && s.save_error) this.banner.showSaveError(s.save_error);
    else this.banner.hideSaveError();
    if (s && s.step !== undefined && (!store.latest || store.latest.step === undefined || s.step > store.latest.step)) {
      store.latest = { ...(store.latest || {}), step: s.step, epoch: s.epoch };
      this.renderLatest();
    }
  }

  renderLatest() {
    const store = this.store;
    const m = store.latest || {};
    setText($("st-step"), fmtInt(m.step ?? 0));
    $("st-step").dataset.value = String(m.step ?? 0);
    setText($("st-epoch"), fmtInt(m.epoch ?? 0));
    setText($("st-speed"), m.steps_per_second ? fmtInt(m.steps_per_second) : "–");
    setText($("st-loss"), fmt(m.loss ?? null, 4));
    setText($("st-test-loss"), fmt(m.test_loss ?? null, 4));
    setText($("st-acc"), pct(m.accuracy));
    setText($("st-test-acc"), pct(m.test_accuracy));
    // Background training evaluates within a time budget, so these four may be a few steps older
    // than the step counter: say which step they belong to (a +1/+10 step is evaluated at its end).
    const at = typeof m.eval_step === "number" ? `evaluated at step ${fmtInt(m.eval_step)}` : "not evaluated yet";
    for (const id of EVALUATED_IDS) setAttr($(id), "title", at);
    setAttr($("st-test-acc"), "data-eval-step", typeof m.eval_step === "number" ? String(m.eval_step) : "");
    if (Object.keys(store.latestLayers).length) {
      this.view.setLayerStats(store.latestLayers);
      this.bnPanel.render();
    }
  }

  renderEvents() {
    const store = this.store;
    const e = store.events[store.events.length - 1];
    if (!e) return;
    const n = $("st-event");
    n.dataset.kind = e.type;
    setText(n, describeEvent(e));
    if (e.type === "diverged") this.banner.showDivergedEvent(e.message || describeEvent(e), store.session ? store.session.id : null);
  }

  /** The connection badge; a dropped stream makes `onDrop` ask whether the server is gone. */
  renderConnection(onDrop) {
    const c = $("st-conn");
    c.dataset.connected = this.store.connected ? "yes" : "no";
    c.textContent = this.store.connected ? "live" : "offline";
    if (!this.store.connected && this.store.session) onDrop();
  }
}
