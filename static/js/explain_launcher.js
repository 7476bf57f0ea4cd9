// Opening the step explainer on the open run: on the sample picked in the data view (or a random
// training sample), with the run paused and the live pulse stopped; the page follows whether the
// explainer is open.

import { api } from "./api.js";

export class ExplainLauncher {
  /** @param {{store: object, view: object, dataView: object, explainer: object, pulse: object, transport: object, note: Function}} parts */
  constructor(parts) {
    Object.assign(this, parts);
  }

  /** Explain one sample ({x, y, split, index}). */
  async explainSample(sample) {
    if (!this.store.session) return;
    if (this.transport.isRunning()) await this.transport.pause();
    this.pulse.stop();
    await this.explainer.open(sample);
  }

  /** "Explain a step": the selected sample of the data view, else a random one (selected for it). */
  async explainButton() {
    const store = this.store;
    if (!store.session) return;
    if (!store.data) {
      try {
        store.data = await api.data(store.session.id, 1000);
        store.dirty.data = true;
      } catch (err) {
        this.note(err.message);
        return;
      }
    }
    const sel = this.dataView.selected;
    const data = store.data;
    if (sel && data[sel.split] && data[sel.split].x[sel.index] !== undefined) {
      await this.explainSample({ x: data[sel.split].x[sel.index], y: data[sel.split].y[sel.index], ...sel });
    } else {
      const sample = this.explainer.randomSample();
      if (sample) {
        this.dataView.setSelected({ split: sample.split, index: sample.index });
        await this.explainSample(sample);
      }
    }
  }

  /** The explainer opened or closed: the button, the layout and the drawing follow. */
  stateChanged(active) {
    document.getElementById("explain-btn").classList.toggle("active", active);
    document.getElementById("center").dataset.explaining = active ? "yes" : "no";
    if (!active && this.store.snapshot) this.view.setSnapshot(this.store.snapshot);
  }
}
