// The left panel: builds the run's config document from the form (every input carries the config
// path it sets in data-field, e.g. "layers[2].units", so a 422 error lands next to its field), keeps
// the setup in the URL fragment, exports/imports JSON, and lists presets and runs (the Learn tab and
// the compare view live in learn.js).

import { ApiError, api } from "./api.js";
import { el, fmt, fmtInt, statusText } from "./util.js";

const ACTIVATIONS = ["tanh", "relu", "leaky_relu", "sigmoid", "linear", "softmax"];
const LAYER_TYPES = ["dense", "conv2d", "maxpool2d", "avgpool2d", "flatten", "batchnorm", "dropout"];
const FEATURES_2D = [["x1", "x₁"], ["x2", "x₂"], ["x1^2", "x₁²"], ["x2^2", "x₂²"], ["x1*x2", "x₁x₂"], ["sin(x1)", "sin x₁"], ["sin(x2)", "sin x₂"]];
const FEATURES_1D = [["x1", "x"], ["x1^2", "x²"], ["sin(x1)", "sin x"]];
/** The longest run name the server takes (server.schemas.MAX_NAME_LENGTH). */
const MAX_NAME_LENGTH = 200;
/** Fields PATCH can change on a live session, with their place in the config document. */
export const HYPER_TO_FIELD = {
  learning_rate: "optimizer.learning_rate",
  batch_size: "batch_size",
  regularization: "regularization",
  gradient_clip: "gradient_clip",
  momentum: "optimizer.momentum",
  nesterov: "optimizer.nesterov",
  beta1: "optimizer.beta1",
  beta2: "optimizer.beta2",
  eps: "optimizer.eps",
  alpha: "optimizer.alpha",
};
const LAYER_DEFAULTS = {
  dense: { type: "dense", units: 4, activation: "tanh" },
  conv2d: { type: "conv2d", filters: 4, kernel_size: 3, stride: 1, padding: "valid", activation: "relu" },
  maxpool2d: { type: "maxpool2d", size: 2 },
  avgpool2d: { type: "avgpool2d", size: 2 },
  flatten: { type: "flatten" },
  batchnorm: { type: "batchnorm", momentum: 0.1, eps: 1e-5 },
  dropout: { type: "dropout", rate: 0.5 },
};
const FALLBACK_DATASETS = [
  { name: "circle", title: "Circle", task: "binary", input_kind: "2d" },
  { name: "xor", title: "Exclusive or", task: "binary", input_kind: "2d" },
  { name: "gaussian", title: "Gaussian", task: "binary", input_kind: "2d" },
  { name: "spiral", title: "Spiral", task: "binary", input_kind: "2d" },
  { name: "moons", title: "Moons", task: "binary", input_kind: "2d" },
  { name: "plane", title: "Plane", task: "regression", input_kind: "2d" },
  { name: "multi-gaussian", title: "Multi Gaussian", task: "regression", input_kind: "2d" },
  { name: "sine", title: "Sine", task: "regression", input_kind: "1d" },
  { name: "spiral3", title: "Three spirals", task: "multiclass", input_kind: "2d", num_classes: 3 },
  { name: "glyphs", title: "Glyphs", task: "multiclass", input_kind: "image", input_shape: [1, 16, 16] },
  { name: "digits", title: "Handwritten digits", task: "multiclass", input_kind: "image", input_shape: [1, 8, 8] },
];

/** The setup a fresh page starts from when no preset is available: Playground's circle. */
export const DEFAULT_CONFIG = {
  seed: 0,
  dataset: { name: "xor", samples: 500, noise: 0, test_fraction: 0.3 },
  features: ["x1", "x2"],
  layers: [
    { type: "dense", units: 8, activation: "tanh" },
    { type: "dense", units: 8, activation: "tanh" },
    { type: "dense", units: 1, activation: "sigmoid" },
  ],
  loss: "mse",
  optimizer: { name: "sgd", learning_rate: 0.03 },
  batch_size: 10,
};

/** Full defaults merged under a (possibly partial) config, so the form always has every field. */
export function withDefaults(cfg) {
  const c = JSON.parse(JSON.stringify(cfg || {}));
  const opt = c.optimizer || {};
  return {
    seed: c.seed ?? 0,
    dataset: { samples: 500, noise: 0, test_fraction: 0.3, ...(c.dataset || { name: "xor" }) },
    features: c.features || ["x1", "x2"],
    layers: c.layers || DEFAULT_CONFIG.layers,
    loss: c.loss || "mse",
    optimizer: {
      name: "sgd",
      learning_rate: 0.03,
      momentum: 0,
      nesterov: false,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      alpha: 0.99,
      ...opt,
      schedule: { kind: "constant", step_size: 1000, gamma: 0.5, total_steps: 10000, min_lr: 0, ...(opt.schedule || {}) },
    },
    batch_size: c.batch_size ?? 10,
    regularization: { kind: "none", rate: 0, ...(c.regularization || {}) },
    gradient_clip: c.gradient_clip ?? null,
    init: typeof c.init === "string" ? { kind: c.init, std: 0.1, range: 0.1 } : { kind: "xavier", std: 0.1, range: 0.1, ...(c.init || {}) },
    early_stopping: c.early_stopping ?? null,
    dtype: c.dtype || "float32",
  };
}

/** Stable JSON (sorted keys, null-valued keys dropped) for comparing documents. */
export function stableJson(v) {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).filter((k) => v[k] !== null && v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** What needs a new session when it changes: everything but the PATCH-able hyperparameters. */
export function structuralKey(cfg) {
  const c = withDefaults(cfg);
  const { name, schedule } = c.optimizer;
  return stableJson({ ...c, batch_size: 0, regularization: null, gradient_clip: null, optimizer: { name, schedule } });
}

/** The HyperparameterUpdate document of a config. */
export function hyperOf(cfg) {
  const c = withDefaults(cfg);
  const o = c.optimizer;
  return {
    learning_rate: o.learning_rate,
    batch_size: c.batch_size,
    regularization: c.regularization,
    gradient_clip: c.gradient_clip,
    momentum: o.momentum,
    nesterov: o.nesterov,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    alpha: o.alpha,
  };
}

function setPath(obj, path, value) {
  const parts = path.match(/[^.[\]]+/g);
  let o = obj;
  for (let k = 0; k < parts.length - 1; k++) {
    const key = /^\d+$/.test(parts[k]) ? Number(parts[k]) : parts[k];
    const nextIsIndex = /^\d+$/.test(parts[k + 1]);
    if (o[key] === undefined || o[key] === null) o[key] = nextIsIndex ? [] : {};
    o = o[key];
  }
  const last = parts[parts.length - 1];
  o[/^\d+$/.test(last) ? Number(last) : last] = value;
}

function getPath(obj, path) {
  const parts = path.match(/[^.[\]]+/g);
  let o = obj;
  for (const p of parts) {
    if (o === null || o === undefined) return undefined;
    o = o[/^\d+$/.test(p) ? Number(p) : p];
  }
  return o;
}

function taskWords(up) {
  if (up.task === "multiclass") return `${up.num_classes} classes`;
  if (up.task === "binary") return "two classes";
  return "a number to predict (regression)";
}

/** A server's upload error ({field, message}) in the words of the page: what is wrong with the file. */
export function plainUploadError({ field, message }, filename) {
  const m = String(message);
  let r;
  if (field === "dataset.target" || field === "target") {
    if ((r = m.match(/^expected one of the columns \[(.*)\], got '(.*)'$/))) return `${filename} has no column named “${r[2]}”; its columns are ${r[1].replace(/'/g, "")}. Leave “target column” empty to use the last one.`;
    return `Target column: ${m}`;
  }
  const rules = [
    [/^expected a CSV file with a header row, got an empty file$/, () => `${filename} is empty.`],
    [/^expected a header row, got none$/, () => `${filename} has no header row: its first line must name the columns.`],
    [/^expected at least 2 columns \(inputs and a target\), got (\d+)$/, (x) => `${filename} has ${x[1]} column; it needs at least 2 (inputs and a target).`],
    [/^expected at most (\d+) columns, got (\d+)$/, (x) => `${filename} has ${x[2]} columns; at most ${x[1]} are allowed.`],
    [/^expected unique column names, got \[(.*)\] repeated$/, (x) => `Each column needs its own name; in ${filename} these appear more than once: ${x[1].replace(/'/g, "")}.`],
    [/^row (\d+): expected (\d+) cells like the header, got (\d+)$/, (x) => `Data row ${x[1]} of ${filename} (the header not counted) has ${x[3]} values, but the header names ${x[2]} columns.`],
    [/^row (\d+), column '(.*)': expected a (?:finite )?number, got (.*)$/, (x) => `Data row ${x[1]}, column “${x[2]}” of ${filename} holds ${x[3].replace(/^'(.*)'$/, "“$1”")}, which is not a number.`],
    [/^expected data rows below the header, got none$/, () => `${filename} has a header row but no data rows.`],
    [/^expected at least (\d+) rows, got (\d+)$/, (x) => `${filename} has ${x[2]} rows; a run needs at least ${x[1]}.`],
    [/^expected at least 2 classes in y, got only (.*)$/, (x) => `The target column of ${filename} holds only one value (${x[1]}); there must be at least two classes to learn.`],
    [/^expected an \.npz \(zip\) file, got something else$/, () => `${filename} is not an .npz file (nor a CSV with a header row).`],
    [/^expected the arrays X and y once each in the \.npz, got (.*)$/, (x) => `${filename} must hold exactly two arrays named X (inputs) and y (targets); it holds ${x[1]}.`],
    [/^expected only the arrays X and y in the \.npz, got also (.*)$/, (x) => `${filename} must hold only the arrays X and y; it also holds ${x[1]}.`],
    [/^expected as many rows in y as in X \((\d+)\), got (\d+)$/, (x) => `In ${filename}, X has ${x[1]} rows but y has ${x[2]}: they must match.`],
    [/^the uploaded file is larger than the (.*) limit$/, (x) => `${filename} is larger than the ${x[1]} upload limit.`],
  ];
  for (const [re, say] of rules) {
    const x = m.match(re);
    if (x) return say(x);
  }
  return `${filename} could not be used: ${m.replace(/^expected /, "it should have ").replace(/, got /, ", but has ")}.`;
}

function readInput(input) {
  const type = input.dataset.type;
  if (type === "bool") return input.checked;
  const raw = input.value.trim();
  if (type === "int") {
    if (/^-?\d+$/.test(raw)) return Number(raw);
    if (raw !== "" && Number.isFinite(Number(raw))) return Number(raw); // 2.5 -> the server says "must be an integer"
    return raw; // unparseable: sent as is so the server names the field
  }
  if (type === "float") {
    if (raw !== "" && Number.isFinite(Number(raw))) return Number(raw);
    return raw;
  }
  return input.value;
}

function writeInput(input, value) {
  if (input.dataset.type === "bool") input.checked = !!value;
  else input.value = value === null || value === undefined ? "" : String(value);
}

/** The left panel. */
export class Controls {
  /**
   * @param {{onStructure: Function, onHyper: Function, onPreset: Function, onOpenRun: Function, onRunDeleted?: Function, onRunRenamed?: Function}} handlers
   */
  constructor(store, handlers) {
    this.store = store;
    this.handlers = handlers;
    this.form = document.getElementById("config-form");
    this.layersBox = document.getElementById("layers");
    this.featuresBox = document.getElementById("features");
    this.datasetSelect = document.getElementById("f-dataset");
    this.presetSelect = document.getElementById("preset");
    this.layers = [];
    this.features = ["x1", "x2"];
    this.compareIds = [];
    this.fillDatasets(FALLBACK_DATASETS);
    this.bind();
  }

  bind() {
    this.form.addEventListener("submit", (e) => e.preventDefault());
    this.form.addEventListener("input", (e) => this.onFormEvent(e, false));
    this.form.addEventListener("change", (e) => this.onFormEvent(e, true));
    document.getElementById("add-layer").addEventListener("click", () => {
      const at = Math.max(0, this.layers.length - 1);
      this.layers.splice(at, 0, { ...LAYER_DEFAULTS.dense });
      this.renderLayers();
      this.changed("structure");
    });
    document.getElementById("new-seed").addEventListener("click", () => {
      document.getElementById("f-seed").value = String(Math.floor(Math.random() * 100000));
      this.changed("structure");
    });
    this.presetSelect.addEventListener("change", () => {
      const p = this.store.presets.find((x) => x.id === this.presetSelect.value);
      if (p) this.handlers.onPreset(p);
    });
    document.getElementById("export-json").addEventListener("click", () => this.exportJson());
    document.getElementById("import-json").addEventListener("change", (e) => this.importJson(e.target));
    document.getElementById("upload-file").addEventListener("change", (e) => this.uploadFile(e.target));
    document.getElementById("upload-btn").addEventListener("click", () => document.getElementById("upload-file").click());
    document.getElementById("import-json-btn").addEventListener("click", () => document.getElementById("import-json").click());
    document.getElementById("copy-link").addEventListener("click", () => this.copyLink());
    for (const tab of document.querySelectorAll(".tabs .tab")) {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tab));
    }
    document.getElementById("refresh-runs").addEventListener("click", () => this.refreshRuns());
    document.getElementById("compare-runs").addEventListener("click", () => this.openCompare());
  }

  showTab(name) {
    for (const t of document.querySelectorAll(".tabs .tab")) {
      t.classList.toggle("active", t.dataset.tab === name);
      t.setAttribute("aria-selected", t.dataset.tab === name ? "true" : "false");
    }
    for (const b of document.querySelectorAll("[data-tab-body]")) b.hidden = b.dataset.tabBody !== name;
    if (name === "runs") this.refreshRuns();
  }

  onFormEvent(e, committed) {
    const t = e.target;
    if (!(t instanceof HTMLElement)) return;
    if (t.id === "preset" || t.id === "import-json" || t.id === "upload-file" || t.id === "upload-target") return;
    this.updateOutputs();
    if (t.type === "range" && !committed) return; // sliders apply on release
    if (t.type === "number" && !committed && e.type === "input") {
      // numbers apply after a pause in typing, or on change (blur / enter)
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => {
        this.typingTimer = null;
        this.fieldChanged(t);
      }, 700);
      return;
    }
    if (committed && t.type === "number") clearTimeout(this.typingTimer);
    if (e.type === "input" && t.tagName === "SELECT") return; // selects fire change too
    if (e.type === "input" && t.type === "checkbox") return;
    this.fieldChanged(t);
  }

  fieldChanged(t) {
    const field = t.dataset.field || "";
    if (field.startsWith("layers[") && field.endsWith(".type")) {
      const i = Number(field.match(/\[(\d+)\]/)[1]);
      this.layers[i] = { ...LAYER_DEFAULTS[t.value] };
      this.renderLayers();
    } else if (field.startsWith("layers[")) {
      this.syncLayersFromDom();
    }
    if (t.dataset.feature) this.syncFeatures();
    if (field === "dataset.name") {
      this.renderFeatures();
      this.syncConditional();
    }
    this.syncConditional();
    this.changed(t.dataset.live ? "hyper" : "structure", t);
  }

  /** Tell main what changed; it decides between PATCH and a new session. */
  changed(kind, input) {
    this.clearErrors(input ? input.dataset.field : null);
    if (kind === "hyper") this.handlers.onHyper(this.readConfig());
    else this.handlers.onStructure(this.readConfig());
  }

  fillDatasets(list) {
    const keep = this.datasetSelect.value;
    this.datasetSelect.replaceChildren(...list.map((d) => el("option", { value: d.name, text: d.title || d.name })));
    if (keep && list.some((d) => d.name === keep)) this.datasetSelect.value = keep;
  }

  fillPresets(presets) {
    const option = (p) => el("option", { value: p.id, text: p.lesson ? `${p.lesson}. ${p.title || p.id}` : p.title || p.id });
    const lessons = presets.filter((p) => p.kind === "lesson");
    const basic = presets.filter((p) => p.kind !== "lesson");
    const groups = [];
    if (lessons.length) groups.push(el("optgroup", { label: "Guided experiments" }, lessons.map(option)));
    if (basic.length) groups.push(el("optgroup", { label: lessons.length ? "Starting points" : "Presets" }, basic.map(option)));
    this.presetSelect.replaceChildren(el("option", { value: "", text: "— choose —" }), ...groups);
    if (this.handlers.onPresets) this.handlers.onPresets(presets);
  }

  datasetInfo(name) {
    return this.store.datasets[name] || FALLBACK_DATASETS.find((d) => d.name === name) || null;
  }

  // ---------------------------------------------------------------- layers and features

  renderLayers() {
    const n = this.layers.length;
    this.layersBox.replaceChildren(
      ...this.layers.map((layer, i) => {
        const p = `layers[${i}]`;
        const row = el("div", { class: "layer-row", "data-index": i, "data-field": p });
        const who = i === n - 1 ? "output layer" : `layer ${i}`;
        const typeSel = el("select", { "data-field": `${p}.type`, "data-type": "str", title: "layer type", "aria-label": `${who} type` }, LAYER_TYPES.map((t) => el("option", { value: t, text: t })));
        typeSel.value = layer.type;
        const tag = el("span", { class: "layer-idx", text: i === n - 1 ? "out" : String(i) });
        const fields = el("span", { class: "layer-fields" });
        const num = (key, title, type = "int", attrs = {}) => {
          const input = el("input", { type: "number", "data-field": `${p}.${key}`, "data-type": type, title, placeholder: title, "aria-label": `${who} ${title}`, step: type === "int" ? 1 : "any", class: "n", ...attrs });
          input.value = layer[key] ?? "";
          return input;
        };
        const act = (key = "activation") => {
          const s = el("select", { "data-field": `${p}.${key}`, "data-type": "str", title: "activation", "aria-label": `${who} activation` }, ACTIVATIONS.map((a) => el("option", { value: a, text: a })));
          s.value = layer[key] || "tanh";
          return s;
        };
        switch (layer.type) {
          case "dense":
            fields.append(num("units", "units", "int", { min: 1 }), act());
            break;
          case "conv2d": {
            const pad = el("select", { "data-field": `${p}.padding`, "data-type": "str", title: "padding", "aria-label": `${who} padding` }, ["valid", "same"].map((a) => el("option", { value: a, text: a })));
            pad.value = layer.padding || "valid";
            fields.append(num("filters", "filters", "int", { min: 1 }), num("kernel_size", "kernel size", "int", { min: 1 }), num("stride", "stride", "int", { min: 1 }), pad, act());
            fields.classList.add("wide");
            break;
          }
          case "maxpool2d":
          case "avgpool2d":
            fields.append(num("size", "window size", "int", { min: 1 }));
            break;
          case "batchnorm":
            fields.append(num("momentum", "running-stat momentum", "float"));
            break;
          case "dropout":
            fields.append(num("rate", "drop probability", "float"));
            break;
          default:
            break;
        }
        const remove = el("button", { type: "button", class: "icon", title: "remove this layer", "aria-label": `remove ${who}`, text: "✕" });
        remove.disabled = n <= 1;
        remove.addEventListener("click", () => {
          this.layers.splice(i, 1);
          this.renderLayers();
          this.changed("structure");
        });
        row.append(tag, typeSel, fields, remove);
        const errors = el("div", { class: "layer-errors" });
        const keys = ["type", "units", "activation", "filters", "kernel_size", "stride", "padding", "size", "momentum", "rate", "eps"];
        errors.append(el("div", { class: "field-error", "data-error-for": p, hidden: true }));
        for (const k of keys) errors.append(el("div", { class: "field-error", "data-error-for": `${p}.${k}`, hidden: true }));
        return el("div", { class: "layer-item" }, [row, errors]);
      }),
    );
  }

  syncLayersFromDom() {
    const doc = {};
    for (const input of this.layersBox.querySelectorAll("[data-field][data-type]")) setPath(doc, input.dataset.field, readInput(input));
    this.layers = (doc.layers || []).filter(Boolean);
  }

  renderFeatures() {
    const info = this.datasetInfo(this.datasetSelect.value);
    const kind = info ? info.input_kind : "2d";
    this.featuresBox.dataset.kind = kind;
    document.getElementById("dataset-hint").textContent = info && info.description ? info.description : "";
    if (kind === "image") {
      const [h, w] = (info.input_shape || [1, 16, 16]).slice(-2);
      this.featuresBox.replaceChildren(el("span", { class: "hint", text: `pixels (${h}×${w} image)` }));
      return;
    }
    if (kind === "table") {
      this.featuresBox.replaceChildren(el("span", { class: "hint", text: "the file's columns, as they are" }));
      return;
    }
    const list = kind === "1d" ? FEATURES_1D : FEATURES_2D;
    const allowed = new Set(list.map(([f]) => f));
    this.features = this.features.filter((f) => allowed.has(f));
    if (!this.features.length) this.features = [list[0][0]];
    this.featuresBox.replaceChildren(
      ...list.map(([f, label]) => {
        const box = el("input", { type: "checkbox", "data-feature": f });
        box.checked = this.features.includes(f);
        return el("label", { class: "feature", title: f }, [box, el("span", { text: label })]);
      }),
    );
  }

  syncFeatures() {
    this.features = [...this.featuresBox.querySelectorAll("input[data-feature]")].filter((b) => b.checked).map((b) => b.dataset.feature);
  }

  syncConditional() {
    const opt = document.getElementById("f-optimizer").value;
    for (const d of this.form.querySelectorAll("[data-show-optimizer]")) d.hidden = !d.dataset.showOptimizer.split(" ").includes(opt);
    const sched = document.getElementById("f-schedule").value;
    for (const d of this.form.querySelectorAll("[data-show-schedule]")) d.hidden = !d.dataset.showSchedule.split(" ").includes(sched);
    const init = document.getElementById("f-init").value;
    for (const d of this.form.querySelectorAll("[data-show-init]")) d.hidden = d.dataset.showInit !== init;
    document.getElementById("es-fields").hidden = !document.getElementById("f-es").checked;
    const clip = document.getElementById("f-clip");
    clip.nextElementSibling.disabled = clip.value === "off";
    const reg = this.form.querySelector('[data-field="regularization.kind"]');
    reg.nextElementSibling.disabled = reg.value === "none";
    const info = this.datasetInfo(this.datasetSelect.value);
    const noise = this.form.querySelector('[data-field="dataset.noise"]').closest(".row");
    const samples = this.form.querySelector('[data-field="dataset.samples"]').closest(".row");
    const drawn = info && info.source === "drawn";
    noise.hidden = drawn;
    samples.hidden = drawn;
  }

  updateOutputs() {
    for (const o of this.form.querySelectorAll("output[data-for]")) {
      const input = this.form.querySelector(`[data-field="${o.dataset.for}"]`);
      if (!input) continue;
      const v = Number(input.value);
      o.textContent = o.dataset.for === "dataset.noise" || o.dataset.for === "dataset.test_fraction" ? `${Math.round(v * 100)}%` : fmt(v);
    }
  }

  // ---------------------------------------------------------------- config document

  /** The config document the form describes (always complete; invalid values left for the server). */
  readConfig() {
    const doc = {};
    for (const input of this.form.querySelectorAll("[data-field][data-type]")) {
      const f = input.dataset.field;
      if (f.startsWith("layers[")) continue;
      setPath(doc, f, readInput(input));
    }
    this.syncLayersFromDom();
    doc.layers = JSON.parse(JSON.stringify(this.layers));
    const info = this.datasetInfo(doc.dataset.name);
    doc.features = info && info.input_kind === "image" ? this.features.length ? this.features : ["x1", "x2"] : this.features.slice();
    if (info && info.input_kind === "image") doc.features = ["x1", "x2"];
    const clip = doc.gradient_clip;
    doc.gradient_clip = clip.kind === "off" ? null : { kind: clip.kind, threshold: clip.threshold };
    const es = doc.early_stopping;
    doc.early_stopping = es.enabled ? { patience: es.patience, min_delta: es.min_delta, eval_every: es.eval_every, restore_best: es.restore_best } : null;
    if (this.extraDataset) Object.assign(doc.dataset, this.extraDataset);
    if (info && info.source === "drawn") {
      delete doc.dataset.samples;
      delete doc.dataset.noise;
    }
    return doc;
  }

  /** Fill the form from a config document. */
  writeConfig(cfg) {
    const c = withDefaults(cfg);
    this.extraDataset = {};
    if (c.dataset.points) this.extraDataset.points = c.dataset.points;
    if (c.dataset.target) this.extraDataset.target = c.dataset.target;
    if (!this.datasetInfo(c.dataset.name)) {
      this.datasetSelect.append(el("option", { value: c.dataset.name, text: c.dataset.name }));
    }
    const flatDoc = {
      ...c,
      gradient_clip: c.gradient_clip ? c.gradient_clip : { kind: "off", threshold: 1 },
      early_stopping: c.early_stopping
        ? { enabled: true, patience: 10, min_delta: 0, eval_every: 25, restore_best: true, ...c.early_stopping }
        : { enabled: false, patience: 10, min_delta: 0, eval_every: 25, restore_best: true },
    };
    for (const input of this.form.querySelectorAll("[data-field][data-type]")) {
      const f = input.dataset.field;
      if (f.startsWith("layers[")) continue;
      const v = getPath(flatDoc, f);
      if (v !== undefined) writeInput(input, v);
    }
    this.layers = c.layers.map((l) => ({ ...(LAYER_DEFAULTS[l.type] || {}), ...l }));
    this.features = c.features.slice();
    this.renderLayers();
    this.renderFeatures();
    this.syncConditional();
    this.updateOutputs();
    this.clearErrors();
  }

  // ---------------------------------------------------------------- errors

  /** Apply a number that is still being typed (its pause-in-typing timer has not fired yet). */
  flushTyping() {
    if (!this.typingTimer) return;
    clearTimeout(this.typingTimer);
    this.typingTimer = null;
    const input = document.activeElement;
    if (input instanceof HTMLInputElement && this.form.contains(input) && input.type === "number") this.fieldChanged(input);
  }

  /** The form fields whose red message shows: [{field, label, message}]; empty when the form is valid. */
  invalidFields() {
    const out = [];
    for (const box of this.form.querySelectorAll(".field-error[data-error-for]:not([hidden])")) {
      const field = box.dataset.errorFor;
      if (!field || field === "upload") continue; // general notes and upload problems are not the run's setup
      out.push({ field, label: this.fieldLabel(field), message: box.textContent });
    }
    return out;
  }

  /** Words for a config path, as the form shows it: "Learning rate", "layer 2 units". */
  fieldLabel(field) {
    const layer = field.match(/^layers\[(\d+)\](?:\.(\w+))?/);
    if (layer) return `layer ${layer[1]}${layer[2] ? ` ${layer[2].replace(/_/g, " ")}` : ""}`;
    const input = this.form.querySelector(`[data-field="${CSS.escape(field)}"]`);
    const row = input ? input.closest(".row") : null;
    const text = row && row.firstElementChild ? row.firstElementChild.textContent.trim() : "";
    return text || field;
  }

  /** Bring the first red message into view (Build tab, scrolled to it, its field focused). */
  revealErrors() {
    const first = this.form.querySelector(".field-error:not([hidden])");
    if (!first) return;
    this.showTab("build");
    first.scrollIntoView({ block: "center" });
    const input = this.form.querySelector(`[data-field="${CSS.escape(first.dataset.errorFor || "")}"]`);
    if (input && typeof input.focus === "function") input.focus({ preventScroll: true });
  }

  clearErrors(field) {
    for (const box of document.querySelectorAll(".field-error[data-error-for]")) {
      if (field && box.dataset.errorFor !== field) continue;
      box.hidden = true;
      box.textContent = "";
    }
    for (const input of this.form.querySelectorAll("[aria-invalid]")) {
      if (!field || input.dataset.field === field) input.removeAttribute("aria-invalid");
    }
  }

  /** Show each {field, message} next to its field (walking up the path when no box matches). */
  showErrors(errors) {
    this.clearErrors();
    for (const { field, message } of errors) {
      let f = field || "";
      let box = null;
      while (true) {
        box = document.querySelector(`.field-error[data-error-for="${CSS.escape(f)}"]`);
        if (box || !f) break;
        const cut = Math.max(f.lastIndexOf("."), f.lastIndexOf("["));
        f = cut > 0 ? f.slice(0, cut) : "";
      }
      if (!box) box = document.getElementById("form-error");
      box.hidden = false;
      box.textContent = box.textContent ? `${box.textContent}; ${field && f !== field ? `${field}: ` : ""}${message}` : `${field && f !== field ? `${field}: ` : ""}${message}`;
      const input = this.form.querySelector(`[data-field="${CSS.escape(field)}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    }
    const first = document.querySelector(".field-error:not([hidden])");
    if (first) {
      this.showTab("build");
      first.scrollIntoView({ block: "nearest" });
    }
  }

  // ---------------------------------------------------------------- URL, export, import

  /** #run=<id>&c=<config JSON>: a link that reproduces the setup (and reopens the run if it exists). */
  writeFragment(cfg, runId) {
    const params = new URLSearchParams();
    if (runId) params.set("run", runId);
    params.set("c", JSON.stringify(cfg));
    const hash = `#${params.toString()}`;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  static readFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    let config = null;
    try {
      config = params.get("c") ? JSON.parse(params.get("c")) : null;
    } catch {
      config = null;
    }
    return { runId: params.get("run"), config, preset: params.get("preset") };
  }

  exportJson() {
    const blob = new Blob([`${JSON.stringify(this.readConfig(), null, 2)}\n`], { type: "application/json" });
    const a = el("a", { href: URL.createObjectURL(blob), download: "backprop-lens-config.json" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }

  async importJson(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    let doc;
    try {
      doc = JSON.parse(await file.text());
    } catch (err) {
      this.showErrors([{ field: "", message: `${file.name} is not a JSON file this page can read (${String(err.message).replace(/^JSON\.parse: /, "")}). Export a setup with “Export JSON” to see what one looks like.` }]);
      return;
    }
    const cfg = doc && typeof doc === "object" && doc.config && doc.layers === undefined ? doc.config : doc;
    if (!cfg || typeof cfg !== "object" || Array.isArray(cfg) || !cfg.dataset || !Array.isArray(cfg.layers)) {
      this.showErrors([{ field: "", message: `${file.name} holds JSON, but not a Backprop Lens setup: it needs a “dataset” and a list of “layers”. Export a setup with “Export JSON” to see what one looks like.` }]);
      return;
    }
    const known = new Set(Object.keys(withDefaults({})));
    const ignored = Object.keys(cfg).filter((k) => !known.has(k));
    this.writeConfig(cfg);
    this.handlers.onStructure(this.readConfig());
    this.note(ignored.length ? `imported ${file.name}; not settings, so left out: ${ignored.join(", ")}` : `imported ${file.name}`, ignored.length ? 8000 : 3000);
  }

  // ---------------------------------------------------------------- your own data

  /** Upload a CSV/NPZ, then build a run on it: its columns are the inputs, the output fits its task. */
  async uploadFile(input) {
    const file = input.files && input.files[0];
    input.value = "";
    if (!file) return;
    const box = document.getElementById("upload-error");
    const note = document.getElementById("upload-note");
    box.hidden = true;
    box.textContent = "";
    const target = document.getElementById("upload-target").value.trim();
    note.textContent = `uploading ${file.name}…`;
    let up;
    try {
      up = await api.upload(file, target || undefined);
    } catch (err) {
      note.textContent = "";
      box.hidden = false;
      const errors = err && err.errors ? err.errors : [{ field: "", message: String(err) }];
      box.textContent = errors.map((e) => plainUploadError(e, file.name)).join(" ");
      box.scrollIntoView({ block: "nearest" });
      return;
    }
    const inputKind = up.columns === 2 ? "2d" : up.columns === 1 ? "1d" : "table";
    const title = `Your data: ${file.name}`;
    this.store.datasets[up.name] = { name: up.name, title, task: up.task, input_kind: inputKind, num_classes: up.num_classes, source: "upload", description: `${fmtInt(up.rows)} rows, ${up.columns} input column${up.columns === 1 ? "" : "s"}, ${taskWords(up)}` };
    if (![...this.datasetSelect.options].some((o) => o.value === up.name)) this.datasetSelect.append(el("option", { value: up.name, text: title }));
    note.textContent = `${file.name}: ${fmtInt(up.rows)} rows, ${up.columns} input column${up.columns === 1 ? "" : "s"}, ${taskWords(up)}. The run now trains on it.`;
    const cfg = this.readConfig();
    cfg.dataset = { name: up.name, test_fraction: cfg.dataset.test_fraction ?? 0.3, ...(target ? { target } : {}) };
    cfg.features = inputKind === "2d" ? ["x1", "x2"] : ["x1"];
    const layers = cfg.layers.slice();
    const out = { ...layers[layers.length - 1], type: "dense" };
    if (up.task === "multiclass") Object.assign(out, { units: up.num_classes, activation: "softmax" });
    else if (up.task === "regression") Object.assign(out, { units: 1, activation: "linear" });
    else Object.assign(out, { units: 1, activation: out.activation === "softmax" || out.activation === "linear" ? "tanh" : out.activation || "tanh" });
    layers[layers.length - 1] = out;
    cfg.layers = layers;
    cfg.loss = up.task === "multiclass" ? "cross_entropy" : up.task === "regression" ? "mse" : cfg.loss === "cross_entropy" ? "mse" : cfg.loss;
    this.writeConfig(cfg);
    this.handlers.onStructure(this.readConfig());
  }

  async copyLink() {
    try {
      await navigator.clipboard.writeText(location.href);
      this.note("link copied");
    } catch {
      this.note("copy the address bar: it holds the setup");
    }
  }

  note(text, ms = 3000) {
    const n = document.getElementById("share-note");
    n.textContent = text;
    clearTimeout(this.noteTimer);
    this.noteTimer = setTimeout(() => (n.textContent = ""), ms);
  }

  // ---------------------------------------------------------------- runs and compare

  async refreshRuns() {
    const list = document.getElementById("run-list");
    let sessions;
    try {
      sessions = (await api.sessions()).sessions || [];
    } catch (err) {
      list.replaceChildren(el("li", { class: "hint", text: err.message }));
      return;
    }
    this.compareIds = this.compareIds.filter((id) => sessions.some((s) => s.id === id));
    // a refresh keeps keyboard focus on the same control of the same run
    const active = document.activeElement;
    const row = active instanceof HTMLElement && list.contains(active) ? active.closest(".run-item") : null;
    const cls = row ? [...active.classList].find((c) => c.startsWith("run-")) : null;
    list.replaceChildren(...sessions.map((s) => this.runItem(s)));
    if (row && cls) {
      const again = list.querySelector(`.run-item[data-run="${CSS.escape(row.dataset.run)}"] .${cls}`);
      if (again) again.focus();
    }
    this.syncCompareButton();
    if (!sessions.length) list.append(el("li", { class: "hint", text: "No runs yet." }));
  }

  syncCompareButton() {
    document.getElementById("compare-runs").disabled = this.compareIds.length < 2;
  }

  /** One row of the Runs list: compare tick, the full name (opens the run), status, rename, delete. */
  runItem(s) {
    const list = document.getElementById("run-list");
    const current = this.store.session ? this.store.session.id : null;
    const cfg = s.config || {};
    const arch = [(cfg.features || []).length || "img", ...(cfg.layers || []).filter((l) => l.type === "dense").map((l) => l.units)].join("-");
    const name = s.name || s.id;
    const item = el("li", { class: `run-item${s.id === current ? " current" : ""}`, "data-run": s.id, "data-status": s.status, "data-mode": "view" });
    const tick = el("input", { type: "checkbox", class: "run-tick", "data-run": s.id });
    tick.checked = this.compareIds.includes(s.id);
    tick.addEventListener("change", () => {
      this.compareIds = this.compareIds.filter((id) => id !== s.id);
      if (tick.checked) this.compareIds.push(s.id);
      while (this.compareIds.length > 3) this.compareIds.shift();
      for (const t of list.querySelectorAll("input[data-run]")) t.checked = this.compareIds.includes(t.dataset.run);
      this.syncCompareButton();
    });
    const nameEl = el("span", { class: "run-name", text: name });
    const open = el("button", { type: "button", class: "run-open", title: "open this run" }, [
      nameEl,
      el("span", { class: "run-meta", text: `${cfg.dataset ? cfg.dataset.name : "?"} · ${arch} · step ${fmtInt(s.step)}${s.metrics && s.metrics.loss !== undefined ? ` · loss ${fmt(s.metrics.loss)}` : ""}` }),
    ]);
    open.addEventListener("click", () => this.handlers.onOpenRun(s.id));
    const pill = el("span", { class: "pill", "data-status": s.status, text: statusText(s.status) });
    const renameBtn = el("button", { type: "button", class: "small ghost run-rename", text: "Rename" });
    const deleteBtn = el("button", { type: "button", class: "small ghost run-delete", text: "Delete" });
    const actions = el("div", { class: "run-actions" }, [renameBtn, deleteBtn]);
    const named = () => {
      tick.setAttribute("aria-label", `compare ${nameEl.textContent}`);
      renameBtn.setAttribute("aria-label", `Rename ${nameEl.textContent}`);
      deleteBtn.setAttribute("aria-label", `Delete ${nameEl.textContent}`);
    };
    named();

    // rename in place: Enter (or Save) saves, Escape (or Cancel) goes back; blank names are refused
    const errId = `run-error-${s.id}`;
    const input = el("input", { type: "text", class: "run-name-input", maxlength: MAX_NAME_LENGTH, "aria-label": "New name", "aria-describedby": errId });
    const error = el("div", { class: "field-error", id: errId, role: "alert", hidden: true });
    const save = el("button", { type: "button", class: "small accent run-save", text: "Save" });
    const cancel = el("button", { type: "button", class: "small run-cancel", text: "Cancel" });
    const edit = el("div", { class: "run-edit", hidden: true }, [input, el("div", { class: "run-edit-buttons" }, [save, cancel]), error]);
    // delete: a confirmation step in the page
    const yes = el("button", { type: "button", class: "small danger run-confirm-delete", text: "Delete" });
    const keep = el("button", { type: "button", class: "small run-keep", text: "Keep" });
    const question = el("span", { class: "run-question", text: "Delete this run and its history?" });
    const confirm = el("div", { class: "run-confirm", role: "group", "aria-label": "Confirm delete", hidden: true }, [question, yes, keep]);
    const showError = (text) => {
      error.textContent = text;
      error.hidden = !text;
      if (text) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    };
    const setMode = (mode) => {
      item.dataset.mode = mode;
      open.hidden = mode === "rename";
      actions.hidden = mode !== "view";
      edit.hidden = mode !== "rename";
      confirm.hidden = mode !== "delete";
    };
    const stopEditing = () => {
      showError("");
      setMode("view");
      renameBtn.focus();
    };
    const commit = async () => {
      const value = input.value.trim();
      if (!value) return showError("A name cannot be blank.");
      if (value.length > MAX_NAME_LENGTH) return showError(`A name can have at most ${MAX_NAME_LENGTH} characters (this one has ${value.length}).`);
      save.disabled = true;
      try {
        const updated = await api.patch(s.id, { name: value });
        nameEl.textContent = updated.name;
        named();
        if (this.store.session && this.store.session.id === s.id) this.store.setSession(updated);
        if (this.handlers.onRunRenamed) this.handlers.onRunRenamed(updated);
        this.runsNote(`Renamed to “${updated.name}”.`);
        stopEditing();
      } catch (err) {
        showError(err instanceof ApiError ? err.errors.map((e) => e.message).join("; ") : String(err));
        input.focus();
      } finally {
        save.disabled = false;
      }
    };
    renameBtn.addEventListener("click", () => {
      input.value = nameEl.textContent;
      showError("");
      setMode("rename");
      input.focus();
      input.select();
    });
    save.addEventListener("click", commit);
    cancel.addEventListener("click", stopEditing);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        commit();
      } else if (e.key === "Escape") {
        e.preventDefault();
        stopEditing();
      }
    });

    const stopConfirming = () => {
      setMode("view");
      deleteBtn.focus();
    };
    deleteBtn.addEventListener("click", () => {
      question.textContent = `Delete “${nameEl.textContent}” and its history?`;
      yes.setAttribute("aria-label", `Delete ${nameEl.textContent} for good`);
      setMode("delete");
      keep.focus();
    });
    keep.addEventListener("click", stopConfirming);
    confirm.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      stopConfirming();
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await api.remove(s.id);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) {
          yes.disabled = false;
          this.runsNote(`Could not delete “${nameEl.textContent}”: ${err.message}`);
          return;
        }
      }
      const rows = [...list.querySelectorAll(".run-item")];
      const k = rows.indexOf(item);
      const neighbour = rows[k + 1] || rows[k - 1] || null;
      item.remove();
      this.compareIds = this.compareIds.filter((id) => id !== s.id);
      this.syncCompareButton();
      this.runsNote(`Deleted “${nameEl.textContent}”.`);
      if (neighbour) neighbour.querySelector(".run-open").focus();
      else {
        list.append(el("li", { class: "hint", text: "No runs yet." }));
        document.getElementById("refresh-runs").focus();
      }
      if (this.handlers.onRunDeleted) await this.handlers.onRunDeleted(s.id);
      await this.refreshRuns(); // the page may have built a fresh run in its place
    });

    const main = el("div", { class: "run-main" }, [el("div", { class: "run-top" }, [open, edit, pill]), actions, confirm]);
    item.append(tick, main);
    return item;
  }

  runsNote(text) {
    const n = document.getElementById("runs-note");
    n.textContent = text;
    clearTimeout(this.runsNoteTimer);
    this.runsNoteTimer = setTimeout(() => (n.textContent = ""), 6000);
  }

  openCompare() {
    if (this.compareIds.length < 2) return;
    this.handlers.onCompareIds(this.compareIds.slice());
  }

  closeCompare() {
    if (this.handlers.onCloseCompare) this.handlers.onCloseCompare();
  }
}
