// Formulas typeset from ASCII ("z_j = sum_i w_ij a_i + b_j"): Greek letters, sub- and
// superscripts, operators, as DOM nodes (no HTML strings, no math library).

import { el } from "./util.js";

const GREEK = {
  eta: "η", delta: "δ", sigma: "σ", mu: "μ", beta: "β", gamma: "γ", alpha: "α", eps: "ε", epsilon: "ε",
  lambda: "λ", theta: "θ", tau: "τ", phi: "φ", rho: "ρ", omega: "ω", pi: "π",
};
const HAT = "\u0302"; // combining circumflex: x_hat -> x̂
// alternatives, longest first; each match becomes DOM nodes
const TOKEN = new RegExp(
  [
    "\\|\\|", // norm bars
    "<=|>=|!=|->|~",
    "product over layers of",
    "sum_[A-Za-z0-9,]+",
    "\\bd[A-Za-z]/d(?=[A-Za-z])", // dE/dw -> ∂E/∂w
    "\\^\\(?[A-Za-z0-9+\\-]+\\)?", // ^2, ^(t)
    "[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)?",
    "\\s\\*\\s|\\*",
    "-",
    "'",
  ].join("|"),
  "g",
);

function ident(word) {
  const m = word.match(/^([A-Za-z][A-Za-z0-9]*)(?:_([A-Za-z0-9]+))?$/);
  if (!m) return [word];
  const [, base, sub] = m;
  if (/^b[12]$/.test(base) && !sub) return [el("i", { text: "β" }), el("sub", { text: base[1] })];
  const greek = GREEK[base];
  const single = base.length === 1 || !!greek;
  if (sub === "hat" && single) return [el("i", { text: `${greek || base}${HAT}` })];
  if (!single) return [sub ? el("span", { class: "f-word", text: word }) : word]; // min_delta, relu, clip, if...
  const head = greek ? el("span", { class: "f-greek", text: greek }) : el("i", { text: base });
  return sub ? [head, el("sub", { text: sub.replace(/,/g, ", ") })] : [head];
}

/** DOM nodes of one ASCII formula ("z_j = sum_i w_ij a_i + b_j") typeset with sub/superscripts. */
export function formulaNodes(text) {
  const out = [];
  let last = 0;
  for (const m of String(text).matchAll(TOKEN)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    const t = m[0];
    if (t === "||") out.push("‖");
    else if (t === "<=") out.push("≤");
    else if (t === ">=") out.push("≥");
    else if (t === "!=") out.push("≠");
    else if (t === "->") out.push("→");
    else if (t === "~") out.push("∼");
    else if (t === "product over layers of") out.push(el("span", { class: "f-op", text: "∏" }), el("sub", { text: "layers" }));
    else if (t.startsWith("sum_")) out.push(el("span", { class: "f-op", text: "Σ" }), el("sub", { text: t.slice(4).replace(/,/g, ",") }));
    else if (t === "sum") out.push(el("span", { class: "f-op", text: "Σ" }));
    else if (t === "sqrt") out.push("√");
    else if (/^d[A-Za-z]\/d$/.test(t)) out.push(`∂${t[1]}/∂`);
    else if (t[0] === "^") out.push(el("sup", { text: t.slice(1).replace(/^\((.*)\)$/, "$1").replace(/-/g, "−") }));
    else if (t.trim() === "*") out.push(" · ");
    else if (t === "-") out.push("−");
    else if (t === "'") out.push("′");
    else out.push(...ident(t));
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** A formula block element. */
export function formulaBlock(text, cls = "formula-line") {
  return el("div", { class: cls, "data-formula": text, title: text }, formulaNodes(text));
}
