// Batch norm, live: per unit, the mean and variance of the last batch going into a batch-norm
// layer (from the "metrics" frames' layer statistics). The panel under the network follows the
// open run, one chip per batch-norm layer; the same cells show in each compare column.

import { formulaNodes } from "./formula.js";
import { el, fmt, fmtInt, setAttr, setStyle, setText } from "./util.js";

/** Units before batch-norm layer `index`: the width of the dense or conv layer it follows. */
export function unitsBefore(layers, index) {
  for (let k = index - 1; k >= 0; k--) {
    if (layers[k].type === "dense") return layers[k].units;
    if (layers[k].type === "conv2d") return layers[k].filters;
  }
  return null;
}

/** The two rows of cells, μ_B and σ_B², for `n` units. */
export function bnCells(n) {
  const row = (cls, label) => [
    el("span", { class: "bn-k" }, formulaNodes(label)),
    ...Array.from({ length: n }, (_, u) => el("span", { class: `bn-cell ${cls}`, "data-unit": u, "data-value": "" }, [el("i", { class: "bn-bar" }), el("span", { class: "bn-num", text: "–" })])),
  ];
  return [...row("bn-mean", "mu_B"), ...row("bn-var", "sigma_B^2")];
}

/** Write a layer's batch statistics ({batch_mean, batch_var}) into its cells: number and bar. */
export function fillBnCells(cells, stats, n) {
  const mean = stats && Array.isArray(stats.batch_mean) ? stats.batch_mean : null;
  const vari = stats && Array.isArray(stats.batch_var) ? stats.batch_var : null;
  const scale = (arr) => (arr ? Math.max(1e-12, ...arr.slice(0, n).map((v) => Math.abs(v) || 0)) : 1);
  const top = { mean: scale(mean), var: scale(vari) };
  for (const cell of cells) {
    const isMean = cell.classList.contains("bn-mean");
    const arr = isMean ? mean : vari;
    const v = arr ? arr[Number(cell.dataset.unit)] : null;
    const known = v !== null && v !== undefined;
    setAttr(cell, "data-value", known ? String(v) : "");
    setText(cell.lastChild, known ? fmt(v, 3) : "–");
    const t = known ? Math.min(1, Math.abs(v) / (isMean ? top.mean : top.var)) : 0;
    setStyle(cell.firstChild, "width", `${(t * 100).toFixed(0)}%`);
    setAttr(cell.firstChild, "data-sign", v < 0 ? "neg" : "pos");
  }
}

/** The panel under the network (hidden when the run has no batch-norm layer). */
export class BatchNormPanel {
  constructor(store) {
    this.store = store;
    this.layers = []; // [{name, units, after}]
    this.selected = null;
    this.panel = document.getElementById("bn-panel");
    this.chips = document.getElementById("bn-layers");
    this.body = document.getElementById("bn-body");
  }

  /** One chip per batch-norm layer of the run's config. */
  setup(cfg) {
    const layers = (cfg && cfg.layers) || [];
    this.layers = [];
    layers.forEach((l, i) => {
      if (l.type === "batchnorm") this.layers.push({ name: String(i), units: unitsBefore(layers, i), after: i - 1 });
    });
    this.panel.hidden = !this.layers.length;
    if (!this.layers.length) return;
    this.selected = this.layers[0].name;
    this.chips.replaceChildren(
      ...this.layers.map((b) => {
        const chip = el("button", { type: "button", class: "bn-chip", "data-layer": b.name, title: `batch norm layer ${b.name} (after layer ${b.after})`, text: `L${b.name}` });
        chip.addEventListener("click", () => {
          this.selected = b.name;
          this.render(true);
        });
        return chip;
      }),
    );
    document.getElementById("bn-formula").replaceChildren(
      el("span", { class: "bn-f" }, formulaNodes("x_hat = (x - mu_B) / sqrt(sigma_B^2 + eps)")),
      el("span", { class: "bn-f" }, formulaNodes("y = gamma * x_hat + beta")),
    );
    this.render(true);
  }

  /** Live batch mean and variance of the selected layer (from the latest metrics frame). */
  render(rebuild = false) {
    if (!this.layers.length) return;
    const b = this.layers.find((x) => x.name === this.selected) || this.layers[0];
    for (const chip of this.chips.children) chip.classList.toggle("active", chip.dataset.layer === b.name);
    const st = this.store.latestLayers[b.name];
    const mean = st && Array.isArray(st.batch_mean) ? st.batch_mean : null;
    const n = Math.min(16, (mean && mean.length) || b.units || 0);
    const body = this.body;
    if (rebuild || body.dataset.layer !== b.name || Number(body.dataset.units) !== n) {
      body.dataset.layer = b.name;
      body.dataset.units = String(n);
      const head = [el("span", { class: "bn-k", text: "unit" }), ...Array.from({ length: n }, (_, u) => el("span", { class: "bn-unit", text: String(u) }))];
      body.replaceChildren(...head, ...bnCells(n));
      body.style.setProperty("--bn-cols", String(n));
      const more = (mean && mean.length) || b.units || 0;
      body.dataset.more = more > n ? `+${more - n}` : "";
    }
    fillBnCells(body.querySelectorAll(".bn-cell"), st, n);
    const latest = this.store.latest;
    setText(this.panel.querySelector(".bn-title"), `Batch norm L${b.name} · live batch statistics${st ? ` · step ${fmtInt(latest ? latest.step : 0)}` : " · press Start"}`);
  }
}
