// The live pulse: each snapshot of a training run drives one sweep over the network drawing:
// forward (activations light up, input to output), then backward (every edge and node glows with
// the log of its real gradient, output to input). Snapshots that arrive mid-sweep are not queued:
// the next sweep uses the newest one (animation frames are dropped, never data).

import { clamp01, glowOf } from "./util.js";

/** Envelope of a wavefront at signed distance d (d > 0: already passed). */
function wave(d, lead, trail) {
  if (d >= 0) return clamp01(1 - d / trail);
  return clamp01(1 + d / lead);
}

export class LivePulse {
  constructor(view) {
    this.view = view;
    this.enabled = true;
    this.active = null; // {start, tf, tb, nodeF, nodeB}
    this.pending = false;
    this.lastEnd = 0;
    this.count = 0; // sweeps played (tests read it via data-pulses)
  }

  /** A new snapshot arrived: play a sweep now if idle, else after the current one. */
  trigger() {
    if (!this.enabled) return;
    this.pending = true;
  }

  stop() {
    this.active = null;
    this.pending = false;
    if (!this.view.explain) this.view.glow = null;
  }

  begin(now) {
    const view = this.view;
    const cols = view.columnModel();
    const snap = view.snap;
    if (!cols.length || !snap) return;
    const C = cols.length;
    const nodeF = [];
    const nodeB = [];
    for (const c of cols) {
      const n = c.nodes ? c.nodes.length : 0;
      const f = new Float32Array(Math.max(1, n));
      const b = new Float32Array(Math.max(1, n));
      const st = c.name && snap.nodes ? snap.nodes[c.name] : null;
      if (c.bundle || c.kind === "image" || c.kind === "conv") {
        f.fill(0.8);
        const conv = snap.conv && snap.conv[c.name];
        if (conv && conv.filter_grad_norm) conv.filter_grad_norm.forEach((g, k) => k < b.length && (b[k] = glowOf(g)));
        else if (st && st.delta) b.fill(glowOf(st.delta.reduce((s, v) => s + Math.abs(v), 0) / st.delta.length));
      } else if (c.kind === "input") {
        f.fill(0.7);
      } else if (st) {
        let max = 0;
        for (const v of st.activation || []) max = Math.max(max, Math.abs(v));
        const scale = c.activation === "tanh" || c.activation === "sigmoid" ? 1 : Math.max(max, 1e-9);
        for (let u = 0; u < n; u++) {
          f[u] = 0.25 + 0.75 * clamp01(Math.abs((st.activation || [])[u] ?? 0) / scale);
          b[u] = glowOf((st.delta || [])[u] ?? 0);
        }
      }
      nodeF.push(f);
      nodeB.push(b);
    }
    const tf = Math.min(700, Math.max(320, 130 * C));
    const tb = Math.min(1100, Math.max(520, 210 * C));
    this.active = { start: now, tf, tb, fade: 380, nodeF, nodeB, C };
    this.count += 1;
    view.root.dataset.pulses = String(this.count);
    view.glow = { mode: "forward", nodeBase: nodeF, edgeBase: null, colEnv: new Float32Array(C), gapEnv: new Float32Array(Math.max(0, C - 1)), changed: true };
  }

  /** Advance the sweep; called once per animation frame. */
  frame(now) {
    const view = this.view;
    if (view.explain) return; // the explainer owns the glow
    if (!this.active) {
      if (this.pending && this.enabled && now - this.lastEnd > 120) {
        this.pending = false;
        this.begin(now);
      }
      if (!this.active) return;
    }
    const a = this.active;
    const g = view.glow;
    if (!g || g.colEnv.length !== a.C) {
      this.active = null;
      return;
    }
    const t = now - a.start;
    const C = a.C;
    if (t < a.tf) {
      const p = (t / a.tf) * (C - 0.5);
      g.mode = "forward";
      g.nodeBase = a.nodeF;
      for (let c = 0; c < C; c++) g.colEnv[c] = wave(p - c, 0.5, 1.6);
      for (let k = 0; k < C - 1; k++) g.gapEnv[k] = wave(p - (k + 0.5), 0.6, 0.9);
    } else if (t < a.tf + a.tb + a.fade) {
      const tt = t - a.tf;
      const p = (C - 1) - (Math.min(tt, a.tb) / a.tb) * (C - 0.5); // moves from the output to the input
      const fade = tt > a.tb ? 1 - (tt - a.tb) / a.fade : 1;
      g.mode = "backward";
      g.nodeBase = a.nodeB;
      for (let c = 0; c < C; c++) g.colEnv[c] = wave(c - p, 0.5, 2.2) * fade;
      for (let k = 0; k < C - 1; k++) g.gapEnv[k] = wave(k + 0.5 - p, 0.6, 2.2) * fade;
    } else {
      this.active = null;
      this.lastEnd = now;
      view.glow = null;
      return;
    }
    g.changed = true;
  }
}
