// The explainer's words for each phase of one traced step, with the live numbers of the chain
// rule: forward (z = sum w a + b, a = f(z)), loss, backward (delta = f'(z) * sum w delta) and update
// (w <- w - eta * dL/dw). Every number is a span with a stable id and data-value, so tests read
// the same numbers a person sees.

import { activationDerivative, derivativeText, el, first, fmt } from "./util.js";

const PHASE_TITLES = { forward: "Forward pass", loss: "Loss", backward: "Backward pass", update: "Update" };

/** HTML-free formula building: spans with ids and data-value so tests can read the numbers. */
function num(id, value, cls = "") {
  const attrs = { class: `num ${cls}`.trim(), "data-value": String(value) };
  if (id) attrs.id = id;
  return el("span", attrs, [fmt(value, 4)]);
}

function term(...parts) {
  return el("span", { class: "term" }, parts);
}

/** The phase's words (#ex-title, #ex-sample, #ex-text) and its chain-rule numbers (#chain-rule). */
export function renderText(ex, f, hn) {
  const cols = ex.view.columnModel();
  const title = document.getElementById("ex-title");
  const text = document.getElementById("ex-text");
  const cr = document.getElementById("chain-rule");
  const sampleBox = document.getElementById("ex-sample");
  const c = cols[f.col];
  const where = c.kind === "input" ? "inputs" : c.output ? `output layer (L${c.name})` : `layer L${c.name}`;
  title.textContent = `${PHASE_TITLES[f.phase]}${f.phase === "forward" || f.phase === "backward" ? ` · ${where}` : ""}  (${ex.k + 1}/${ex.frames.length})`;
  const x = ex.sample.x;
  const shownX = Array.isArray(x) && typeof x[0] === "number" ? `x = (${x.map((v) => fmt(v, 3)).join(", ")})` : "x = image";
  sampleBox.textContent = `sample ${ex.sample.split || ""} #${ex.sample.index ?? "?"}: ${shownX}, target y = ${JSON.stringify(ex.sample.y)} · weights of step ${ex.box.dataset.step}`;
  cr.replaceChildren();
  cr.dataset.phase = f.phase;
  cr.removeAttribute("data-layer");
  cr.removeAttribute("data-unit");
  const d = ex.colData[f.col];
  if (f.phase === "forward") {
    if (c.kind === "input" || c.kind === "image") {
      text.replaceChildren(el("p", { text: "The sample enters the network: each input node holds one feature of x." }));
      return;
    }
    const j = hn.unit;
    if (d.conv) {
      text.replaceChildren(
        el("p", {}, ["Each filter slides over its input and sums weighted pixels at every position: ", el("span", { class: "formula", text: "z[f,y,x] = Σ w[f,c,u,v] · a[c,y+u,x+v] + b[f]" }), " Shown: each feature map's mean."]),
      );
      cr.append(el("div", { class: "cr-title", text: `filter ${j} of L${c.name}` }), el("div", { class: "cr-line" }, ["mean activation = ", num("cr-a", d.a[j], "hl")]));
      return;
    }
    text.replaceChildren(
      el("p", {}, ["Each neuron sums its weighted inputs and applies its activation: ", el("span", { class: "formula", text: "z_j = Σᵢ w_ij a_i + b_j,  a_j = f(z_j)" })]),
    );
    if (!d.input || !d.W || !Array.isArray(d.W[0])) return simpleValue(cr, d, j, "a");
    const terms = [];
    const n = d.input.length;
    for (let i = 0; i < Math.min(n, 4); i++) terms.push(term(num(null, d.W[i][j]), " · ", num(null, d.input[i])), " + ");
    if (n > 4) terms.push(el("span", { text: `… (${n - 4} more) + ` }));
    cr.dataset.layer = c.name;
    cr.dataset.unit = String(j);
    cr.append(
      el("div", { class: "cr-title", text: `neuron ${j} of L${c.name}` }),
      el("div", { class: "cr-line" }, ["z = ", ...terms, num("cr-bias", first(d.b)[j] ?? d.b[j]), " = ", num("cr-z", d.z[j], "hl")]),
      el("div", { class: "cr-line" }, [`a = ${c.activation}(z) = `, num("cr-a", d.a[j], "hl")]),
    );
  } else if (f.phase === "loss") {
    renderLoss(ex, text, cr);
  } else if (f.phase === "backward") {
    renderBackward(ex, text, cr, f, hn.unit);
  } else if (f.phase === "update") {
    renderUpdate(ex, text, cr);
  }
}

function simpleValue(cr, d, j, key) {
  const v = d && d[key] ? d[key][j] : null;
  if (v !== null && v !== undefined) cr.append(el("div", { class: "cr-line" }, [`${key}[${j}] = `, num(`cr-${key}`, v, "hl")]));
}

function renderLoss(ex, text, cr) {
  const cols = ex.view.columnModel();
  const out = ex.colData[cols.length - 1];
  const y = ex.sample.y;
  const loss = ex.trace.loss;
  const formulas = {
    mse: "L = mean over outputs of (ŷ − y)²",
    bce: "L = −[y·log p + (1 − y)·log(1 − p)]",
    cross_entropy: "L = −log softmax(z)_y = −log p_y",
  };
  text.replaceChildren(
    el("p", {}, ["The error at the output, measured by the loss: ", el("span", { class: "formula", text: formulas[ex.loss] || ex.loss })]),
  );
  const yhat = out && out.a ? out.a : [];
  // the engine's own target encoding (e.g. -1/+1 for a tanh output with mse, one-hot...)
  const enc = ex.trace.targets !== undefined && ex.trace.targets !== null ? first(ex.trace.targets) : y;
  const yv = Array.isArray(enc) ? enc.flat(Infinity) : [enc];
  const parts = [];
  if (ex.loss === "mse") {
    yhat.slice(0, 4).forEach((p, k) => {
      const target = yv[k] ?? yv[0];
      parts.push(term("(", num(null, p), " − ", num(null, target), ")²"), k < Math.min(yhat.length, 4) - 1 ? " + " : "");
    });
    if (yhat.length > 1) parts.unshift(`(1/${yhat.length})·[`), parts.push("]");
  } else if (ex.loss === "bce") {
    parts.push("−[", num(null, yv[0]), "·log ", num(null, yhat[0]), " + (1 − ", num(null, yv[0]), ")·log(1 − ", num(null, yhat[0]), ")]");
  } else {
    const cls = Number(yv[0]);
    parts.push("−log ", num(null, yhat[cls] ?? NaN), ` (p of class ${cls})`);
  }
  const encoded = stableText(yv) !== stableText(Array.isArray(y) ? y.flat(Infinity) : [y]);
  cr.append(
    el("div", { class: "cr-title", text: encoded ? `loss of this sample (label ${JSON.stringify(y)} is the target ${yv.map((v) => fmt(v, 3)).join(", ")})` : "loss of this sample" }),
    el("div", { class: "cr-line" }, ["ŷ = ", ...yhat.slice(0, 6).map((v, k) => el("span", {}, [k ? ", " : "", num(null, v)]))]),
    el("div", { class: "cr-line" }, ["L = ", ...parts, " = ", num("cr-loss", loss, "hl")]),
  );
}

function renderBackward(ex, text, cr, f, j) {
  const cols = ex.view.columnModel();
  const c = cols[f.col];
  const d = ex.colData[f.col];
  if (d.conv) {
    text.replaceChildren(el("p", {}, ["The deltas reach the convolution: each filter's gradient sums a·δ over every position it touched: ", el("span", { class: "formula", text: "∂L/∂w[f,c,u,v] = Σ_y,x δ[f,y,x] · a[c,y+u,x+v]" })]));
    cr.dataset.layer = c.name;
    cr.dataset.unit = String(j);
    cr.append(el("div", { class: "cr-title", text: `filter ${j} of L${c.name}` }), el("div", { class: "cr-line" }, ["mean δ = ", num("cr-delta", d.delta ? d.delta[j] : NaN, "hl")]));
    return;
  }
  const delta = d.delta ? d.delta[j] : NaN;
  const z = d.z ? d.z[j] : NaN;
  const a = d.a ? d.a[j] : NaN;
  const fprime = d.fprime && d.fprime[j] !== undefined ? d.fprime[j] : activationDerivative(c.activation, z, a);
  cr.dataset.layer = c.name;
  cr.dataset.unit = String(j);
  cr.append(el("div", { class: "cr-title", text: `δ of neuron ${j} in L${c.name}  (δ = ∂L/∂z)` }));
  const fused = c.output && ex.loss === "cross_entropy";
  if (c.output) {
    text.replaceChildren(
      el("p", {}, [
        "The backward pass starts at the output: how much the loss changes with each output's pre-activation. ",
        el("span", { class: "formula", text: fused ? "δ_j = p_j − [j = y]  (softmax fused with cross-entropy)" : "δ_j = f'(z_j) · ∂L/∂a_j" }),
      ]),
    );
    if (fused) {
      const t = ex.trace.targets !== undefined && ex.trace.targets !== null ? first(ex.trace.targets) : ex.sample.y;
      const yv = Array.isArray(t) ? t.flat(Infinity)[0] : t;
      cr.append(el("div", { class: "cr-line" }, ["δ = ", num("cr-p", a), " − ", num("cr-onehot", Number(yv) === j ? 1 : 0), " = ", num("cr-delta", delta, "hl")]));
    } else {
      const dA = d.dA ? d.dA[j] : delta / (fprime || 1);
      cr.append(
        el("div", { class: "cr-line" }, [`f'(z) = ${derivativeText(c.activation)} = `, num("cr-fprime", fprime)]),
        el("div", { class: "cr-line" }, ["∂L/∂a = ", num("cr-sum", dA), ex.loss === "mse" ? el("span", { class: "hint", text: "  (= 2(ŷ − y)/n for the mean of squared errors)" }) : ""]),
        el("div", { class: "cr-line" }, ["δ = ", num(null, fprime), " × ", num(null, dA), " = ", num("cr-delta", delta, "hl")]),
      );
    }
  } else {
    text.replaceChildren(
      el("p", {}, [
        "Each hidden neuron's δ is its activation's slope times the δs of the next layer, weighted by the connecting weights (the chain rule): ",
        el("span", { class: "formula", text: "δ_j = f'(z_j) · Σ_k w_jk δ_k" }),
      ]),
    );
    const next = cols[f.col + 1];
    const nd = next ? ex.colData[next.index] : null;
    const direct = next && nd && nd.W && Array.isArray(nd.W[0]) && nd.delta && next.layerIndex === c.layerIndex + 1;
    let sum;
    const terms = [];
    if (direct) {
      sum = 0;
      const K = nd.delta.length;
      for (let k = 0; k < K; k++) sum += nd.W[j][k] * nd.delta[k];
      for (let k = 0; k < Math.min(K, 4); k++) terms.push(term(num(null, nd.W[j][k]), " · ", num(null, nd.delta[k])), k < Math.min(K, 4) - 1 ? " + " : "");
      if (K > 4) terms.push(el("span", { text: ` + … (${K - 4} more)` }));
    } else {
      sum = d.dA ? d.dA[j] : NaN;
      terms.push(el("span", { class: "hint", text: "∂L/∂a_j through the layers in between" }));
    }
    cr.append(
      el("div", { class: "cr-line" }, ["Σ_k w_jk δ_k = ", ...terms, " = ", num("cr-sum", sum)]),
      el("div", { class: "cr-line" }, [`f'(z_j) = ${derivativeText(c.activation)} = `, num("cr-fprime", fprime)]),
      el("div", { class: "cr-line" }, ["δ_j = ", num(null, fprime), " × ", num(null, sum), " = ", num("cr-delta", delta, "hl")]),
    );
  }
  cr.append(el("div", { class: "cr-foot", text: "Hover an incoming edge: ∂L/∂w_ij = a_i · δ_j." }));
}

function renderUpdate(ex, text, cr) {
  const opt = ex.optimizer;
  text.replaceChildren(
    el("p", {}, [
      "Every weight takes a step against its gradient: ",
      el("span", { class: "formula", text: `w ← w − η · ∂L/∂w   (η = ${fmt(ex.lr, 3)})` }),
      ex.magnify > 1 ? el("span", { class: "hint", text: ` Edge width changes are drawn ×${ex.magnify} so they are visible.` }) : "",
      opt !== "sgd" ? el("span", { class: "hint", text: ` This run trains with ${opt}, which rescales the step; shown is the plain gradient step of this one sample.` }) : "",
    ]),
  );
  // the edge with the largest gradient
  let best = null;
  ex.view.gaps.forEach((g) => {
    const d = ex.colData[g.to.index];
    if (!d || !d.gW || g.mode !== "full") return;
    for (let i = 0; i < g.ni; i++) for (let j = 0; j < g.nj; j++) {
      const v = Math.abs(d.gW[i][j]);
      if (!best || v > best.v) best = { v, g, i, j, d };
    }
  });
  if (!best) return;
  const w = best.d.W[best.i][best.j];
  const gw = best.d.gW[best.i][best.j];
  cr.dataset.layer = best.g.name;
  cr.append(
    el("div", { class: "cr-title", text: `largest step: w[${best.i}→${best.j}] of L${best.g.name}` }),
    el("div", { class: "cr-line" }, ["w' = ", num("cr-w", w), " − ", num("cr-lr", ex.lr), " × ", num("cr-grad", gw), " = ", num("cr-wnew", w - ex.lr * gw, "hl")]),
  );
}

function stableText(list) {
  return list.map((v) => Number(v)).join(",");
}

