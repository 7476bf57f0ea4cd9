// The Learn tab: the guided experiments in order; opening one shows its text (explanation,
// typeset formulas, what to watch, what to try) while the run controller builds its run, and its
// side-by-side runs open in the compare view (compare_view.js).

import { formulaBlock } from "./formula.js";
import { el } from "./util.js";

/** The Learn tab: lesson list and the open lesson's text. */
export class LearnPanel {
  /**
   * @param {{onOpen: Function, onTry: Function, onCompare: Function, onExplain: Function}} handlers
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.listBox = document.getElementById("learn-list");
    this.detail = document.getElementById("learn-detail");
    this.intro = document.getElementById("learn-intro");
    this.presets = [];
    this.current = null;
  }

  setPresets(presets) {
    this.presets = presets || [];
    this.lessons = this.presets.filter((p) => p.kind === "lesson").sort((a, b) => (a.lesson ?? 0) - (b.lesson ?? 0));
    this.basics = this.presets.filter((p) => p.kind !== "lesson");
    this.renderList();
  }

  renderList() {
    const box = this.listBox;
    if (!this.presets.length) {
      box.replaceChildren(el("p", { class: "hint", text: "No guided experiments from the server yet." }));
      return;
    }
    const row = (p) => {
      const tags = [];
      if (p.compare && p.compare.length) tags.push(el("span", { class: "learn-tag", text: `compare ${p.compare.length}` }));
      if (p.mode === "explain") tags.push(el("span", { class: "learn-tag", text: "step by step" }));
      if (p.mode === "draw") tags.push(el("span", { class: "learn-tag", text: "draw" }));
      const b = el("button", { type: "button", class: "learn-item", "data-preset": p.id, "data-kind": p.kind || "", "data-lesson": p.lesson ?? "" }, [
        p.lesson ? el("span", { class: "lesson-no", text: String(p.lesson) }) : el("span", { class: "lesson-no basic", text: "•" }),
        el("span", { class: "learn-title", text: p.title || p.id }),
        ...tags,
      ]);
      b.addEventListener("click", () => this.open(p));
      return b;
    };
    const parts = [];
    if (this.lessons.length) parts.push(el("div", { class: "learn-group", text: "Guided experiments" }), ...this.lessons.map(row));
    if (this.basics.length) parts.push(el("div", { class: "learn-group", text: this.lessons.length ? "Starting points" : "Presets" }), ...this.basics.map(row));
    box.replaceChildren(...parts);
    this.markCurrent();
  }

  markCurrent() {
    for (const b of this.listBox.querySelectorAll(".learn-item")) b.classList.toggle("current", !!this.current && b.dataset.preset === this.current.id);
  }

  /** Open a lesson: show its text and ask main to build its run. */
  open(p) {
    this.current = p;
    this.showDetail(p);
    this.markCurrent();
    this.handlers.onOpen(p);
  }

  backToList() {
    this.detail.hidden = true;
    this.listBox.hidden = false;
    this.intro.hidden = false;
  }

  showDetail(p) {
    const d = this.detail;
    const idx = this.lessons.indexOf(p);
    const prev = idx > 0 ? this.lessons[idx - 1] : null;
    const next = idx >= 0 && idx < this.lessons.length - 1 ? this.lessons[idx + 1] : null;
    const nav = el("div", { class: "ld-nav" });
    const back = el("button", { type: "button", class: "small ghost", id: "learn-back", text: "← all lessons" });
    back.addEventListener("click", () => this.backToList());
    nav.append(back);
    const arrows = el("span", { class: "ld-arrows" });
    for (const [target, label, title] of [[prev, "◀", "previous lesson"], [next, "▶", "next lesson"]]) {
      const b = el("button", { type: "button", class: "small", text: label, title: target ? `${title}: ${target.title}` : title });
      b.disabled = !target;
      if (target) b.addEventListener("click", () => this.open(target));
      arrows.append(b);
    }
    nav.append(arrows);
    const head = el("div", { class: "ld-head" }, [
      p.lesson ? el("span", { class: "lesson-no big", text: String(p.lesson) }) : null,
      el("h2", { class: "ld-title", text: p.title || p.id }),
    ]);
    const parts = [nav, head];
    if (p.explanation) parts.push(el("p", { class: "ld-text", text: p.explanation }));
    if (p.formulas && p.formulas.length) {
      parts.push(el("div", { class: "ld-formulas", id: "learn-formulas" }, p.formulas.map((f) => formulaBlock(f))));
    }
    if (p.watch) {
      parts.push(el("div", { class: "ld-box watch", id: "learn-watch" }, [el("div", { class: "ld-box-title", text: "What to watch" }), el("p", { text: p.watch })]));
    }
    const actions = el("div", { class: "ld-actions" });
    if (p.mode === "explain") {
      const b = el("button", { type: "button", class: "small accent", id: "learn-explain", text: "Open the step explainer" });
      b.addEventListener("click", () => this.handlers.onExplain(p));
      actions.append(b);
    }
    if (p.compare && p.compare.length) {
      const b = el("button", { type: "button", class: "small accent", id: "learn-compare", text: `Compare ${p.compare.length} runs side by side` });
      b.addEventListener("click", () => this.handlers.onCompare(p));
      actions.append(b);
      parts.push(el("p", { class: "hint", text: `Runs: ${p.compare.map((c) => c.label).join(" · ")}` }));
    }
    if (p.mode === "draw") {
      parts.push(el("div", { class: "ld-box draw", id: "learn-draw" }, [
        el("div", { class: "ld-box-title", text: "Drawing mode" }),
        el("p", { text: "In the data view on the right: click adds a blue point, shift-click an orange one, alt-click removes the nearest. The run rebuilds with your points; press Start to train on them." }),
      ]));
    }
    const reload = el("button", { type: "button", class: "small", id: "learn-reload", text: "Reload this setup" });
    reload.addEventListener("click", () => this.handlers.onOpen(p));
    actions.append(reload);
    parts.push(actions);
    if (p.try && (p.try.change || p.try.expect)) {
      const tryBox = el("div", { class: "ld-box try", id: "learn-try" }, [
        el("div", { class: "ld-box-title", text: "Try this" }),
        p.try.change ? el("p", { text: p.try.change }) : null,
        p.try.expect ? el("p", { class: "expect" }, [el("b", { text: "Expect: " }), p.try.expect]) : null,
      ]);
      if (p.try.config) {
        const b = el("button", { type: "button", class: "small accent", id: "learn-try-btn", text: "Load the “try” setup" });
        b.addEventListener("click", () => this.handlers.onTry(p));
        tryBox.append(b);
      }
      parts.push(tryBox);
    }
    d.replaceChildren(...parts);
    d.dataset.lesson = p.id;
    d.hidden = false;
    this.listBox.hidden = true;
    this.intro.hidden = true;
    d.scrollTop = 0;
  }
}

