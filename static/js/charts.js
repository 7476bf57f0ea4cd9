// Charts: uPlot line charts over steps (loss, per-layer gradient norms, update/weight ratios,
// accuracy) and small canvas histograms of the latest snapshot. Charts read the store's columnar
// arrays directly; the chart panel (chart_panel.js) calls update() at most ~10 times a second.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { SERIES_COLORS, el, fitCanvas, fmt, fmtInt } from "./util.js";

function numberFmt(u, v) {
  return v === null || v === undefined ? "–" : fmt(v, 3);
}

const AXIS_FONT = "11px system-ui, sans-serif";
const LABEL_GAP = { x: 14, y: 5 }; // px between neighbouring tick labels (x: beside, y: above)

/**
 * Ticks of a log axis whose labels never overlap: whole decades (every k-th one when they are
 * close), 1-2-5 or 1..9 steps inside a decade when it has room for them, and at least the two
 * ends when the range lies within one decade.
 */
export function logTicks(min, max, lengthPx, labelPx) {
  if (!(min > 0) || !(max > min) || !(lengthPx > 0)) return [];
  const decades = Math.log10(max) - Math.log10(min);
  const perDecade = lengthPx / decades; // px per factor of ten
  const room = (ratio) => perDecade * Math.log10(ratio) >= labelPx; // px between m and the next
  const mults = room(9 / 8) ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : room(2.5) ? [1, 2, 5] : room(10) ? [1] : null;
  const every = mults ? 1 : Math.ceil(labelPx / perDecade);
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  const out = [];
  for (let e = lo; e <= hi; e++) {
    if (e % every !== 0) continue;
    for (const m of mults || [1]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  if (out.length >= 2) return out;
  const ends = [Number(min.toPrecision(2)), Number(max.toPrecision(2))];
  // two labels that would touch become one
  return perDecade * Math.log10(ends[1] / ends[0]) >= labelPx ? ends.filter((v) => v >= min && v <= max) : out.length ? out : [ends[0]];
}

/** Points for a series whose window holds only a couple of values: a lone value has no line to draw. */
function fewPoints(u, si, i0, i1) {
  const ys = u.data[si];
  let seen = 0;
  for (let i = i0; i <= i1 && seen < 3; i++) if (ys[i] !== null && ys[i] !== undefined) seen += 1;
  return seen < 3;
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
    this.logX = !!opts.logX;
    this.height = opts.height || 130;
    this.splits = { 0: [], 1: [] }; // the ticks each axis drew last (for labelBoxes)
    this.seriesDefs = [];
    this.data = [[]];
    this.plot = null;
    this.key = "";
    this.body = el("div", { class: "chart-body", id: opts.id });
    host.append(this.body);
    /** Markers drawn over the plot: {ticks: [{x, x2?, h, text}], lines: [{x, label, cls}]}. */
    this.marks = null;
    this.markLayer = el("div", { class: "mark-layer" });
    this.markTip = el("div", { class: "mark-tip", hidden: true });
    this.width = 0;
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(host);
  }

  setLog(log) {
    if (this.log === log) return;
    this.log = log;
    this.rebuild();
  }

  /** A log-scaled step axis: the first hundred steps get as much room as the last ten thousand. */
  setLogX(logX) {
    if (this.logX === logX) return;
    this.logX = logX;
    this.rebuild();
  }

  /** Where each tick label of an axis (0: steps, 1: values) is drawn, in CSS px of the plot. */
  labelBoxes(axis) {
    const u = this.plot;
    if (!u) return [];
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = AXIS_FONT;
    const vals = this.splits[axis] || [];
    const texts = axis === 0 ? vals.map((v) => compactStep(v)) : tickLabels(vals, this.log);
    return vals.map((v, k) => {
      const pos = u.valToPos(v, axis === 0 ? "x" : "y");
      const w = ctx.measureText(texts[k]).width;
      return axis === 0 ? { text: texts[k], value: v, lo: pos - w / 2, hi: pos + w / 2 } : { text: texts[k], value: v, lo: pos - 6, hi: pos + 6 };
    });
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
        points: { show: fewPoints, size: 5, fill: d.color },
        value: numberFmt,
      })),
    ];
    const yScale = this.log ? { distr: 3, log: 10 } : { auto: true };
    if (!this.log && this.opts.yRange) yScale.range = () => this.opts.yRange;
    const xScale = this.logX ? { time: false, distr: 3, log: 10 } : { time: false };
    const logSplits = (axis) => (u, ai, min, max) => {
      const length = axis === 0 ? u.bbox.width / devicePixelRatio : u.bbox.height / devicePixelRatio;
      // the widest step label ("100k") or one line of text, plus the gap
      const label = axis === 0 ? 28 + LABEL_GAP.x : 12 + LABEL_GAP.y;
      return logTicks(min, max, length, label);
    };
    // uPlot hands every axis's ticks to its values(): remember them for labelBoxes
    const xValues = (u, vals) => {
      this.splits[0] = vals;
      return vals.map((v) => (v === null ? "" : compactStep(v)));
    };
    const yValues = (u, vals) => {
      this.splits[1] = vals;
      return tickLabels(vals, this.log);
    };
    const opts = {
      width,
      height: this.height,
      pxAlign: 0,
      cursor: { drag: { x: true, y: false }, points: { size: 5 } },
      legend: { live: true },
      scales: { x: xScale, y: yScale },
      axes: [
        { stroke: "#667", grid: { stroke: "#eef0f2", width: 1 }, ticks: { stroke: "#dde", width: 1, size: 4 }, size: 28, font: AXIS_FONT, space: 50, ...(this.logX ? { splits: logSplits(0) } : {}), values: xValues },
        { stroke: "#667", grid: { stroke: "#eef0f2", width: 1 }, ticks: { stroke: "#dde", width: 1, size: 4 }, size: 50, space: 18, font: AXIS_FONT, ...(this.log ? { splits: logSplits(1) } : {}), values: yValues },
      ],
      series,
      hooks: { draw: [() => this.drawMarks()], setCursor: [(u) => this.onCursor(u)] },
    };
    const data = this.data.length === series.length ? this.data : [this.data[0] || [], ...this.seriesDefs.map(() => [])];
    this.plot = new uPlot(opts, this.sanitize(data), this.body);
    this.plot.over.append(this.markLayer, this.markTip);
    this.drawMarks();
  }

  /** Replace the markers (drawn on the next redraw, or now). */
  setMarks(marks, redraw = false) {
    this.marks = marks;
    if (redraw) this.drawMarks();
  }

  /** Markers as DOM inside uPlot's plotting area: ticks along the bottom, labelled vertical lines. */
  drawMarks() {
    const layer = this.markLayer;
    const u = this.plot;
    const m = this.marks;
    this.drawnTicks = [];
    if (!u || !m) {
      if (layer.childElementCount) layer.replaceChildren();
      this.host.dataset.marks = "0";
      return;
    }
    const width = u.over.clientWidth || u.bbox.width / devicePixelRatio;
    const xs = u.scales.x;
    const inRange = (x) => xs.min !== null && xs.min !== undefined && x >= xs.min && x <= xs.max;
    const nodes = [];
    // ticks: merged per 3 px so a run clipped at every step draws a band, not thousands of nodes
    const buckets = new Map();
    for (const t of m.ticks || []) {
      const x0 = Math.max(t.x, xs.min ?? t.x);
      const x1 = Math.min(t.x2 ?? t.x, xs.max ?? t.x);
      if (!(inRange(x0) || inRange(x1)) || x1 < x0) continue;
      const p0 = u.valToPos(x0, "x");
      const p1 = u.valToPos(x1, "x");
      for (let p = Math.floor(p0 / 3); p <= Math.floor(p1 / 3); p++) {
        const b = buckets.get(p);
        if (!b) buckets.set(p, { px: p * 3, h: t.h, t, n: 1 });
        else {
          b.n += 1;
          if (t.h > b.h) {
            b.h = t.h;
            b.t = t;
          }
        }
      }
    }
    for (const b of buckets.values()) {
      if (b.px < 0 || b.px > width) continue;
      const d = el("div", { class: `mark-tick ${m.tickClass || ""}`, "data-step": b.t.x });
      d.style.setProperty("left", `${b.px}px`);
      d.style.setProperty("height", `${(4 + Math.max(0, Math.min(1, b.h)) * 12).toFixed(1)}px`);
      nodes.push(d);
      this.drawnTicks.push(b);
    }
    for (const line of m.lines || []) {
      if (!inRange(line.x)) continue;
      const px = u.valToPos(line.x, "x");
      const d = el("div", { class: `mark-line ${line.cls || ""}`, "data-step": line.x }, [el("span", { class: "mark-label", text: line.label })]);
      d.style.setProperty("left", `${px}px`);
      nodes.push(d);
    }
    layer.replaceChildren(...nodes);
    this.host.dataset.marks = String(this.drawnTicks.length);
    this.host.dataset.lines = String(nodes.length - this.drawnTicks.length);
  }

  /** Hovering near a tick shows what it marks. */
  onCursor(u) {
    const left = u.cursor.left;
    const tip = this.markTip;
    let best = null;
    if (left !== null && left >= 0 && this.drawnTicks) {
      let bestD = 5;
      for (const b of this.drawnTicks) {
        const d = Math.abs(b.px + 1 - left);
        if (d < bestD) {
          bestD = d;
          best = b;
        }
      }
    }
    if (!best || !best.t.text) {
      tip.hidden = true;
      return;
    }
    tip.textContent = best.n > 1 ? `${best.t.text} (+${best.n - 1} nearby)` : best.t.text;
    tip.hidden = false;
    const w = u.over.clientWidth;
    tip.style.setProperty("left", `${Math.min(Math.max(0, left - 80), Math.max(0, w - 200))}px`);
  }

  /** Log scales cannot show values <= 0: on y they become gaps, on x (step 0) the row is left out. */
  sanitize(data) {
    let out = data;
    if (this.logX && out[0] && out[0].length && !(out[0][0] > 0)) {
      const from = out[0].findIndex((x) => x > 0);
      out = out.map((col) => (from < 0 ? [] : col.slice(from)));
    }
    if (!this.log) return out;
    return out.map((col, k) => (k === 0 ? col : col.map((v) => (v !== null && v > 0 ? v : null))));
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
  if (config && config.kind === "external") {
    // a watched script's layers are named by their modules ("features.0"), not numbered
    const types = new Map((config.layers || []).map((l) => [l.name, l.module || l.type]));
    return names.map((name, k) => ({ label: `${name}${types.has(name) ? ` ${types.get(name)}` : ""}`, color: SERIES_COLORS[k % SERIES_COLORS.length], dash }));
  }
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

  /** The log-scaled step axis on all four charts (they share the step axis). */
  setLogSteps(on) {
    for (const c of [this.loss, this.grad, this.ratio, this.acc]) c.setLogX(on);
  }

  update(history, config, extra = {}) {
    const h = history;
    this.loss.setMarks(lossMarks(h, extra));
    this.loss.setData([h.step, h.loss, h.test_loss]);
    const names = layerNames(h);
    const hasMax = h.max_grad_norm.some((v) => v !== null && v > 0);
    const defs = layerSeries(names, config);
    if (hasMax) defs.push({ label: "max (interval)", color: "#d62728", dash: [5, 4], width: 1.2 });
    this.grad.setSeries(defs);
    this.grad.setData([h.step, ...names.map((n) => h.layers[n].grad_norm), ...(hasMax ? [h.max_grad_norm] : [])]);
    this.ratio.setSeries(layerSeries(names, config));
    this.ratio.setData([h.step, ...names.map((n) => h.layers[n].update_ratio)]);
    this.acc.setData([h.step, h.accuracy, h.test_accuracy]);
  }
}

/** Clip ticks (height = share cut) and the best-step line for the loss chart. */
export function lossMarks(h, { clips = [], bestStep = null, earlyStop = null } = {}) {
  const ticks = [];
  const seen = new Set();
  for (const e of clips) {
    const cut = typeof e.fraction === "number" ? e.fraction : 0.5;
    const range = e.last_step && e.last_step !== e.step ? `steps ${fmtInt(e.step)}–${fmtInt(e.last_step)}` : `step ${fmtInt(e.step)}`;
    const norms = typeof e.norm_before === "number" ? ` · norm ${fmt(e.norm_before, 3)} → ${fmt(e.norm_after, 3)}` : "";
    const what = e.kind === "value" ? `${(cut * 100).toFixed(cut < 0.01 ? 2 : 1)}% of values cut to ±${fmt(e.threshold)}` : `scaled down by ${(cut * 100).toFixed(1)}%`;
    ticks.push({ x: e.step, x2: e.last_step || e.step, h: cut, text: `${range}: clipped${e.count > 1 ? ` ×${e.count}` : ""} — ${what}${norms}` });
    seen.add(e.step);
  }
  // intervals with clipped steps but no event in hand (e.g. thinned away) still get a tick
  const cc = h.clip_count || [];
  for (let i = 0; i < cc.length; i++) {
    if (cc[i] > 0 && !seen.has(h.step[i])) ticks.push({ x: h.step[i], h: 0.3, text: `step ${fmtInt(h.step[i])}: ${cc[i]} clipped step${cc[i] === 1 ? "" : "s"} in this interval` });
  }
  const lines = [];
  if (bestStep !== null && bestStep !== undefined) lines.push({ x: bestStep, label: `best ${fmtInt(bestStep)}`, cls: "best" });
  if (earlyStop) lines.push({ x: earlyStop.step, label: "early stop", cls: "stop" });
  return { ticks, lines, tickClass: "clip" };
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
