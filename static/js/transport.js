// The transport bar: Start / Pause (also the space bar), +1 and +10 steps, Reset, and the speed
// the server trains at (a watchable pace in steps per second, or full speed). Nothing trains
// while a form field holds a value the server refused: its message is brought into view instead.

import { api } from "./api.js";
import { NOT_HERE_CONTROLS, isExternal } from "./external_mode.js";
import { selectedPace, showPace } from "./pace_select.js";
import { isRunning } from "./run_state.js";

const $ = (id) => document.getElementById(id);

export class Transport {
  /** @param {{store: object, runs: import("./run_controller.js").RunController, controls: object, explainer: object, note: Function}} parts */
  constructor({ store, runs, controls, explainer, note }) {
    this.store = store;
    this.runs = runs;
    this.controls = controls;
    this.explainer = explainer;
    this.note = note;
    this.busy = false;
    $("btn-start").addEventListener("click", () => this.startOrPause());
    $("btn-step1").addEventListener("click", () => this.stepButton(1));
    $("btn-step10").addEventListener("click", () => this.stepButton(10));
    $("btn-reset").addEventListener("click", () => runs.resetRun());
    $("speed").addEventListener("change", () => this.changeSpeed());
  }

  isRunning() {
    return isRunning(this.store);
  }

  /** Steps per second the speed control asks for, or null for full speed. */
  currentPace() {
    return selectedPace($("speed"));
  }

  /** Put the speed control at `pace` steps/s, adding that option (in order) when it is not listed. */
  setSpeed(pace) {
    showPace($("speed"), pace);
  }

  /**
   * The session to train, or null while a form field holds an invalid value: then nothing is
   * sent (no start, no step with the old value) and the field's message is brought into view.
   */
  async readyToTrain(action) {
    const controls = this.controls;
    controls.flushTyping(); // a number still being typed counts
    let problems = controls.invalidFields();
    if (!problems.length) {
      const s = await this.runs.ensureSession();
      if (s) return s;
      problems = controls.invalidFields();
    }
    controls.revealErrors();
    const first = problems[0];
    this.note(first ? `${action} refused: ${first.label} — ${first.message}` : `${action} refused: the setup could not be applied`, "refused");
    return null;
  }

  /** An external run is trained by its script: say so instead (the space bar reaches here too). */
  refusedForExternal() {
    if (!isExternal(this.store.session)) return false;
    this.note(NOT_HERE_CONTROLS);
    return true;
  }

  async startOrPause() {
    if (this.busy || this.refusedForExternal()) return;
    this.busy = true;
    try {
      if (this.isRunning()) {
        await this.pause();
        return;
      }
      const s = await this.readyToTrain("Start");
      if (!s) return;
      if (this.explainer.active) this.explainer.close();
      this.runs.scratch.delete(s.id);
      this.store.setSession(await api.start(s.id, this.currentPace()));
    } catch (err) {
      this.note(err.message);
    } finally {
      this.busy = false;
      this.store.dirty.session = true;
    }
  }

  async pause() {
    const s = this.store.session;
    if (!s) return;
    try {
      await api.stop(s.id);
      this.store.setSession(await api.session(s.id));
    } catch (err) {
      this.note(err.message);
    }
  }

  /** A new speed while running: the server run restarts at the new pace, between two steps. */
  async changeSpeed() {
    if (this.busy || !this.isRunning() || isExternal(this.store.session)) return;
    this.busy = true;
    try {
      const id = this.store.session.id;
      await api.stop(id);
      this.store.setSession(await api.start(id, this.currentPace()));
    } catch (err) {
      this.note(err.message);
    } finally {
      this.busy = false;
      this.store.dirty.session = true;
    }
  }

  async doSteps(n, action) {
    const store = this.store;
    const s = await this.readyToTrain(action);
    if (!s) return;
    this.runs.scratch.delete(s.id);
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

  async stepButton(n) {
    if (this.busy || this.isRunning() || this.refusedForExternal()) return;
    this.busy = true;
    try {
      if (this.explainer.active) this.explainer.close();
      await this.doSteps(n, `+${n}`);
    } catch (err) {
      this.note(err.message);
    } finally {
      this.busy = false;
    }
  }
}
