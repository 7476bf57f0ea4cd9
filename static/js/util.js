// Small shared helpers: the Playground palette, number formatting, log scales and DOM writes that
// skip unchanged values (the cache of the last written value lives on the element).

/** Playground's palette: orange for negative, blue for positive, a light grey in between. */
export const ORANGE = [245, 147, 34];
export const BLUE = [8, 119, 189];
export const MID = [232, 234, 235];
/** Distinct colours for per-layer lines and classes beyond two. */
export const SERIES_COLORS = ["#0877bd", "#f59322", "#2ca02c", "#9467bd", "#d62728", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];
export const CLASS_COLORS = [ORANGE, BLUE, [44, 160, 44], [148, 103, 189], [214, 39, 40], [23, 190, 207], [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34]];
/**
 * Classes of a multi-class output (three or more): Playground's orange, then Okabe & Ito's bluish
 * green and Tol's indigo, because they stay apart for colour-blind eyes: in Machado et al.'s
 * simulation of protanopia, deuteranopia and tritanopia the three keep a CIELAB distance of 46 or
 * more (21 or more at the pale 40 % tint of an unsure region), where orange, blue and green fall
 * to 10 under protanopia. Further classes take Okabe & Ito's other colours, then grey and brown.
 */
export const MULTI_CLASS_COLORS = [ORANGE, [0, 158, 115], [51, 34, 136], [86, 180, 233], [213, 94, 0], [204, 121, 167], [240, 228, 66], [0, 114, 178], [127, 127, 127], [140, 86, 75]];

/** Colour of class k among `count` classes: Playground's two for binary data, else the palette above. */
export function classColor(k, count) {
  const palette = count > 2 ? MULTI_CLASS_COLORS : CLASS_COLORS;
  return palette[((k % palette.length) + palette.length) % palette.length];
}

/** Class colour `col` mixed into the neutral grey by `amount` in [0, 1] (0 grey, 1 the colour). */
export function tintRGB(col, amount, out) {
  const o = out || [0, 0, 0];
  const a = amount < 0 ? 0 : amount > 1 ? 1 : amount;
  o[0] = MID[0] + (col[0] - MID[0]) * a;
  o[1] = MID[1] + (col[1] - MID[1]) * a;
  o[2] = MID[2] + (col[2] - MID[2]) * a;
  return o;
}

/** RGB of a value t in [-1, 1] on the orange - grey - blue scale (clamped). */
export function divergingRGB(t, out) {
  const o = out || [0, 0, 0];
  if (!(t === t)) t = 0; // NaN -> neutral
  if (t > 1) t = 1;
  else if (t < -1) t = -1;
  const end = t < 0 ? ORANGE : BLUE;
  const a = Math.abs(t);
  o[0] = MID[0] + (end[0] - MID[0]) * a;
  o[1] = MID[1] + (end[1] - MID[1]) * a;
  o[2] = MID[2] + (end[2] - MID[2]) * a;
  return o;
}

export function rgbCss(c, alpha = 1) {
  return alpha >= 1 ? `rgb(${c[0] | 0},${c[1] | 0},${c[2] | 0})` : `rgba(${c[0] | 0},${c[1] | 0},${c[2] | 0},${alpha})`;
}

/** A compact number: 3 significant digits, exponent form for very small or large values. */
export function fmt(v, digits = 3) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "−∞";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(digits - 1).replace("e+", "e");
  return Number(v.toPrecision(digits)).toString();
}

export function fmtInt(v) {
  return v === null || v === undefined ? "–" : Math.round(v).toLocaleString("en-US");
}

/** Position of |v| on a log10 scale between lo and hi, in [0, 1] (0 for 0 or non-finite). */
export function logPos(v, lo = 1e-8, hi = 1e2) {
  const a = Math.abs(v);
  if (!(a > 0) || !Number.isFinite(a)) return a === Infinity ? 1 : 0;
  const t = (Math.log10(a) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo));
  return t < 0 ? 0 : t > 1 ? 1 : t;
}

export function clamp01(v) {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Glow intensity of a gradient magnitude: log-scaled, 1e-7 -> 0, 1 -> 1. */
export function glowOf(v) {
  return logPos(v, 1e-7, 1);
}

/** Create an element: el("div", {class: "x", "data-a": 1}, [children or text]). */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of [].concat(children)) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  return node;
}

/** setAttribute only when the value differs from the last one written through here. */
export function setAttr(node, name, value) {
  const cache = node._bl || (node._bl = {});
  if (cache[name] === value) return;
  cache[name] = value;
  node.setAttribute(name, value);
}

/** textContent only when it changed. */
export function setText(node, value) {
  const cache = node._bl || (node._bl = {});
  if (cache.text === value) return;
  cache.text = value;
  node.textContent = value;
}

/** A style property through the CSSOM (CSP-friendly), only when it changed. */
export function setStyle(node, name, value) {
  const cache = node._bl || (node._bl = {});
  const key = `s:${name}`;
  if (cache[key] === value) return;
  cache[key] = value;
  node.style.setProperty(name, value);
}

/** Canvas sized to its CSS box times devicePixelRatio; returns the 2-D context scaled to CSS pixels. */
export function fitCanvas(canvas, width, height) {
  const dpr = Math.min(window.devicePixelRatio || 1, 2);
  const w = Math.max(1, Math.round(width * dpr));
  const h = Math.max(1, Math.round(height * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** First element of a batch-shaped value: [[...]] -> [...]; plain arrays pass through. */
export function first(v) {
  return Array.isArray(v) && Array.isArray(v[0]) && v.length === 1 ? v[0] : v;
}

/** arr[i] (or arr[i][j]) of a nested array, null when missing. */
export function at(arr, i, j) {
  if (!arr) return null;
  const row = arr[i];
  if (j === undefined) return row ?? null;
  return row ? row[j] ?? null : null;
}

/** Flatten nested arrays of numbers into a plain array. */
export function flat(v) {
  return Array.isArray(v) ? v.flat(Infinity) : [v];
}

/** Derivative f'(z) of an activation, from z and a = f(z) (the engine's definitions). */
export function activationDerivative(name, z, a) {
  switch (name) {
    case "sigmoid":
      return a * (1 - a);
    case "tanh":
      return 1 - a * a;
    case "relu":
      return z > 0 ? 1 : 0;
    case "leaky_relu":
      return z > 0 ? 1 : 0.01;
    case "softmax":
      return a * (1 - a);
    default:
      return 1;
  }
}

/** Human name of an activation's derivative, for formulas. */
export function derivativeText(name) {
  switch (name) {
    case "sigmoid":
      return "σ'(z) = a(1−a)";
    case "tanh":
      return "tanh'(z) = 1−a²";
    case "relu":
      return "relu'(z) = [z>0]";
    case "leaky_relu":
      return "f'(z) = 1 if z>0 else 0.01";
    case "softmax":
      return "softmax (fused with the loss)";
    default:
      return "f'(z) = 1";
  }
}

export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  wrapped.flush = (...args) => {
    clearTimeout(t);
    fn(...args);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

/** How a feature is written: "x1^2" -> "x₁²"; on 1-D data, where there is only one x, "x²". */
const FEATURE_LABELS = { x1: "x₁", x2: "x₂", "x1^2": "x₁²", "x2^2": "x₂²", "x1*x2": "x₁x₂", "sin(x1)": "sin x₁", "sin(x2)": "sin x₂" };

export function featureLabel(name, oneD = false) {
  const label = FEATURE_LABELS[name] || name;
  return oneD ? label.replace("₁", "") : label;
}

/** Plain words for a session status (the machine value stays in data-status attributes). */
const STATUS_WORDS = {
  idle: "ready",
  running: "running",
  paused: "paused",
  diverged: "diverged",
  stopped_early: "stopped early",
  interrupted: "interrupted (server restarted)",
};

/** "stopped_early" -> "stopped early"; unknown values pass through with "_" as spaces; none -> "–". */
export function statusText(status) {
  if (status === null || status === undefined || status === "" || status === "none") return "–";
  return STATUS_WORDS[status] || String(status).replace(/_/g, " ");
}
