// Is the server still there? Asked every few seconds (and when the stream drops); the header says
// so, and when the server comes back, the run's status is read again (a restart interrupts it).

import { api } from "./api.js";

const HEALTH_INTERVAL_MS = 4000;

export class ServerHealth {
  /** @param {{store: object, note: Function}} parts  note(text): a message in the status line */
  constructor({ store, note }) {
    this.store = store;
    this.note = note;
    /** The last check (or request) found no server. */
    this.down = false;
  }

  /** Check now, then every HEALTH_INTERVAL_MS. */
  async start() {
    await this.check();
    setInterval(() => this.check(), HEALTH_INTERVAL_MS);
  }

  /** Ask the server whether it is there; the header and the run's status follow the answer. */
  async check() {
    const store = this.store;
    let h = null;
    try {
      h = await api.health();
    } catch {
      h = null;
    }
    const health = document.getElementById("health");
    if (!h) {
      health.textContent = "server unreachable — retrying";
      health.dataset.status = "down";
      if (!this.down) {
        this.down = true;
        store.dirty.session = true;
      }
      return;
    }
    health.textContent = `server ${h.status}`;
    health.dataset.status = h.status;
    if (this.down) {
      this.down = false;
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
          this.note(err.message);
        }
      }
    }
  }
}
