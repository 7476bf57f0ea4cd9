// The page while an external run is open (a PyTorch script watched through /ws/ingest): the
// topology drawing (external_view.js) in place of the engine's network, the script's controls
// (pause / resume, stop, a new learning rate: POST /control, applied by the script at its next
// logged step) in place of the engine's train / step / reset buttons, and a plain sentence where
// an engine-only view would be. Engine-only routes (data, snapshot, weights, trace, predict) are
// never asked for such a run: they would only answer 409.

import { api } from "./api.js";
import { fmt, setAttr, setText } from "./util.js";

const $ = (id) => document.getElementById(id);

/** The engine's transport controls, disabled (with the reason as their title) for an external run. */
const ENGINE_CONTROLS = ["btn-reset", "btn-start", "btn-step1", "btn-step10", "speed", "explain-btn"];
const LR_MAX = 1e3; // server/schemas.py ControlRequest: 0 < learning_rate <= 1e3
const UNSEEN = Object.freeze({}); // no event shown yet: differs from every event, and from none

export const NOT_HERE_CONTROLS = "Not available for a PyTorch run: your own script trains it; use the script's controls (pause, stop, learning rate).";

/** Whether a session (or a config) is a run watched from its own script. */
export function isExternal(sessionOrConfig) {
  if (!sessionOrConfig) return false;
  if (sessionOrConfig.kind) return sessionOrConfig.kind === "external";
  return !!(sessionOrConfig.config && sessionOrConfig.config.kind === "external");
}

/** Whether the script is paused: the newest pause or resume it reported applying. */
export function scriptPaused(events) {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (e.type === "control" && (e.action === "pause" || e.action === "resume")) return e.action === "pause";
  }
  return false;
}

export class ExternalMode {
  /** @param {{store: object, extView: import("./external_view.js").ExternalView}} parts */
  constructor({ store, extView }) {
    this.store = store;
    this.extView = extView;
    this.active = false;
    this.titles = new Map(); // the engine controls' own titles, restored on leaving
    // The newest event the note has shown. The store keeps a bounded list, so its length stops
    // changing once full: events are told apart by identity, not by count.
    this.lastEvent = UNSEEN;
    this.answers = 0; // the server's answers to controls sent, as #ext-controls[data-answers]
    $("ext-pause").addEventListener("click", () => this.send(scriptPaused(store.events) ? "resume" : "pause"));
    $("ext-stop").addEventListener("click", () => this.send("stop"));
    $("ext-lr-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendRate();
    });
  }

  /** Show the page for an external run (true) or for an engine run (false). */
  setActive(on, session = null) {
    this.active = on;
    document.body.dataset.kind = on ? "external" : "engine";
    $("network").hidden = on;
    $("ext-network").hidden = !on;
    $("ext-panel").hidden = !on;
    $("ext-data-note").hidden = !on;
    $("data-view").hidden = on;
    $("ext-not-here").hidden = !on;
    for (const id of ENGINE_CONTROLS) {
      const c = $(id);
      if (on && !this.titles.has(id)) this.titles.set(id, c.title);
      c.disabled = on;
      c.title = on ? (id === "explain-btn" ? "Not available for a PyTorch run: the step explainer traces a sample through the model, which runs in your script" : NOT_HERE_CONTROLS) : this.titles.get(id) ?? c.title;
    }
    if (!on) {
      this.titles.clear();
      this.extView.setTopology(null);
      this.extView.stop();
      return;
    }
    this.extView.setTopology(session ? session.config : null);
    const cfg = (session && session.config) || {};
    setText($("ext-model"), `${cfg.model || "model"} · ${cfg.framework || "script"}${cfg.world_size > 1 ? ` · ${cfg.world_size} processes` : ""} · ${(cfg.parameters ?? 0).toLocaleString("en")} parameters`);
    this.note("");
    this.lastEvent = UNSEEN;
    this.render();
  }

  /** The controls follow the session's status and the script's reported pause (frame loop). */
  render() {
    if (!this.active) return;
    const s = this.store.session;
    const live = !!(s && s.status === "live");
    const paused = scriptPaused(this.store.events);
    const pause = $("ext-pause");
    setText(pause, paused ? "▶ Resume" : "❚❚ Pause");
    setAttr(pause, "data-state", paused ? "paused" : "running");
    const why = live ? "" : `The script is not connected (${s ? s.status : "no run"}): controls reach a live script only.`;
    for (const id of ["ext-pause", "ext-stop", "ext-lr", "ext-lr-set"]) $(id).disabled = !live;
    const rate = this.store.latest && this.store.latest.learning_rate;
    setAttr($("ext-lr"), "placeholder", typeof rate === "number" ? `now ${fmt(rate, 4)}` : "");
    $("ext-controls").title = why;
    setText($("ext-why"), why);
    const e = this.store.events[this.store.events.length - 1];
    if (e !== this.lastEvent) {
      this.lastEvent = e;
      if (e && e.type === "control") this.note(`step ${e.step}: ${e.message || `the script applied ${e.action}`}`);
    }
  }

  note(text) {
    setText($("ext-note"), text);
  }

  async send(action, learningRate) {
    const s = this.store.session;
    if (!s) return;
    const mark = this.store.events[this.store.events.length - 1];
    try {
      await api.control(s.id, action, learningRate);
      // On a busy machine the script's report that it applied the control can come before this
      // answer: "sent" would then replace the newer news.
      if (!this.appliedSince(mark, action)) this.note(`${action === "learning_rate" ? `learning rate ${fmt(learningRate, 4)}` : action} sent: the script applies it at its next logged step.`);
    } catch (err) {
      this.note(`${action} not sent: ${err.message}`);
    }
    setAttr($("ext-controls"), "data-answers", String(++this.answers));
  }

  /** Whether the script reported applying `action` after the event `mark` (newest first). */
  appliedSince(mark, action) {
    const events = this.store.events;
    for (let i = events.length - 1; i >= 0 && events[i] !== mark; i--) {
      if (events[i].type === "control" && events[i].action === action) return true;
    }
    return false;
  }

  /** A new learning rate from the field, checked here as the server would (no 422 round trip). */
  sendRate() {
    const input = $("ext-lr");
    const v = Number(input.value);
    const err = $("ext-lr-error");
    const bad = input.value.trim() === "" || !Number.isFinite(v) || v <= 0 || v > LR_MAX ? `learning rate: must be a number > 0 and <= ${LR_MAX}, got ${JSON.stringify(input.value)}` : "";
    err.textContent = bad;
    err.hidden = !bad;
    if (bad) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    if (!bad) this.send("learning_rate", v);
  }
}
