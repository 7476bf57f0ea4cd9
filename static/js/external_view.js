// The network of an external run (a PyTorch script watched through /ws/ingest), drawn from the
// topology its script sent: one box per module in order, its height growing with the log of its
// units (dense), filters (conv2d) or features (batchnorm); modules the lens does not model
// (activations, pooling, LayerNorm...) as small generic blocks. Under each module with parameters
// a gradient-norm bar (log scale, the engine view's range), and the backward pulse: each new
// metrics frame sweeps from the output to the input, every box glowing with the log of its real
// gradient norm. Built once per topology (and on resize); later updates only restyle by id.

import { clamp01, fmt, glowOf, logPos, setAttr, setText, svg } from "./util.js";

const GRAD_LO = 1e-8; // the engine view's gradient meter range (network_view.js)
const GRAD_HI = 1e2;
const MIN_STEP = 64; // px per module; a longer model scrolls sideways rather than overlap
const BOX_W = 34;
const BOX_MIN = 26; // px height of the smallest sized box
const GENERIC_H = 18;
const SWEEP_MS = 900;
const FADE_MS = 350;

/** The number that sizes a module's box, or null for a generic block. */
export function sizeOf(layer) {
  if (layer.type === "dense") return layer.units ?? null;
  if (layer.type === "conv2d") return layer.filters ?? null;
  if (layer.type === "batchnorm") return layer.features ?? null;
  return null;
}

/** The second line under a box: "dense 256", "conv 32 · 3×3", "bn 64", or the module's class. */
function caption(layer) {
  const size = sizeOf(layer);
  if (layer.type === "dense") return `dense ${size ?? "?"}`;
  if (layer.type === "conv2d") return `conv ${size ?? "?"}${layer.kernel_size ? ` · ${layer.kernel_size.join("×")}` : ""}`;
  if (layer.type === "batchnorm") return `${layer.module || "bn"} ${size ?? ""}`.trim();
  return layer.module || "module";
}

function shortName(name, room) {
  const chars = Math.max(4, Math.floor(room / 6.2));
  return name.length <= chars ? name : `…${name.slice(name.length - chars + 1)}`;
}

export class ExternalView {
  /** @param {HTMLElement} root  an empty container, shown while an external run is open */
  constructor(root) {
    this.root = root;
    this.svg = svg("svg", { class: "ext-svg", id: "ext-svg" });
    root.append(this.svg);
    this.layers = [];
    this.stats = {};
    this.boxes = []; // {layer, box, glow, bar, label, top, bottom}
    this.enabled = true; // the page's "live pulse" switch
    this.pulse = null; // {start, intensity: Float32Array} while a sweep plays
    this.pending = false;
    this.count = 0;
    this.width = 0;
    this.dirty = { build: false, bars: false };
    new ResizeObserver(() => {
      const w = this.root.clientWidth;
      if (Math.abs(w - this.width) > 1) this.dirty.build = true;
    }).observe(root);
  }

  /** Draw this topology (the external session's config) from the next frame on. */
  setTopology(config) {
    this.layers = (config && Array.isArray(config.layers) ? config.layers : []).slice();
    this.stats = {};
    this.pulse = null;
    this.pending = false;
    this.dirty.build = true;
  }

  /** The per-layer statistics of the newest metrics frame, by layer name; starts a sweep. */
  setLayerStats(stats) {
    this.stats = stats || {};
    this.dirty.bars = true;
    if (this.enabled) this.pending = true;
  }

  stop() {
    this.pulse = null;
    this.pending = false;
    for (const b of this.boxes) setAttr(b.glow, "opacity", "0");
  }

  build() {
    this.dirty.build = false;
    this.width = this.root.clientWidth;
    const n = this.layers.length;
    const H = Math.max(220, this.root.clientHeight);
    const step = Math.max(MIN_STEP, (this.width - 40) / Math.max(1, n));
    const W = Math.max(this.width, 40 + step * n);
    this.svg.replaceChildren();
    this.svg.setAttribute("width", W);
    this.svg.setAttribute("height", H);
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.root.dataset.layers = String(n);
    const sizes = this.layers.map(sizeOf).filter((s) => s !== null);
    const logMax = Math.log2(Math.max(2, ...sizes) + 1);
    const boxTop = 40;
    const boxMax = Math.max(BOX_MIN + 10, H * 0.5 - boxTop);
    const mid = boxTop + boxMax / 2;
    const barTop = boxTop + boxMax + 44;
    const barBottom = H - 22;
    // the meter's axis: decades of the log scale, as the engine view's
    for (let d = -8; d <= 2; d += 2) {
      const y = barBottom - ((d + 8) / 10) * (barBottom - barTop);
      this.svg.append(svg("line", { x1: 30, x2: W - 6, y1: y, y2: y, class: d === 0 ? "grid-line grid-one" : "grid-line" }));
      if (d % 4 !== 0 && d !== 2) continue;
      const t = svg("text", { x: 26, y: y + 3, class: "axis-label", "text-anchor": "end" });
      t.textContent = d === 0 ? "1" : `1e${d}`;
      this.svg.append(t);
    }
    const title = svg("text", { x: 6, y: barTop - 26, class: "strip-title" });
    title.textContent = "‖∂L/∂W‖ per layer (from your script)";
    this.svg.append(title);
    this.boxes = this.layers.map((layer, i) => {
      const x = 40 + step * i + step / 2;
      const size = sizeOf(layer);
      const h = size === null ? GENERIC_H : BOX_MIN + (boxMax - BOX_MIN) * (Math.log2(size + 1) / logMax);
      const y = mid - h / 2;
      const kind = size === null ? "generic" : layer.type;
      if (i > 0) this.svg.append(svg("line", { x1: x - step + BOX_W / 2, x2: x - BOX_W / 2, y1: mid, y2: mid, class: "ext-link" }));
      const attrs = { "data-layer": layer.name, "data-index": i, "data-type": layer.type, "data-module": layer.module || "", "data-size": size ?? "" };
      const box = svg("rect", { ...attrs, x: x - BOX_W / 2, y, width: BOX_W, height: h, rx: 4, class: `ext-box ext-${kind}`, id: `ext-box-${i}` });
      const glow = svg("rect", { x: x - BOX_W / 2 - 3, y: y - 3, width: BOX_W + 6, height: h + 6, rx: 6, class: "ext-glow", id: `ext-glow-${i}`, opacity: 0, "data-layer": layer.name });
      const tip = svg("title");
      tip.textContent = `${layer.name}: ${layer.module || layer.type}${size !== null ? ` · ${caption(layer)}` : ""} · ${layer.parameters} parameters`;
      box.append(tip);
      const name = svg("text", { x, y: i % 2 ? boxTop - 18 : boxTop - 6, class: "col-title", "text-anchor": "middle" });
      name.textContent = shortName(layer.name, step * 1.6);
      const sub = svg("text", { x, y: mid + h / 2 + 14 + (i % 2) * 12, class: "col-sub", "text-anchor": "middle" });
      sub.textContent = caption(layer);
      this.svg.append(glow, box, name, sub);
      const entry = { layer, box, glow, bar: null, label: null, top: barTop, bottom: barBottom };
      if (layer.parameters > 0) {
        this.svg.append(svg("rect", { x: x - 6, y: barTop, width: 12, height: barBottom - barTop, class: "gradbar-track", rx: 2 }));
        entry.bar = svg("rect", { x: x - 6, y: barBottom, width: 12, height: 0, class: "gradbar", rx: 2, id: `ext-bar-${i}`, "data-layer": layer.name, "data-value": "", "data-state": "none" });
        entry.label = svg("text", { x, y: barTop - 4 - (i % 2) * 11, class: "gradbar-label", "text-anchor": "middle" });
        this.svg.append(entry.bar, entry.label);
      }
      return entry;
    });
    this.dirty.bars = true;
  }

  drawBars() {
    this.dirty.bars = false;
    for (const b of this.boxes) {
      if (!b.bar) continue;
      const st = this.stats[b.layer.name];
      const v = st && typeof st.grad_norm === "number" ? st.grad_norm : null;
      const h = v === null ? 0 : logPos(v, GRAD_LO, GRAD_HI) * (b.bottom - b.top);
      setAttr(b.bar, "y", (b.bottom - h).toFixed(1));
      setAttr(b.bar, "height", h.toFixed(1));
      setAttr(b.bar, "data-value", v === null ? "" : String(v));
      setAttr(b.bar, "data-state", v === null ? "none" : !Number.isFinite(v) || v > 100 ? "exploding" : v < 1e-6 ? "vanishing" : "ok");
      setText(b.label, v === null ? "" : fmt(v, 2));
    }
  }

  /** A sweep from the last module to the first, each box at the glow of its own gradient norm. */
  begin(now) {
    const intensity = new Float32Array(this.boxes.length);
    this.boxes.forEach((b, i) => {
      const st = this.stats[b.layer.name];
      intensity[i] = st && typeof st.grad_norm === "number" ? glowOf(st.grad_norm) : 0;
      setAttr(b.glow, "data-intensity", intensity[i].toFixed(4));
    });
    this.pulse = { start: now, intensity };
    this.count += 1;
    this.root.dataset.pulses = String(this.count);
  }

  /** Called once per animation frame (frame_loop.js) while an external run is open. */
  render(now) {
    if (this.dirty.build) this.build();
    if (this.dirty.bars) this.drawBars();
    if (!this.pulse && this.pending && this.boxes.length) {
      this.pending = false; // frames that came mid-sweep are not queued: the next sweep is the newest
      this.begin(now);
    }
    const p = this.pulse;
    if (!p) return;
    const t = now - p.start;
    const n = this.boxes.length;
    if (t > SWEEP_MS + FADE_MS) {
      this.pulse = null; // a frame that came mid-sweep (pending) starts the next one
      for (const b of this.boxes) setAttr(b.glow, "opacity", "0");
      return;
    }
    const front = (n - 1) - (Math.min(t, SWEEP_MS) / SWEEP_MS) * (n - 0.5); // output -> input
    const fade = t > SWEEP_MS ? 1 - (t - SWEEP_MS) / FADE_MS : 1;
    this.boxes.forEach((b, i) => {
      const d = i - front; // > 0: the front has passed this box
      const env = d >= 0 ? clamp01(1 - d / 2.2) : clamp01(1 + d / 0.6);
      setAttr(b.glow, "opacity", (env * fade * p.intensity[i]).toFixed(3));
    });
  }
}
