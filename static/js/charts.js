// Charts: uPlot line charts over steps (loss, per-layer gradient norms, update/weight ratios,
// accuracy) and small canvas histograms of the latest snapshot. Charts read the store's columnar
// arrays directly; main.js calls update() at most ~10 times a second.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { SERIES_COLORS, el, fitCanvas, fmt } from "./util.js";

function numberFmt(u, v) {
  return v === null || v === undefined ? "–" : fmt(v, 3);
}

/** One uPlot line chart with a title, a log-scale toggle, hover values and a bounded size. */
export class LineChart {
  /**
   * @param {HTMLElement} host   element to fill (its width is followed)
   * @param {{id: string, log?: boolean, height?: number, yRange?: [number, number]}} opts
   */
  constructor(host, opts) {
    this.host = host;
    this.opts = opts;
    this.log = !!opts.log;
    this.height = opts.height || 130;
    this.seriesDefs = [];
    this.data = [[]];
    this.plot = null;
    this.key = "";
    this.body = el("div", { class: "chart-body", id: opts.id });
    host.append(this.body);
    this.width = 0;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(host);
  }

  setLog(log) {
    if (this.log === log) return;
    this.log = log;
    this.rebuild();
  }

  /** Series definitions [{label, color, dash?}]; the plot is rebuilt only when they change. */
  setSeries(defs) {
    const key = defs.map((d) => `${d.label}|${d.color}|${d.dash || ""}`).join(";");
    if (key === this.key && this.plot) return;
    this.key = key;
    this.seriesDefs = defs;
    this.rebuild();
  }

  rebuild() {
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
    }
    const width = Math.max(160, Math.floor(this.host.clientWidth || 300));
    this.width = width;
    const series = [
      { label: "step", value: (u, v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US")) },
      ...this.seriesDefs.map((d) => ({
        label: d.label,
        stroke: d.color,
        width: d.width || 1.5,
        dash: d.dash,
        spanGaps: true,
        points: { show: false },
        value: numberFmt,
      })),
    ];
    const yScale = this.log ? { distr: 3, log: 10 } : { auto: true };
    if (!this.log && this.opts.yRange) yScale.range = () => this.opts.yRange;
    const opts = {
      width,
      height: this.height,
      pxAlign: 0,
      cursor: { drag: { x: true, y: false }, points: { size: 5 } },
      legend: { live: true },
      scales: { x: { time: false }, y: yScale },
      axes: [
        { stroke: "#667", grid: { stroke: "#eef0f2", width: 1 }, ticks: { stroke: "#dde", width: 1, size: 4 }, size: 28, font: "11px system-ui, sans-serif", values: (u, vals) => vals.map((v) => (v === null ? "" : compactStep(v))) },
        { stroke: "#667", grid: { stroke: "#eef0f2", width: 1 }, ticks: { stroke: "#dde", width: 1, size: 4 }, size: 50, space: this.log ? 34 : 18, font: "11px system-ui, sans-serif", values: (u, vals) => tickLabels(vals, this.log) },
      ],
      series,
    };
    const data = this.data.length === series.length ? this.data : [this.data[0] || [], ...this.seriesDefs.map(() => [])];
    this.plot = new uPlot(opts, this.sanitize(data), this.body);
  }

  /** Log scales cannot show values <= 0: they become gaps. */
  sanitize(data) {
    if (!this.log) return data;
    return data.map((col, k) => (k === 0 ? col : col.map((v) => (v !== null && v > 0 ? v : null))));
  }

  /** data = [xs, ys1, ys2, ...] with one y column per series. */
  setData(data) {
    this.data = data;
    this.host.dataset.points = String(data[0] ? data[0].length : 0);
    if (!this.plot) return;
    if (data.length !== this.plot.series.length) return;
    this.plot.setData(this.sanitize(data));
  }

  resize() {
    const w = Math.floor(this.host.clientWidth);
    if (!this.plot || !w || Math.abs(w - this.width) < 2) return;
    this.width = w;
    this.plot.setSize({ width: w, height: this.height });
  }

  destroy() {
    this.ro.disconnect();
    if (this.plot) this.plot.destroy();
    this.plot = null;
    this.body.remove();
  }
}

/** Tick labels precise enough to tell neighbouring ticks apart. */
function tickLabels(vals, log) {
  if (log) return vals.map((v) => (v === null ? "" : fmt(v, 2)));
  const finite = vals.filter((v) => v !== null);
  const step = finite.length > 1 ? Math.abs(finite[1] - finite[0]) : 0;
  const digits = step > 0 ? Math.max(0, Math.min(8, -Math.floor(Math.log10(step) + 1e-9))) : 2;
  return vals.map((v) => {
    if (v === null) return "";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || (a < 1e-3 && step < 1e-3))) return v.toExponential(1).replace("e+", "e");
    return v.toFixed(digits);
  });
}

function compactStep(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(Math.round(v * 100) / 100);
}

/** Layer names of a history, in numeric order. */
export function layerNames(history) {
  return Object.keys(history.layers).sort((a, b) => Number(a) - Number(b));
}

/** Series for per-layer charts, labelled with the layer's type from the config. */
export function layerSeries(names, config, dash) {
  return names.map((name, k) => {
    const layer = config && config.layers ? config.layers[Number(name)] : null;
    const type = layer ? (layer.type === "dense" ? `dense ${layer.units}` : layer.type) : "";
    return { label: `L${name}${type ? ` ${type}` : ""}`, color: SERIES_COLORS[k % SERIES_COLORS.length], dash };
  });
}

/** The four step charts of the right column, fed from a history. */
export class RunCharts {
  constructor({ lossHost, gradHost, ratioHost, accHost }) {
    this.loss = new LineChart(lossHost, { id: "chart-loss", height: 102 });
    this.loss.setSeries([
      { label: "train", color: "#0877bd", width: 1.8 },
      { label: "test", color: "#f59322", width: 1.8 },
    ]);
    this.grad = new LineChart(gradHost, { id: "chart-grad", log: true, height: 102 });
    this.ratio = new LineChart(ratioHost, { id: "chart-ratio", log: true, height: 102 });
    this.acc = new LineChart(accHost, { id: "chart-acc", height: 102, yRange: [0, 1] });
    this.acc.setSeries([
      { label: "train", color: "#0877bd", width: 1.8 },
      { label: "test", color: "#f59322", width: 1.8 },
    ]);
  }

  update(history, config) {
    const h = history;
    this.loss.setData([h.step, h.loss, h.test_loss]);
    const names = layerNames(h);
    this.grad.setSeries(layerSeries(names, config));
    this.grad.setData([h.step, ...names.map((n) => h.layers[n].grad_norm)]);
    this.ratio.setSeries(layerSeries(names, config));
    this.ratio.setData([h.step, ...names.map((n) => h.layers[n].update_ratio)]);
    this.acc.setData([h.step, h.accuracy, h.test_accuracy]);
  }
}

/** Weight and gradient histograms of one layer from a snapshot's "histograms". */
export class Histograms {
  constructor(host, select) {
    this.host = host;
    this.select = select;
    this.canvas = el("canvas", { id: "hist-canvas" });
    host.append(this.canvas);
    this.snap = null;
    select.addEventListener("change", () => this.draw());
    new ResizeObserver(() => this.draw()).observe(host);
  }

  setSnapshot(snap) {
    this.snap = snap;
    const hist = (snap && snap.histograms) || {};
    const names = Object.keys(hist).sort((a, b) => Number(a) - Number(b));
    const current = [...this.select.options].map((o) => o.value).join(",");
    if (current !== names.join(",")) {
      const keep = this.select.value;
      this.select.replaceChildren(...names.map((n) => el("option", { value: n, text: `layer ${n}` })));
      if (names.includes(keep)) this.select.value = keep;
    }
    this.draw();
  }

  draw() {
    const w = Math.max(160, this.host.clientWidth);
    const h = 118;
    const ctx = fitCanvas(this.canvas, w, h);
    ctx.clearRect(0, 0, w, h);
    const layer = this.snap && this.snap.histograms ? this.snap.histograms[this.select.value] : null;
    this.host.dataset.layer = this.select.value || "";
    if (!layer) {
      ctx.fillStyle = "#889";
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillText("histograms appear with the first snapshot", 8, 20);
      return;
    }
    const half = (w - 28) / 2;
    this.drawOne(ctx, layer.weight, 4, 0, half, h, "weights", "#0877bd");
    this.drawOne(ctx, layer.grad, half + 24, 0, half, h, "gradients", "#e0245e");
  }

  drawOne(ctx, hist, x, y, w, h, title, color) {
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#445";
    ctx.fillText(title, x, y + 11);
    if (!hist || !hist.counts || !hist.counts.length) return;
    const counts = hist.counts;
    const max = Math.max(1, ...counts);
    const top = y + 16;
    const bottom = y + h - 16;
    const bw = w / counts.length;
    ctx.fillStyle = color;
    counts.forEach((c, k) => {
      const bh = (c / max) * (bottom - top);
      ctx.fillRect(x + k * bw + 0.5, bottom - bh, Math.max(1, bw - 1), bh);
    });
    ctx.strokeStyle = "#ccd";
    ctx.beginPath();
    ctx.moveTo(x, bottom + 0.5);
    ctx.lineTo(x + w, bottom + 0.5);
    ctx.stroke();
    const edges = hist.edges || [];
    if (edges.length) {
      ctx.fillStyle = "#667";
      ctx.fillText(fmt(edges[0], 2), x, bottom + 12);
      const last = fmt(edges[edges.length - 1], 2);
      ctx.fillText(last, x + w - ctx.measureText(last).width, bottom + 12);
    }
  }
}
