// The page's state: the open run (a run state, updated by the one reducer in run_state.js) plus
// what the page has loaded beside it. Stream messages and REST answers are written here; nothing
// here touches the DOM. The requestAnimationFrame loop (frame_loop.js) reads and clears the
// dirty flags.

import { addEvent, applyMessage, createRunState, markAll, openRun, setSession } from "./run_state.js";

/** The single page state. */
export const store = {
  ...createRunState(),
  /** GET /api/datasets entries by name. */
  datasets: {},
  /** GET /api/presets entries. */
  presets: [],
  /** Raw data of the open run (GET /data), for the data view and the explainer. */
  data: null,

  markAll() {
    markAll(this);
  },

  /** Forget everything about the previous run. */
  openRun(session) {
    openRun(this, session);
    this.data = null;
  },

  setSession(session) {
    setSession(this, session);
  },

  addEvent(event) {
    addEvent(this, event);
  },

  /** Apply one server message (called by stream.js for every frame, in arrival order). */
  push(msg) {
    applyMessage(this, msg);
  },
};
