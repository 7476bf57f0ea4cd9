// The open run: which session the page shows and keeps in step with the form. A change to a
// PATCH-able field is sent to the running session; any other change builds a new session (the
// old one deleted when the page made it and it never trained). Opening a session points every
// view, the stream and the URL at it.

import { ApiError, api } from "./api.js";
import { stableJson } from "./config_schema.js";
import { writeFragment } from "./config_share.js";
import { isExternal } from "./external_mode.js";
import { debounce } from "./util.js";

export class RunController {
  /**
   * @param {object} parts  store, stream, schema, controls, view, dataView, explainer, pulse,
   *   bnPanel, banner, predictions, external (ExternalMode), and note(text) for messages in the
   *   status line
   */
  constructor(parts) {
    Object.assign(this, parts);
    /** structuralKey of the config the open session was created with. */
    this.builtKey = null;
    /** The PATCH document the server holds for the open session. */
    this.serverHyper = null;
    /** Sessions this page created and never trained: deleted when replaced, so the run list stays clean. */
    this.scratch = new Set();
    this.rebuildSoon = debounce((cfg) => this.rebuild(cfg), 350);
  }

  /** The URL fragment follows the form (and the open run). */
  writeFragment(cfg) {
    writeFragment(cfg, this.store.session ? this.store.session.id : null);
  }

  /** The form changed something only a new session can have. */
  structureChanged(cfg) {
    this.writeFragment(cfg);
    this.rebuildSoon(cfg);
  }

  /** The form changed a PATCH-able field. */
  hyperChanged(cfg) {
    this.writeFragment(cfg);
    this.applyHyper(cfg);
  }

  datasetInfo(cfg) {
    return cfg && cfg.dataset ? this.controls.datasetInfo(cfg.dataset.name) : null;
  }

  nameFor(cfg) {
    const dense = (cfg.layers || []).filter((l) => l.type === "dense").map((l) => l.units);
    const info = this.datasetInfo(cfg);
    const inputs = info && info.input_kind === "image" ? "img" : (cfg.features || []).length;
    return `${cfg.dataset.name} ${[inputs, ...dense].join("-")} ${cfg.optimizer.name} lr ${cfg.optimizer.learning_rate}`;
  }

  /** Build a fresh run from a config (a preset, a lesson or its "try" setup). */
  async loadSetup(config, name) {
    this.controls.writeConfig(config);
    const cfg = this.controls.readConfig();
    writeFragment(cfg, null);
    this.rebuildSoon.cancel();
    return this.rebuild(cfg, { name, force: true });
  }

  /** Make the open session match `cfg`: PATCH when only hyperparameters differ, else a new session. */
  async rebuild(cfg, opts = {}) {
    const store = this.store;
    const key = this.schema.structuralKey(cfg);
    if (store.session && key === this.builtKey && !opts.force) {
      await this.applyHyper(cfg);
      return store.session;
    }
    let created;
    try {
      created = await api.create(cfg, opts.name || this.nameFor(cfg));
    } catch (err) {
      this.showApiError(err);
      return null;
    }
    const old = store.session;
    if (old && old.status === "running") api.stop(old.id).catch(() => {});
    if (old && this.scratch.has(old.id) && old.step === 0) api.remove(old.id).catch(() => {});
    this.scratch.add(created.id);
    await this.openSession(created, { keepForm: true });
    return created;
  }

  showApiError(err) {
    if (err instanceof ApiError) this.controls.showErrors(err.errors);
    else this.controls.showErrors([{ field: "", message: String(err) }]);
  }

  /** PATCH the hyperparameters that differ from what the server holds. */
  async applyHyper(cfg) {
    const s = this.store.session;
    if (!s) return this.rebuildSoon(cfg);
    if (this.schema.structuralKey(cfg) !== this.builtKey) return this.rebuildSoon(cfg);
    const want = this.schema.hyperOf(cfg);
    const changes = {};
    for (const [k, v] of Object.entries(want)) if (stableJson(v) !== stableJson(this.serverHyper ? this.serverHyper[k] : undefined)) changes[k] = v;
    if (!Object.keys(changes).length) return s;
    try {
      const updated = await api.patch(s.id, changes);
      this.store.setSession(updated);
      this.serverHyper = this.schema.hyperOf(updated.config || cfg);
      this.controls.clearErrors();
      return updated;
    } catch (err) {
      if (err instanceof ApiError) {
        this.controls.showErrors(err.errors.map((e) => ({ field: this.schema.fieldOfPatch(e.field), message: e.message })));
      } else this.showApiError(err);
      return null;
    }
  }

  /** The open session, made to match the form; null when the form cannot be applied (its errors show). */
  async ensureSession() {
    const cfg = this.controls.readConfig();
    if (!this.store.session || this.schema.structuralKey(cfg) !== this.builtKey) {
      this.rebuildSoon.cancel();
      return this.rebuild(cfg);
    }
    const applied = await this.applyHyper(cfg);
    return applied ? this.store.session : null;
  }

  /** The Runs list deleted a run; if it was the open one, build a fresh run from the form. */
  async runDeleted(id) {
    this.scratch.delete(id);
    const store = this.store;
    if (!store.session || store.session.id !== id) return;
    this.stream.close();
    store.session = null;
    store.dirty.session = true;
    this.rebuildSoon.cancel();
    await this.rebuild(this.controls.readConfig(), { force: true });
  }

  async openRunById(id) {
    try {
      const s = await api.session(id);
      this.controls.showTab("build"); // now, not after the snapshot: a tab picked meanwhile stays
      await this.openSession(s, { keepForm: false });
    } catch (err) {
      this.showApiError(err);
    }
  }

  /** Show a session: architecture, stream, data, snapshot, URL. */
  async openSession(s, { keepForm }) {
    const store = this.store;
    if (this.explainer.active) this.explainer.close();
    if (isExternal(s)) return this.openExternal(s);
    if (this.external.active) this.external.setActive(false);
    store.openRun(s);
    const cfg = s.config;
    this.serverHyper = this.schema.hyperOf(cfg);
    if (!keepForm) this.controls.writeConfig(cfg);
    const formCfg = this.controls.readConfig();
    // the form's own reading of this run: later edits are compared against it
    this.builtKey = this.schema.structuralKey(formCfg);
    writeFragment(formCfg, s.id);
    const info = this.datasetInfo(cfg);
    this.view.setArchitecture(this.schema.withDefaults(cfg), info);
    this.dataView.setRun(cfg, info);
    this.banner.hide();
    this.bnPanel.setup(cfg);
    const drawing = this.dataView.drawing;
    document.getElementById("draw-hint").hidden = !drawing;
    document.getElementById("data-card").classList.toggle("drawing", drawing);
    this.pulse.stop();
    this.stream.open(s.id);
    this.predictions.reset();
    const id = s.id;
    const [snap, data] = await Promise.allSettled([api.snapshot(id), api.data(id, info && info.input_kind === "image" ? 64 : 1000)]);
    if (!store.session || store.session.id !== id) return;
    if (snap.status === "fulfilled" && snap.value && !store.snapshot) {
      store.snapshot = snap.value;
      store.dirty.snapshot = true;
    }
    if (data.status === "fulfilled") {
      store.data = data.value;
      store.dirty.data = true;
    }
  }

  /**
   * Show a run watched from its own script: its topology, charts and stream, nothing an engine
   * route would have to answer (no data, no snapshot: its histograms come with the stream). The
   * form keeps what it holds; any change to it builds a new run trained here.
   */
  openExternal(s) {
    const store = this.store;
    store.openRun(s);
    this.serverHyper = null;
    this.builtKey = null; // the form describes no part of this run: a form change builds a new one
    writeFragment(this.controls.readConfig(), s.id);
    this.banner.hide();
    this.bnPanel.setup(null);
    this.pulse.stop();
    this.external.setActive(true, s);
    this.stream.open(s.id);
    this.predictions.reset();
  }

  /** Back to step 0 with the seed's initial weights (same session, same form). */
  async resetRun() {
    if (this.explainer.active) this.explainer.close();
    const store = this.store;
    const s = store.session;
    if (!s) return;
    try {
      const updated = await api.reset(s.id);
      store.openRun(updated);
      store.data = this.dataView.data;
      this.stream.open(updated.id);
      const snap = await api.snapshot(updated.id).catch(() => null);
      if (snap && !store.snapshot) {
        store.snapshot = snap;
        store.dirty.snapshot = true;
      }
      this.banner.hide();
    } catch (err) {
      this.note(err.message);
    }
  }
}
