// The Runs tab: every stored run with its status; open, rename or delete one in place, or tick two
// or three to compare them side by side (the compare view itself is compare_view.js).

import { ApiError, api } from "./api.js";
import { el, fmt, fmtInt, statusText } from "./util.js";

export class RunList {
  /**
   * @param {object} store  the page store (the open session)
   * @param {import("./config_schema.js").ConfigSchema} schema  (the longest name the server takes)
   * @param {{onOpenRun: Function, onCompareIds: Function, onRunDeleted?: Function, onRunRenamed?: Function}} handlers
   */
  constructor(store, schema, handlers) {
    this.store = store;
    this.schema = schema;
    this.handlers = handlers;
    this.compareIds = [];
    document.getElementById("refresh-runs").addEventListener("click", () => this.refresh());
    document.getElementById("compare-runs").addEventListener("click", () => this.openCompare());
  }

  async refresh() {
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
    list.replaceChildren(...sessions.map((s) => this.item(s)));
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
  item(s) {
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
      el("span", { class: "run-meta", text: `${cfg.kind === "external" ? `${cfg.framework || "script"} · ${cfg.model || "model"}` : `${cfg.dataset ? cfg.dataset.name : "?"} · ${arch}`} · step ${fmtInt(s.step)}${s.metrics && s.metrics.loss !== undefined ? ` · loss ${fmt(s.metrics.loss)}` : ""}` }),
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
    const input = el("input", { type: "text", class: "run-name-input", maxlength: this.schema.nameMaxLength, "aria-label": "New name", "aria-describedby": errId });
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
      if (value.length > this.schema.nameMaxLength) return showError(`A name can have at most ${this.schema.nameMaxLength} characters (this one has ${value.length}).`);
      save.disabled = true;
      try {
        const updated = await api.patch(s.id, { name: value });
        nameEl.textContent = updated.name;
        named();
        if (this.store.session && this.store.session.id === s.id) this.store.setSession(updated);
        if (this.handlers.onRunRenamed) this.handlers.onRunRenamed(updated);
        this.note(`Renamed to “${updated.name}”.`);
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
          this.note(`Could not delete “${nameEl.textContent}”: ${err.message}`);
          return;
        }
      }
      const rows = [...list.querySelectorAll(".run-item")];
      const k = rows.indexOf(item);
      const neighbour = rows[k + 1] || rows[k - 1] || null;
      item.remove();
      this.compareIds = this.compareIds.filter((id) => id !== s.id);
      this.syncCompareButton();
      this.note(`Deleted “${nameEl.textContent}”.`);
      if (neighbour) neighbour.querySelector(".run-open").focus();
      else {
        list.append(el("li", { class: "hint", text: "No runs yet." }));
        document.getElementById("refresh-runs").focus();
      }
      if (this.handlers.onRunDeleted) await this.handlers.onRunDeleted(s.id);
      await this.refresh(); // the page may have built a fresh run in its place
    });

    const main = el("div", { class: "run-main" }, [el("div", { class: "run-top" }, [open, edit, pill]), actions, confirm]);
    item.append(tick, main);
    return item;
  }

  note(text) {
    const n = document.getElementById("runs-note");
    n.textContent = text;
    clearTimeout(this.noteTimer);
    this.noteTimer = setTimeout(() => (n.textContent = ""), 6000);
  }

  openCompare() {
    if (this.compareIds.length < 2) return;
    this.handlers.onCompareIds(this.compareIds.slice());
  }
}
