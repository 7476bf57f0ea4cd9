// The Build tab: the form <-> the run's config document. Every input carries the config path it
// sets in data-field (e.g. "layers[2].units"), so a 422 error lands next to its field. Defaults,
// bounds, choices and which fields change a live run come from the server's schema
// (config_schema.js). The Runs list, sharing and uploads live in their own modules; the Learn tab
// and the compare view in learn.js and compare_view.js.

import { getPath, setPath } from "./config_schema.js";
import { shareBindings } from "./config_share.js";
import { RunList } from "./run_list.js";
import { uploadData } from "./upload.js";
import { UploadList } from "./upload_list.js";
import { el, featureLabel, fmt } from "./util.js";

/** Sizes a new layer starts with where the config has no default (the server requires them). */
const NEW_LAYER_SIZES = { dense: { units: 4 }, conv2d: { filters: 4 } };
/** Layer fields the row shows per type, with their titles. */
const LAYER_FIELDS = {
  dense: [["units", "units", "int"], "activation"],
  conv2d: [["filters", "filters", "int"], ["kernel_size", "kernel size", "int"], ["stride", "stride", "int"], "padding", "activation"],
  maxpool2d: [["size", "window size", "int"]],
  avgpool2d: [["size", "window size", "int"]],
  batchnorm: [["momentum", "running-stat momentum", "float"]],
  dropout: [["rate", "drop probability", "float"]],
};

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

/** min / max attributes from the schema (none are typed in the template). */
function setBounds(input, bounds) {
  for (const k of ["min", "max"]) {
    if (bounds[k] === undefined) input.removeAttribute(k);
    else input.setAttribute(k, String(bounds[k]));
  }
}

/** The left panel's set-up form. */
export class Controls {
  /**
   * @param {object} store  the page store (datasets, presets, the open session)
   * @param {import("./config_schema.js").ConfigSchema} schema
   * @param {{onStructure: Function, onHyper: Function, onPreset: Function, onOpenRun: Function, onPresets?: Function, onCompareIds: Function, onRunDeleted?: Function, onRunRenamed?: Function}} handlers
   */
  constructor(store, schema, handlers) {
    this.store = store;
    this.schema = schema;
    this.handlers = handlers;
    this.form = document.getElementById("config-form");
    this.layersBox = document.getElementById("layers");
    this.featuresBox = document.getElementById("features");
    this.datasetSelect = document.getElementById("f-dataset");
    this.presetSelect = document.getElementById("preset");
    this.layers = [];
    this.features = ["x1", "x2"];
    this.runList = new RunList(store, schema, handlers);
    this.bind();
  }

  bind() {
    this.form.addEventListener("submit", (e) => e.preventDefault());
    this.form.addEventListener("input", (e) => this.onFormEvent(e, false));
    this.form.addEventListener("change", (e) => this.onFormEvent(e, true));
    document.getElementById("add-layer").addEventListener("click", () => {
      const at = Math.max(0, this.layers.length - 1);
      this.layers.splice(at, 0, this.newLayer("dense"));
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
    this.uploads = new UploadList(this); // the uploads the server keeps, listed and deletable
    document.getElementById("upload-file").addEventListener("change", (e) => uploadData(this, e.target));
    document.getElementById("upload-btn").addEventListener("click", () => document.getElementById("upload-file").click());
    shareBindings(this);
    for (const tab of document.querySelectorAll(".tabs .tab")) {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tab));
    }
  }

  /**
   * Take bounds and live-changeable fields from the schema (once it is loaded): min / max of
   * every number and slider, and data-live (the PATCH field) with the row's "live" mark on the
   * fields a running session takes without a rebuild.
   */
  applySchema() {
    for (const input of this.form.querySelectorAll("[data-field][data-type]")) {
      const field = input.dataset.field;
      if (field.startsWith("layers[")) continue;
      const node = this.schema.node(field);
      if (node && (input.type === "number" || input.type === "range")) setBounds(input, this.schema.inputBounds(node, input.getAttribute("step")));
      const hot = this.schema.hotFieldOf(field);
      if (!hot) continue;
      input.dataset.live = hot;
      const row = input.closest(".row");
      if (row) row.classList.add("live");
    }
  }

  showTab(name) {
    for (const t of document.querySelectorAll(".tabs .tab")) {
      t.classList.toggle("active", t.dataset.tab === name);
      t.setAttribute("aria-selected", t.dataset.tab === name ? "true" : "false");
    }
    for (const b of document.querySelectorAll("[data-tab-body]")) b.hidden = b.dataset.tabBody !== name;
    if (name === "runs") this.runList.refresh();
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
      this.layers[i] = this.newLayer(t.value);
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

  /** Add (or, with remove, take away the nearest) point of the "points" dataset; the run rebuilds. */
  drawPoint({ x1, x2, label, remove }) {
    const extra = this.extraDataset || (this.extraDataset = {});
    const points = Array.isArray(extra.points) ? extra.points.slice() : [];
    if (remove) {
      let best = -1;
      let bestD = Infinity;
      points.forEach((p, i) => {
        const d = (p[0] - x1) ** 2 + (p[1] - x2) ** 2;
        if (d < bestD) {
          bestD = d;
          best = i;
        }
      });
      if (best >= 0 && bestD < 1) points.splice(best, 1);
    } else if (points.length < 5000) {
      points.push([Number(x1.toFixed(3)), Number(x2.toFixed(3)), label]);
    }
    extra.points = points;
    this.handlers.onStructure(this.readConfig());
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

  /** The GET /api/datasets entry of a dataset (or of an upload made on this page), or null. */
  datasetInfo(name) {
    return this.store.datasets[name] || null;
  }

  // ---------------------------------------------------------------- layers and features

  /** A layer of `type` as a new row starts: the server's defaults plus a size where none is given. */
  newLayer(type) {
    return { ...this.schema.layerDefaults(type), ...(NEW_LAYER_SIZES[type] || {}) };
  }

  renderLayers() {
    const n = this.layers.length;
    const types = this.schema.layerTypes();
    this.layersBox.replaceChildren(
      ...this.layers.map((layer, i) => {
        const p = `layers[${i}]`;
        const row = el("div", { class: "layer-row", "data-index": i, "data-field": p });
        const who = i === n - 1 ? "output layer" : `layer ${i}`;
        const typeSel = el("select", { "data-field": `${p}.type`, "data-type": "str", title: "layer type", "aria-label": `${who} type` }, types.map((t) => el("option", { value: t, text: t })));
        typeSel.value = layer.type;
        const tag = el("span", { class: "layer-idx", text: i === n - 1 ? "out" : String(i) });
        const fields = el("span", { class: "layer-fields" });
        const defaults = this.schema.layerDefaults(layer.type);
        const num = ([key, title, type]) => {
          const step = type === "int" ? 1 : "any";
          const input = el("input", { type: "number", "data-field": `${p}.${key}`, "data-type": type, title, placeholder: title, "aria-label": `${who} ${title}`, step, class: "n" });
          setBounds(input, this.schema.inputBounds(this.schema.node(`${p}.${key}`, layer.type), step));
          input.value = layer[key] ?? "";
          return input;
        };
        const choice = (key) => {
          const s = el("select", { "data-field": `${p}.${key}`, "data-type": "str", title: key, "aria-label": `${who} ${key}` }, this.schema.choices(`${p}.${key}`, layer.type).map((a) => el("option", { value: a, text: a })));
          s.value = layer[key] || defaults[key];
          return s;
        };
        for (const f of LAYER_FIELDS[layer.type] || []) fields.append(typeof f === "string" ? choice(f) : num(f));
        if (layer.type === "conv2d") fields.classList.add("wide");
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
    const oneD = kind === "1d";
    // 1-D data has only x1: the features that do not use x2
    const list = this.schema.choices("features").filter((f) => !oneD || !f.includes("x2"));
    const allowed = new Set(list);
    this.features = this.features.filter((f) => allowed.has(f));
    if (!this.features.length) this.features = [list[0]];
    this.featuresBox.replaceChildren(
      ...list.map((f) => {
        const box = el("input", { type: "checkbox", "data-feature": f });
        box.checked = this.features.includes(f);
        return el("label", { class: "feature", title: f }, [box, el("span", { text: featureLabel(f, oneD) })]);
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
    doc.features = info && info.input_kind === "image" ? ["x1", "x2"] : this.features.slice();
    if (info && info.source === "upload") {
      // An upload's columns are its inputs: features only when chosen beyond the plain columns.
      const plain = info.input_kind === "2d" ? "x1,x2" : "x1";
      if (info.input_kind === "table" || doc.features.join() === plain) delete doc.features;
    }
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

  /** The defaults of an optional part of the config ("gradient_clip", "early_stopping"). */
  optionalDefaults(path) {
    return this.schema.defaultOf(this.schema.objectOf(this.schema.node(path)));
  }

  /** Fill the form from a config document. */
  writeConfig(cfg) {
    const c = this.schema.withDefaults(cfg);
    this.extraDataset = {};
    if (c.dataset.points) this.extraDataset.points = c.dataset.points;
    if (c.dataset.target) this.extraDataset.target = c.dataset.target;
    if (!this.datasetInfo(c.dataset.name) && ![...this.datasetSelect.options].some((o) => o.value === c.dataset.name)) {
      this.datasetSelect.append(el("option", { value: c.dataset.name, text: c.dataset.name }));
    }
    // the form shows switched-off parts with their defaults, ready to switch on
    const flatDoc = {
      ...c,
      gradient_clip: c.gradient_clip ? c.gradient_clip : { ...this.optionalDefaults("gradient_clip"), kind: "off" },
      early_stopping: { ...this.optionalDefaults("early_stopping"), ...(c.early_stopping || {}), enabled: !!c.early_stopping },
    };
    for (const input of this.form.querySelectorAll("[data-field][data-type]")) {
      const f = input.dataset.field;
      if (f.startsWith("layers[")) continue;
      const v = getPath(flatDoc, f);
      if (v !== undefined) writeInput(input, v);
    }
    this.layers = c.layers.map((l) => ({ ...this.newLayer(l.type), ...l }));
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
}
