// Editing one weight or bias in place: click it in the network (or press Enter on it), type a
// number, Set. The run pauses, the server takes the new weights, the drawing shows them. Escape
// or ✕ closes the editor and gives focus back to what had it.

import { api } from "./api.js";
import { at } from "./util.js";

const $ = (id) => document.getElementById(id);

export class WeightEditor {
  /** @param {{store: object, view: object, transport: import("./transport.js").Transport}} parts */
  constructor({ store, view, transport }) {
    this.store = store;
    this.view = view;
    this.transport = transport;
    this.editing = null; // {key: "1.W", idx: [i, j]}
    this.opener = null;
    this.pop = $("weight-editor");
    $("we-apply").addEventListener("click", () => this.apply());
    $("we-cancel").addEventListener("click", () => this.close());
    $("we-value").addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.apply();
    });
    this.pop.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      this.close();
    });
  }

  /** Open the editor on the weight or bias `hit` points at, beside the pointer. */
  open(hit, e) {
    const snap = this.store.snapshot;
    if (!snap || !snap.weights) return;
    let key;
    let idx;
    let label;
    if (hit.kind === "edge" && hit.i >= 0 && hit.j >= 0) {
      key = `${hit.layer}.W`;
      idx = [hit.i, hit.j];
      label = `w[${hit.i}→${hit.j}] of L${hit.layer}`;
    } else if (hit.kind === "bias" || (hit.kind === "node" && hit.layer !== null && hit.unit >= 0 && this.view.columnModel()[hit.col].kind === "dense")) {
      key = `${hit.layer}.b`;
      idx = [hit.unit];
      label = `bias of unit ${hit.unit} in L${hit.layer}`;
    } else return;
    const current = idx.length === 2 ? at(snap.weights[key], idx[0], idx[1]) : at(snap.weights[key], idx[0]);
    if (current === null || current === undefined) return;
    this.editing = { key, idx };
    const pop = this.pop;
    if (pop.hidden) this.opener = document.activeElement; // focus goes back there on close
    $("we-label").textContent = label;
    $("we-value").value = String(Number(current.toPrecision(6)));
    $("we-error").hidden = true;
    pop.hidden = false;
    const box = $("center").getBoundingClientRect();
    pop.style.setProperty("left", `${Math.min(box.width - 280, Math.max(4, e.clientX - box.left + 8))}px`);
    pop.style.setProperty("top", `${Math.min(box.height - 90, Math.max(4, e.clientY - box.top + 8))}px`);
    $("we-value").focus();
    $("we-value").select();
  }

  /** Hide the editor and give focus back to what had it (the network, from the keyboard). */
  close() {
    const pop = this.pop;
    const hadFocus = pop.contains(document.activeElement);
    pop.hidden = true;
    this.editing = null;
    const back = this.opener;
    this.opener = null;
    if (hadFocus && back instanceof HTMLElement && back !== document.body && back.isConnected) back.focus();
  }

  async apply() {
    const store = this.store;
    const editing = this.editing;
    if (!editing || !store.session) return;
    const raw = $("we-value").value.trim();
    // Number("") is 0: a blank (or unreadable) field must not set the weight to zero
    const value = raw === "" ? NaN : Number(raw);
    const err = $("we-error");
    if (!Number.isFinite(value)) {
      err.hidden = false;
      err.textContent = raw === "" ? "enter a number: the field is blank" : `must be a finite number, got "${raw}"`;
      $("we-value").setAttribute("aria-invalid", "true");
      $("we-value").focus();
      return;
    }
    $("we-value").removeAttribute("aria-invalid");
    const id = store.session.id;
    try {
      if (this.transport.isRunning()) await this.transport.pause();
      const weights = await api.weights(id);
      const arr = weights[editing.key];
      if (editing.idx.length === 2) arr[editing.idx[0]][editing.idx[1]] = value;
      else arr[editing.idx[0]] = value;
      await api.putWeights(id, weights);
      this.close();
      const snap = await api.snapshot(id).catch(() => null);
      if (snap) {
        store.snapshot = snap;
        store.dirty.snapshot = true;
      }
    } catch (e2) {
      err.hidden = false;
      err.textContent = e2.message;
    }
  }
}
