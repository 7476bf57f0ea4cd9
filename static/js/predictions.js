// The model's answers in the data view, for data the heatmap cannot show: the curve of a 1-D run,
// and the predicted class (or value) of the samples shown for image and table runs. Asked of the
// server (POST /predict) at most every PREDICT_INTERVAL_MS, one request at a time.

import { api } from "./api.js";
import { first } from "./util.js";

const PREDICT_INTERVAL_MS = 1200;

/** The class of an output: the largest unit, or for one unit whether it passes `cut`. */
function argmax(v, cut = 0.5) {
  if (!Array.isArray(v)) return v >= cut ? 1 : 0;
  if (v.length === 1) return v[0] >= cut ? 1 : 0;
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
  return b;
}

export class Predictions {
  /** @param {{store: object, dataView: import("./boundary.js").DataView}} parts */
  constructor({ store, dataView }) {
    this.store = store;
    this.dataView = dataView;
    this.last = 0;
    this.busy = false;
  }

  /** Ask again on the next frame (a new run, new data). */
  reset() {
    this.last = 0;
  }

  /** Ask again within half the interval (a new snapshot: the weights moved). */
  soon(now) {
    this.last = Math.min(this.last, now - PREDICT_INTERVAL_MS * 0.5);
  }

  /** Called every animation frame. */
  async refresh(now) {
    const s = this.store.session;
    const dataView = this.dataView;
    const kind = dataView.kind;
    if (!s || this.busy || now - this.last < PREDICT_INTERVAL_MS || !this.store.data) return;
    if (kind !== "image" && kind !== "1d" && kind !== "table") return;
    this.busy = true;
    this.last = now;
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
          const cfg = this.store.config || {};
          const out = (cfg.layers || [])[(cfg.layers || []).length - 1] || {};
          const task = this.store.data && this.store.data.task;
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
      this.busy = false;
    }
  }
}
