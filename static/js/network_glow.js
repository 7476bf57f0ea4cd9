// The glow over the network drawing: the live pulse's sweep and the explainer's phases light
// edges and node rings, all on one canvas over the neuron maps (no DOM writes per frame, at most
// ~30 repaints a second, and only the strongest edges of a wide gap).

import { rgbCss } from "./util.js";

const FWD_GLOW = [255, 176, 0];
const GLOW_MIN_MS = 30; // glow repaints at most ~30 times a second
const GLOW_EDGE_CAP = 320; // edges that glow per gap, strongest first
const BWD_GLOW = [224, 36, 94];


/** Pulse / explainer glow: edges and node rings, all on one canvas (no DOM writes per frame). */
export function drawGlow(view, now) {
  const glow = view.glow;
  const ctx = view.paintCtx;
  if (!glow) {
    if (view.glowDrawn || view.composeNeeded) {
      compose(view, ctx);
      view.glowDrawn = false;
    }
    return;
  }
  if (!glow.changed && view.glowDrawn && !view.composeNeeded) return;
  if (view.glowDrawn && !view.composeNeeded && now - view.lastGlow < GLOW_MIN_MS) return; // <= ~30 repaints/s
  view.lastGlow = now;
  glow.changed = false;
  view.glowDrawn = true;
  compose(view, ctx);
  const color = glow.mode === "forward" ? FWD_GLOW : BWD_GLOW;
  // edges, bucketed by quantised alpha; backward uses each edge's |dL/dw|, forward a uniform sweep.
  // Wide gaps glow only their strongest edges, so a 64x64 gap costs what a small one does.
  const levels = 6;
  const lists = Array.from({ length: levels }, () => []);
  for (const g of view.gaps) {
    const env = glow.gapEnv ? glow.gapEnv[g.index] : 0;
    if (!(env > 0.02)) continue;
    const base = glow.mode === "backward" ? (glow.edgeBase && glow.edgeBase[g.index]) || g.gl : null;
    const floor = base ? topThreshold(base, GLOW_EDGE_CAP) : 0;
    const stride = !base && g.count > GLOW_EDGE_CAP ? Math.ceil(g.count / GLOW_EDGE_CAP) : 1;
    for (let e = 0; e < g.count; e += stride) {
      const b = base ? base[e] : 0.55;
      if (base && b < floor) continue;
      const a = b * env;
      if (a < 0.08) continue;
      const q = Math.min(levels - 1, Math.floor(a * levels));
      lists[q].push(g, e);
    }
  }
  ctx.lineCap = "round";
  lists.forEach((list, q) => {
    if (!list.length) return;
    ctx.strokeStyle = rgbCss(color, 0.12 + (q / (levels - 1)) * 0.6);
    ctx.lineWidth = 1.5 + q * 0.9;
    ctx.beginPath();
    for (let k = 0; k < list.length; k += 2) {
      const g = list[k];
      const e = list[k + 1];
      const xm = (g.x0 + g.x1) / 2;
      ctx.moveTo(g.x0, g.y0[e]);
      ctx.bezierCurveTo(xm, g.y0[e], xm, g.y1[e], g.x1, g.y1[e]);
    }
    ctx.stroke();
  });
  // node rings: a halo around each node, as bright as its activation (forward) or |delta| (backward)
  const rings = Array.from({ length: levels }, () => []);
  for (const c of view.cols) {
    const env = glow.colEnv ? glow.colEnv[c.index] : 0;
    if (!(env > 0.02)) continue;
    const base = glow.nodeBase ? glow.nodeBase[c.index] : null;
    if (c.bundle) {
      const a = env * (base ? base[0] ?? 0.6 : 1);
      if (a >= 0.05) rings[Math.min(levels - 1, Math.floor(a * levels))].push(c.bundleBox.x - 3, c.bundleBox.y - 3, c.bundleBox.w + 6, c.bundleBox.h + 6);
      continue;
    }
    for (const node of c.nodes) {
      const a = env * (base ? base[node.unit] ?? 0 : 1);
      if (a < 0.05) continue;
      rings[Math.min(levels - 1, Math.floor(a * levels))].push(node.x - c.w / 2 - 3, node.y - c.s / 2 - 3, c.w + 6, c.s + 6);
    }
  }
  rings.forEach((list, q) => {
    if (!list.length) return;
    ctx.strokeStyle = rgbCss(color, 0.25 + (q / (levels - 1)) * 0.75);
    ctx.lineWidth = 4;
    ctx.beginPath();
    for (let k = 0; k < list.length; k += 4) ctx.rect(list[k], list[k + 1], list[k + 2], list[k + 3]);
    ctx.stroke();
  });
}

/** The visible canvas = the neuron maps buffer (the glow is drawn over it by drawGlow). */
function compose(view, ctx) {
  view.composeNeeded = false;
  ctx.save();
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, view.paintCanvas.width, view.paintCanvas.height);
  ctx.drawImage(view.mapBuffer, 0, 0);
  ctx.restore();
}

/** The value of the cap-th largest entry (cached on the array): entries below it do not glow. */
function topThreshold(arr, cap) {
  if (arr.length <= cap) return 0;
  if (arr._thr !== undefined) return arr._thr;
  const sorted = Float32Array.from(arr).sort();
  arr._thr = sorted[arr.length - cap];
  return arr._thr;
}
