// The state of one followed run, and the ONE reducer that applies the server's stream messages
// ("hello", "metrics", "status", "event", "snapshot", "error") to it. The page's store and every
// column of the compare view hold such a state; nothing here touches the DOM. Writers set dirty
// flags; whoever draws the state reads and clears them, so any number of messages between two
// animation frames costs one repaint.

import { appendMetrics, emptyHistory, historyFromColumns } from "./history.js";

/** Clip events kept per run (the oldest half is thinned past this). */
const MAX_CLIPS = 3000;
/** Recent events kept per run. */
const MAX_EVENTS = 50;

/** A fresh run state (no run yet). */
export function createRunState() {
  return {
    /** SessionPublic of the run, or null. */
    session: null,
    /** Config document of the run (as the server holds it). */
    config: null,
    /** Columnar metrics of the run. */
    history: emptyHistory(),
    /** The latest "metrics" message (per-layer stats by name in latestLayers). */
    latest: null,
    latestLayers: {},
    /** The latest engine snapshot. */
    snapshot: null,
    /** Recent events, newest last (bounded). */
    events: [],
    /** Clip events of the run (for the loss chart's markers), oldest first. */
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
  };
}

/** Mark every part of a state for redrawing. */
export function markAll(state) {
  for (const k of Object.keys(state.dirty)) state.dirty[k] = true;
}

/** Forget everything about the previous run and follow `session` (null: none). */
export function openRun(state, session) {
  state.session = session;
  state.config = session ? session.config : null;
  state.history = emptyHistory();
  state.latest = session && session.metrics ? { ...session.metrics, step: session.step, epoch: session.epoch } : null;
  state.latestLayers = {};
  state.snapshot = null;
  state.events = [];
  state.clips = [];
  state.bestStep = session && session.best_step !== undefined ? session.best_step : null;
  state.earlyStop = null;
  markAll(state);
}

/** A newer SessionPublic of the same run (from REST or a "status" frame). */
export function setSession(state, session) {
  if (!session) return;
  if (state.session && session.id !== state.session.id) return;
  // A REST answer can arrive after a newer WebSocket status (a run that diverges within a
  // step of POST /start): never let an older state overwrite a newer one.
  if (state.session && session.updated_at && state.session.updated_at && session.updated_at < state.session.updated_at) return;
  state.session = session;
  state.config = session.config || state.config;
  if (session.best_step !== null && session.best_step !== undefined && session.best_step !== state.bestStep) {
    state.bestStep = session.best_step;
    state.dirty.history = true;
  }
  if (session.metrics && (!state.latest || session.step >= (state.latest.step ?? -1))) {
    state.latest = { ...state.latest, ...session.metrics, step: session.step, epoch: session.epoch };
    state.dirty.latest = true;
  }
  state.dirty.session = true;
}

/** One training event (clip, best, early stop, diverged, reset, hyperparameters...). */
export function addEvent(state, event) {
  state.events.push(event);
  if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
  state.dirty.events = true;
  if (event.type === "clip") {
    const last = state.clips[state.clips.length - 1];
    if (!last || event.step !== last.step) state.clips.push(event);
    if (state.clips.length > MAX_CLIPS) state.clips = state.clips.filter((e, i) => i >= MAX_CLIPS / 2 || i % 2 === 0);
    state.dirty.history = true;
  } else if (event.type === "early_stop") {
    state.earlyStop = event;
    if (event.best_step !== null && event.best_step !== undefined) state.bestStep = event.best_step;
    state.dirty.history = true;
  } else if (event.type === "best") {
    state.bestStep = event.step;
    state.dirty.history = true;
  }
  if (event.type === "reset") {
    state.history = emptyHistory();
    state.clips = [];
    state.bestStep = null;
    state.earlyStop = null;
    state.dirty.history = true;
  }
}

/** The newest event of a type, or null. */
export function lastEvent(state, type) {
  for (let i = state.events.length - 1; i >= 0; i--) if (state.events[i].type === type) return state.events[i];
  return null;
}

/** Apply one server message to a run state (stream.js calls this for every frame, in arrival order). */
export function applyMessage(state, msg) {
  state.received += 1;
  switch (msg.type) {
    case "hello":
      if (msg.session) {
        state.session = msg.session;
        state.config = msg.config || msg.session.config || state.config;
        state.dirty.session = true;
        if (msg.session.metrics) {
          state.latest = { ...msg.session.metrics, step: msg.session.step, epoch: msg.session.epoch };
          state.dirty.latest = true;
        }
      }
      state.history = historyFromColumns(msg.history);
      state.dirty.history = true;
      state.clips = [];
      for (const e of (msg.history && msg.history.events) || []) addEvent(state, e);
      break;
    case "metrics":
      if (state.history.step.length && msg.step < state.history.step[state.history.step.length - 1]) {
        state.history = emptyHistory(); // the run was reset under us
        state.clips = [];
      }
      state.latest = msg;
      if (msg.best_step !== null && msg.best_step !== undefined && msg.best_step !== state.bestStep) state.bestStep = msg.best_step;
      state.latestLayers = {};
      for (const layer of msg.layers || []) state.latestLayers[layer.name] = layer;
      if (appendMetrics(state.history, msg)) state.dirty.history = true;
      state.dirty.latest = true;
      break;
    case "snapshot": {
      const { type, ...snap } = msg; // eslint-disable-line no-unused-vars
      state.snapshot = snap;
      state.dirty.snapshot = true;
      break;
    }
    case "status":
      setSession(state, msg.session);
      break;
    case "event":
      if (msg.event) addEvent(state, msg.event);
      break;
    case "error":
      addEvent(state, { type: "error", message: msg.message });
      break;
    default:
      break;
  }
}

/** Whether the state's run is training on the server. */
export function isRunning(state) {
  return !!(state.session && state.session.status === "running");
}
