// The tooltip over the network drawing: a weight's value and its live chain rule from the last
// batch (dL/dw_ij = mean of a_i * delta_j, numbers that multiply out), a neuron's activation and
// delta, a layer's gradient statistics; while the explainer is open, the traced sample's numbers.

import { at, el, fmt } from "./util.js";

function numEl(id, label, value) {
  return el("div", { class: "tip-row" }, [el("span", { class: "tip-k", text: label }), el("span", { class: "tip-v", id, "data-value": value === null || value === undefined ? "" : String(value), text: fmt(value, 4) })]);
}

/**
 * The live chain rule of one weight, from the snapshot's last batch: for each sample b,
 * dl_b/dw_ij = a_i * delta_j (a_i: what flows into the layer, the sample's input value on the
 * first layer); dL/dw_ij is their mean over the batch. The numbers shown multiply out exactly.
 */
function liveEdgeRows(snap, cfg, hit, from, name) {
  const rows = [];
  const w = at(snap.weights && snap.weights[`${name}.W`], hit.i, hit.j);
  const g = at(snap.grads && snap.grads[`${name}.W`], hit.i, hit.j);
  const me = snap.nodes && snap.nodes[name];
  const samples = me && me.samples;
  rows.push(numEl("tip-w", "w", w));
  if (!samples || !samples.a || !samples.a.length) {
    rows.push(numEl("tip-grad", "∂L/∂w (last batch)", g));
    return rows;
  }
  const batch = snap.batch_size || samples.a.length;
  const shown = samples.a.length;
  const inputName = from.kind === "input" && from.features ? from.features[hit.i] : null;
  const a = samples.a.map((row) => row[hit.i]);
  const d = samples.delta.map((row) => row[hit.j]);
  const products = a.map((v, b) => v * d[b]);
  const mean = products.reduce((sum, v) => sum + v, 0) / shown;
  rows.push(el("div", { class: "tip-chain" }, [`one sample (1 of ${batch} in the last batch): ∂ℓ/∂w_ij = a_i · δ_j`]));
  rows.push(numEl("tip-a", `a_${hit.i}${inputName ? ` = input ${inputName}` : ` (output of unit ${hit.i} below)`}`, a[0]));
  rows.push(numEl("tip-delta", `δ_${hit.j} = ∂ℓ/∂z_${hit.j}`, d[0]));
  rows.push(numEl("tip-product", "a_i · δ_j", products[0]));
  const list = products.slice(0, 6).map((v) => fmt(v, 3)).join(", ");
  rows.push(el("div", { class: "tip-chain" }, [`the whole batch: ∂L/∂w_ij = mean of a_i · δ_j over its ${batch} samples`]));
  rows.push(el("div", { class: "tip-row tip-list", id: "tip-products", "data-count": String(shown) }, [`a_i · δ_j: ${list}${shown > 6 ? `, … (${shown - 6} more)` : ""}`]));
  if (shown === batch) rows.push(numEl("tip-mean", `mean of the ${batch} products = ∂L/∂w`, mean));
  const changed = (cfg.regularization && cfg.regularization.kind && cfg.regularization.kind !== "none" && cfg.regularization.rate > 0) || cfg.gradient_clip;
  if (changed) {
    const what = [cfg.regularization && cfg.regularization.kind !== "none" && cfg.regularization.rate > 0 ? `${cfg.regularization.kind.toUpperCase()} penalty added` : "", cfg.gradient_clip ? `clipped by ${cfg.gradient_clip.kind}` : ""].filter(Boolean).join(", ");
    rows.push(numEl("tip-grad", `gradient the step used (${what})`, g));
  } else {
    rows.push(numEl("tip-grad", "∂L/∂w the step used", g));
  }
  if (shown < batch) rows.push(el("div", { class: "tip-hint", text: `${shown} of the ${batch} samples are sent for a net this wide; their mean is not the whole batch's.` }));
  rows.push(el("div", { class: "tip-hint", text: "Click to edit this weight · “Explain a step” traces one sample phase by phase" }));
  return rows;
}

export class NetTooltip {
  /** @param {{store: object, view: object, explainer: object}} parts */
  constructor({ store, view, explainer }) {
    this.store = store;
    this.view = view;
    this.explainer = explainer;
    this.tip = document.getElementById("tooltip");
  }

  /** The tooltip of what the pointer (or the keyboard cursor) is on; hidden for nothing. */
  show(hit, e) {
    if (!hit || !e) {
      this.tip.hidden = true;
      return;
    }
    const snap = this.store.snapshot;
    const rows = [];
    let title = "";
    const source = this.explainer.active ? "trace" : "snapshot";
    this.tip.dataset.kind = hit.kind;
    this.tip.dataset.source = source;
    for (const k of ["layer", "i", "j", "unit", "col"]) {
      if (hit[k] === undefined || hit[k] === null) this.tip.removeAttribute(`data-${k}`);
      else this.tip.setAttribute(`data-${k}`, String(hit[k]));
    }
    const cols = this.view.columnModel();
    if (hit.kind === "edge") {
      const from = cols[hit.fromCol];
      const name = hit.layer;
      title = hit.i < 0 || hit.j < 0 ? `L${name}: ${hit.i < 0 ? `all ${from.units} inputs → unit ${hit.j}` : `unit ${hit.i} → all units`} (bundle)` : `L${name} weight w[${hit.i}→${hit.j}]`;
      if (this.explainer.active) {
        const n = this.explainer.edgeNumbers(hit);
        if (n) {
          rows.push(numEl("tip-w", "w", n.w), numEl("tip-grad", "∂L/∂w (trace)", n.grad));
          rows.push(el("div", { class: "tip-chain" }, ["∂L/∂w_ij = a_i · δ_j"]));
          rows.push(numEl("tip-a", `a_${hit.i} (input to L${name})`, n.a), numEl("tip-delta", `δ_${hit.j} (∂L/∂z)`, n.delta), numEl("tip-product", "a_i · δ_j", n.product));
          rows.push(numEl("tip-step", `−η·∂L/∂w (η=${fmt(n.lr, 3)})`, -n.lr * n.grad));
        }
      } else if (snap && hit.i >= 0 && hit.j >= 0) {
        rows.push(...liveEdgeRows(snap, this.store.config || {}, hit, from, name));
      }
    } else if (hit.kind === "node" || hit.kind === "bias") {
      const c = cols[hit.col];
      title = c.kind === "input" ? `input ${c.features ? c.features[hit.unit] : hit.unit}` : hit.unit < 0 ? `L${c.name}: ${c.units} units` : `L${c.name} ${c.kind === "conv" ? "filter" : "unit"} ${hit.unit}${c.activation ? ` · ${c.activation}` : ""}`;
      if (this.explainer.active) {
        const n = this.explainer.nodeNumbers(hit);
        if (n) {
          rows.push(numEl("tip-z", "z (pre-activation)", n.z), numEl("tip-act", "a (activation)", n.a), numEl("tip-delta", "δ = ∂L/∂z", n.delta));
          if (n.b !== null && n.b !== undefined) rows.push(numEl("tip-b", "b", n.b), numEl("tip-bgrad", "∂L/∂b = δ", n.gb));
          rows.push(el("div", { class: "tip-hint", text: "Click to follow this neuron's chain rule" }));
        }
      } else if (snap && c.name && hit.unit >= 0) {
        const st = snap.nodes && snap.nodes[c.name];
        rows.push(numEl("tip-act", "activation (batch mean)", st && st.activation ? st.activation[hit.unit] : null));
        rows.push(numEl("tip-delta", "|δ| = |∂L/∂z| (batch mean)", st && st.delta ? st.delta[hit.unit] : null));
        rows.push(numEl("tip-b", "bias b", at(snap.weights && snap.weights[`${c.name}.b`], hit.unit)));
        rows.push(numEl("tip-bgrad", "∂L/∂b", at(snap.grads && snap.grads[`${c.name}.b`], hit.unit)));
        if (hit.kind === "bias") rows.push(el("div", { class: "tip-hint", text: "Click to edit this bias" }));
      }
    } else if (hit.kind === "bar") {
      const st = this.store.latestLayers[hit.layer];
      title = `L${hit.layer} gradient`;
      if (st) {
        rows.push(numEl("tip-gnorm", "‖∂L/∂W‖₂", st.grad_norm), numEl("tip-wnorm", "‖W‖₂", st.weight_norm), numEl("tip-ratio", "update / weight", st.update_ratio));
        rows.push(numEl("tip-dead", "dead units", st.dead_fraction), numEl("tip-sat", "saturated", st.saturated_fraction));
      }
    }
    this.tip.replaceChildren(el("div", { class: "tip-title", text: title }), ...rows);
    this.tip.hidden = false;
    const box = document.getElementById("center").getBoundingClientRect();
    const tw = this.tip.offsetWidth;
    const th = this.tip.offsetHeight;
    let x = e.clientX - box.left + 14;
    let y = e.clientY - box.top + 14;
    if (x + tw > box.width - 4) x = e.clientX - box.left - tw - 14;
    if (y + th > box.height - 4) y = e.clientY - box.top - th - 10;
    this.tip.style.setProperty("left", `${Math.max(4, x)}px`);
    this.tip.style.setProperty("top", `${Math.max(4, y)}px`);
  }
}
