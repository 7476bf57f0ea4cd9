// Entry point: builds the page's parts, wires them to each other, loads what the server knows
// (the config schema, datasets, presets) and opens the run the link asks for. Each part lives in
// its own module; this one only connects them.

import { initA11y } from "./a11y.js";
import { api } from "./api.js";
import { Banner, applyFix } from "./banner.js";
import { BatchNormPanel } from "./bn_panel.js";
import { DataView } from "./boundary.js";
import { ChartPanel } from "./chart_panel.js";
import { Histograms, RunCharts } from "./charts.js";
import { CompareView } from "./compare_view.js";
import { STARTING_SETUP, configSchema } from "./config_schema.js";
import { readFragment } from "./config_share.js";
import { Controls } from "./controls.js";
import { ExplainLauncher } from "./explain_launcher.js";
import { Explainer } from "./explainer.js";
import { ExternalMode } from "./external_mode.js";
import { ExternalView } from "./external_view.js";
import { startFrameLoop } from "./frame_loop.js";
import { ServerHealth } from "./health.js";
import { LearnPanel } from "./learn.js";
import { LessonRunner } from "./lesson_runner.js";
import { LivePulse } from "./live_pulse.js";
import { NetworkView } from "./network_view.js";
import { bindPageKeys } from "./page_keys.js";
import { Predictions } from "./predictions.js";
import { RunController } from "./run_controller.js";
import { StatusLine } from "./status_line.js";
import { store } from "./store.js";
import { Stream } from "./stream.js";
import { NetTooltip } from "./tooltip.js";
import { Transport } from "./transport.js";
import { WeightEditor } from "./weight_editor.js";

const $ = (id) => document.getElementById(id);
const SCHEMA_RETRY_MS = 2000;
const schema = configSchema;

// ------------------------------------------------------------------------------ the parts

const stream = new Stream(store);
const banner = new Banner();
const view = new NetworkView($("network"), {
  onHover: (hit, e) => tooltip.show(hit, e),
  onClick: (hit, e) => {
    if (!explainer.active) weightEditor.open(hit, e);
    else if (hit.kind === "node" || hit.kind === "bias") explainer.pickNode(hit.col, hit.unit);
  },
});
const pulse = new LivePulse(view);
const extView = new ExternalView($("ext-network"));
const explainer = new Explainer(view, { api, store, onState: (active) => launcher.stateChanged(active) });
const dataView = new DataView($("data-view"), { onPick: (s) => launcher.explainSample(s), onDraw: (p) => controls.drawPoint(p) });
const charts = new RunCharts({ lossHost: $("loss-chart"), gradHost: $("grad-chart"), ratioHost: $("ratio-chart"), accHost: $("acc-chart") });
const histograms = new Histograms($("hist-view"), $("hist-layer"));
const compareView = new CompareView({ api });
const learn = new LearnPanel({
  onOpen: (p) => lessons.open(p),
  onTry: (p) => runs.loadSetup(p.try.config, `${p.title} (try)`),
  onCompare: (p) => lessons.openCompare(p),
  onExplain: () => lessons.explain(),
});
const controls = new Controls(store, schema, {
  onStructure: (cfg) => runs.structureChanged(cfg),
  onHyper: (cfg) => runs.hyperChanged(cfg),
  onPreset: (preset) => (preset.kind === "lesson" ? learn.open(preset) : runs.loadSetup(preset.config, preset.title || preset.id)),
  onOpenRun: (id) => runs.openRunById(id),
  onPresets: (presets) => learn.setPresets(presets),
  onCompareIds: (ids) => compareView.openIds(ids, { pace: transport.currentPace() }),
  onRunDeleted: (id) => runs.runDeleted(id),
  onRunRenamed: (s) => runs.scratch.delete(s.id), // a named run is kept when the page builds another
});
const chartPanel = new ChartPanel({ store, charts, histograms, datasetInfo: (name) => controls.datasetInfo(name) });
const bnPanel = new BatchNormPanel(store);
const health = new ServerHealth({ store, note: (text) => status.note(text) });
const status = new StatusLine({ store, view, bnPanel, banner, health, charts: chartPanel });
const note = (text, kind) => status.note(text, kind);
const predictions = new Predictions({ store, dataView });
const external = new ExternalMode({ store, extView });
const runs = new RunController({ store, stream, schema, controls, view, dataView, explainer, pulse, bnPanel, banner, predictions, note, external });
const transport = new Transport({ store, runs, controls, explainer, note });
const launcher = new ExplainLauncher({ store, view, dataView, explainer, pulse, transport, note });
const tooltip = new NetTooltip({ store, view, explainer });
const weightEditor = new WeightEditor({ store, view, transport });
const lessons = new LessonRunner({ learn, compareView, controls, runs, transport, chartPanel, banner, launcher });
banner.onFix((kind) => applyFix(kind, { controls, schema, runs, transport, banner, store }));

window.__bl = { store, view, explainer, pulse, controls, learn, compareView, charts, extView }; // read-only hook for tests and debugging

// ------------------------------------------------------------------------------ switches of the views

function bindViewSwitches() {
  $("pulse-toggle").addEventListener("change", (e) => {
    pulse.enabled = extView.enabled = e.target.checked;
    if (!pulse.enabled) {
      pulse.stop();
      extView.stop();
    }
  });
  $("explain-btn").addEventListener("click", () => (explainer.active ? explainer.close() : launcher.explainButton()));
  $("show-test").addEventListener("change", (e) => {
    dataView.showTest = e.target.checked;
    dataView.dirty = true;
  });
  $("discretize").addEventListener("change", (e) => {
    dataView.discretize = e.target.checked;
    dataView.dirty = true;
  });
}

// ------------------------------------------------------------------------------ start-up

/** The config schema, asked again until the server answers (the form cannot be filled without it). */
async function loadSchema() {
  for (;;) {
    try {
      schema.load(await api.schema());
      return;
    } catch (err) {
      note(`the server's set-up schema could not be read (${err.message}); trying again`);
      await new Promise((ok) => setTimeout(ok, SCHEMA_RETRY_MS));
    }
  }
}

/** Open the run the link names (if its set-up still matches), else build one from its set-up. */
async function openFromLink() {
  const frag = readFragment();
  if (frag.runId) {
    try {
      const s = await api.session(frag.runId);
      if (s.kind === "external") {
        controls.writeConfig(frag.config || STARTING_SETUP); // the form stays ready to build a run here
        await runs.openSession(s, { keepForm: true });
        return;
      }
      if (!frag.config || schema.structuralKey(frag.config) === schema.structuralKey(s.config)) {
        await runs.openSession(s, { keepForm: false });
        if (frag.config) {
          controls.writeConfig(frag.config);
          await runs.applyHyper(controls.readConfig());
        }
        return;
      }
    } catch {
      /* the run is gone: rebuild from the config in the link */
    }
  }
  let cfg = frag.config;
  let name;
  if (!cfg && frag.preset) {
    const p = store.presets.find((x) => x.id === frag.preset);
    if (p) {
      cfg = p.config;
      name = p.title;
      $("preset").value = p.id;
    }
  }
  if (!cfg) {
    const p = store.presets.find((x) => x.id === "xor") || null;
    cfg = p ? p.config : STARTING_SETUP;
    name = p ? p.title : undefined;
    if (p) $("preset").value = p.id;
  }
  controls.writeConfig(cfg);
  await runs.rebuild(controls.readConfig(), { name, force: true });
}

async function init() {
  bindViewSwitches();
  bindPageKeys({ transport, explainer, compareView });
  initA11y();
  startFrameLoop({ store, status, health, view, dataView, histograms, chartPanel, compareView, predictions, pulse, explainer, external, extView });
  await health.start();
  const [, ds, ps] = await Promise.allSettled([loadSchema(), api.datasets(), api.presets()]);
  controls.applySchema();
  if (ds.status === "fulfilled" && ds.value && Array.isArray(ds.value.datasets)) {
    for (const d of ds.value.datasets) store.datasets[d.name] = d;
    controls.fillDatasets(ds.value.datasets);
  }
  await controls.uploads.refresh(); // uploads kept by the server join the Dataset menu
  store.presets = ps.status === "fulfilled" && ps.value && Array.isArray(ps.value.presets) ? ps.value.presets : [];
  controls.fillPresets(store.presets);
  await openFromLink();
  document.body.dataset.ready = "yes";
}

init();
