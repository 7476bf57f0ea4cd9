// The chart cards on the right: the run's charts drawn from the store (at most ~10 times a second,
// from the frame loop), their log-scale switches, the Update ratio / Accuracy / Histograms tabs,
// and the Accuracy tab hidden for a regression run.

const $ = (id) => document.getElementById(id);
const CHART_INTERVAL_MS = 100;

export class ChartPanel {
  /**
   * @param {{store: object, charts: import("./charts.js").RunCharts, histograms: import("./charts.js").Histograms, datasetInfo: Function}} parts
   *   datasetInfo(name): the dataset's entry (its task), or null
   */
  constructor({ store, charts, histograms, datasetInfo }) {
    this.store = store;
    this.charts = charts;
    this.histograms = histograms;
    this.datasetInfo = datasetInfo;
    this.lastDraw = 0;
    $("step-log").addEventListener("change", (e) => charts.setLogSteps(e.target.checked));
    $("loss-log").addEventListener("change", (e) => charts.loss.setLog(e.target.checked));
    $("grad-log").addEventListener("change", (e) => {
      charts.grad.setLog(e.target.checked);
      charts.ratio.setLog(e.target.checked);
    });
    for (const tab of document.querySelectorAll("[data-chart-tab]")) {
      tab.addEventListener("click", () => {
        for (const t of document.querySelectorAll("[data-chart-tab]")) t.classList.toggle("active", t === tab);
        for (const b of document.querySelectorAll("[data-chart-body]")) b.hidden = b.dataset.chartBody !== tab.dataset.chartTab;
        $("hist-layer").hidden = tab.dataset.chartTab !== "hist";
        if (tab.dataset.chartTab === "hist") histograms.draw();
        this.draw();
      });
    }
  }

  /** Redraw the charts from the store's history. */
  draw() {
    const s = this.store;
    this.charts.update(s.history, s.config, { clips: s.clips, bestStep: s.bestStep, earlyStop: s.earlyStop });
  }

  /** Called every animation frame: a history that changed is drawn at most every CHART_INTERVAL_MS. */
  frame(now) {
    if (!this.store.dirty.history || now - this.lastDraw < CHART_INTERVAL_MS) return;
    this.store.dirty.history = false;
    this.lastDraw = now;
    this.draw();
  }

  /** The log-scaled step axis of the run charts (a lesson turns it on when its point is early). */
  setStepLog(on) {
    $("step-log").checked = on;
    this.charts.setLogSteps(on);
  }

  /** A regression run has no accuracy: its tab hides (and the Update ratio tab takes over). */
  syncAccuracyTab(config) {
    const info = config && config.dataset ? this.datasetInfo(config.dataset.name) : null;
    const accTab = document.querySelector("[data-chart-tab='acc']");
    const regression = !!(info && info.task === "regression");
    if (accTab.hidden !== regression) {
      accTab.hidden = regression;
      if (regression && accTab.classList.contains("active")) document.querySelector("[data-chart-tab='ratio']").click();
    }
  }
}
