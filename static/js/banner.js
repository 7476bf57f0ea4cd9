// The banner over the page: a run that diverged (with fixes to try: learning rate / 10, gradient
// clipping, batch norm, each marked with what it does to a lesson's run), stopped early (where
// the best step was) or cannot be saved (the server's words: what failed, which step the data
// directory keeps). A fix changes the set-up, starts again from the initial weights and trains.

import { el, fmtInt, setText } from "./util.js";

const $ = (id) => document.getElementById(id);

export class Banner {
  constructor() {
    this.box = $("banner");
    /** The lesson whose run this page built last, with what each fix does to it: {id, fixes}. */
    this.lessonRun = null;
    $("banner-close").addEventListener("click", () => this.hide());
  }

  /** Call `fix(kind)` when a fix button ("lr", "clip", "bn") is pressed. */
  onFix(fix) {
    for (const kind of ["lr", "clip", "bn"]) $(`fix-${kind}`).addEventListener("click", () => fix(kind));
  }

  show(title, message, kind = "error") {
    $("banner-title").textContent = title;
    $("banner-message").textContent = message;
    this.box.dataset.kind = kind;
    this.box.hidden = false;
  }

  hide() {
    this.box.hidden = true;
  }

  get hidden() {
    return this.box.hidden;
  }

  /** A diverged run (paused by the server at its last good step). */
  showDiverged(s) {
    this.show(`Training diverged (paused at step ${fmtInt(s.step)}).`, s.message || "The loss or the gradients became NaN or infinite; the last good weights are kept.");
    this.markFixes(s.id);
  }

  /** A "diverged" event while the banner is down (its message, or the event's words). */
  showDivergedEvent(message, sessionId) {
    if (!this.box.hidden) return;
    this.show("Training diverged.", message);
    this.markFixes(sessionId);
  }

  /** A run that stopped early: where, the best step, why. */
  showEarlyStop(s, best, event) {
    const detail = event && event.message ? event.message : s.message || "the test loss stopped improving";
    this.show(`Early stop at step ${fmtInt(s.step)}${best !== null && best !== undefined ? ` — best step ${fmtInt(best)}` : ""}.`, `${detail.replace(/\.?\s*$/, ".")} The dashed line on the loss chart marks the best step.`, "info");
  }

  /** The server cannot save the run (a full disk): its message says what it keeps. */
  showSaveError(message) {
    this.show("The run cannot be saved.", message, "storage");
  }

  /** Take down a cannot-save banner once the server saves again. */
  hideSaveError() {
    if (this.box.dataset.kind === "storage") this.hide();
  }

  /** Take down an early-stop note (a diverged banner stays until dismissed or fixed). */
  hideInfo() {
    if (this.box.dataset.kind === "info") this.hide();
  }

  /**
   * Mark the fixes with what they do to the lesson's run (a lesson's `fixes`, which the engine
   * tests run), so a fix that does not help there says so; any other run's banner shows them
   * unmarked.
   */
  markFixes(sessionId) {
    const fixes = this.lessonRun && this.lessonRun.id === sessionId ? this.lessonRun.fixes || {} : {};
    for (const kind of ["lr", "clip", "bn"]) {
      const button = $(`fix-${kind}`);
      const fix = fixes[kind];
      let note = button.querySelector(".fix-note");
      if (!note) {
        note = el("span", { class: "fix-note" });
        button.append(note);
      }
      setText(note, fix ? ` — ${fix.note}` : "");
      if (fix) button.dataset.works = String(!!fix.works);
      else delete button.dataset.works;
    }
  }
}

/**
 * A fix from the divergence banner: change the setup, start again from the initial weights (the
 * diverged weights teach nothing) and train at the current pace, so "Try: ..." really tries it.
 */
export async function applyFix(kind, { controls, schema, runs, transport, banner, store }) {
  const cfg = controls.readConfig();
  if (kind === "lr") cfg.optimizer.learning_rate = Number((cfg.optimizer.learning_rate / 10).toPrecision(3));
  if (kind === "clip") cfg.gradient_clip = { kind: "norm", threshold: 1 }; // what the button says
  if (kind === "bn") {
    const layers = [];
    cfg.layers.forEach((l, i) => {
      layers.push(l);
      const next = cfg.layers[i + 1];
      if (l.type === "dense" && i < cfg.layers.length - 1 && !(next && next.type === "batchnorm")) layers.push(schema.layerDefaults("batchnorm"));
    });
    cfg.layers = layers;
  }
  controls.writeConfig(cfg);
  banner.hide();
  const next = controls.readConfig();
  runs.writeFragment(next);
  if (kind === "bn") {
    runs.rebuildSoon.cancel();
    if (!(await runs.rebuild(next))) return;
  } else {
    if (!(await runs.applyHyper(next))) return;
    if (store.session && store.session.step > 0) await runs.resetRun();
  }
  if (!transport.isRunning()) await transport.startOrPause();
}
