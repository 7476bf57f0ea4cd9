// A guided experiment opened from the Learn tab: its run at its pace and step axis, the banner's
// fixes marked for it, then what its text promises (the step explainer, or its runs side by side).

export class LessonRunner {
  /** @param {{learn: object, compareView: object, controls: object, runs: object, transport: object, chartPanel: object, banner: object, launcher: object}} parts */
  constructor(parts) {
    Object.assign(this, parts);
  }

  /** Open a lesson: its run at its pace, then its explainer or its compare view. */
  async open(p) {
    if (this.compareView.open) await this.compareView.close();
    const presetSelect = this.controls.presetSelect;
    if ([...presetSelect.options].some((o) => o.value === p.id)) presetSelect.value = p.id;
    if (p.pace) this.transport.setSpeed(p.pace);
    this.chartPanel.setStepLog(!!p.log_steps);
    const s = await this.runs.loadSetup(p.config, p.lesson ? `${p.lesson}. ${p.title}` : p.title || p.id);
    this.banner.lessonRun = s && p.fixes ? { id: s.id, fixes: p.fixes } : null;
    if (!s || this.learn.current !== p) return;
    if (p.mode === "explain") await this.launcher.explainButton(); // "how a step works" opens the explainer
    if (p.compare && p.compare.length) await this.openCompare(p);
  }

  /** The side-by-side runs of a lesson: built now, trained when the user presses Start all. */
  async openCompare(p) {
    if (this.transport.isRunning()) await this.transport.pause();
    await this.compareView.openConfigs(p.compare, {
      title: `${p.lesson ? `${p.lesson}. ` : ""}${p.title} — side by side`,
      watch: p.watch ? `Watch: ${p.watch}` : "",
      prefix: p.title,
      pace: p.pace || this.transport.currentPace(),
      logSteps: !!p.log_steps,
    });
  }

  /** The lesson's "Explain" button: the explainer over the main view (the compare view closes). */
  async explain() {
    if (this.compareView.open) await this.compareView.close();
    this.launcher.explainButton();
  }
}
