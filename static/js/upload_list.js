// The uploads the server keeps (GET /api/datasets/uploads): each one offered in the Dataset menu,
// listed under "Your data" with its rows, columns, task and stored size, and deletable. The server
// refuses to delete an upload a run trains on (409); the page says which runs, in plain words.

import { api } from "./api.js";
import { el, fmtInt } from "./util.js";

/** A GET /api/datasets/uploads entry as the page's dataset catalogue entry (like the built-ins). */
export function datasetEntry(up) {
  const n = up.columns.length;
  const task = up.task === "regression" ? "regression" : up.classes === 2 ? "binary" : "multiclass";
  return {
    name: up.name,
    title: `Your data: ${up.filename}`,
    task,
    input_kind: n === 2 ? "2d" : n === 1 ? "1d" : "table",
    num_classes: up.classes || 1,
    source: "upload",
    description: `${fmtInt(up.rows)} rows, ${n} input column${n === 1 ? "" : "s"} (${up.columns.join(", ")}), ${describeTask(up)}`,
  };
}

function describeTask(up) {
  if (up.task === "regression") return "a number to predict (regression)";
  return up.classes === 2 ? "two classes" : `${up.classes} classes`;
}

/** 1536 -> "1.5 KB": the stored size, as people read file sizes. */
export function sizeText(bytes) {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

/** The Delete refusal of an upload in the page's words (the server's detail names the runs). */
export function plainDeleteError(err, filename) {
  if (err && err.status === 409) {
    const message = err.errors && err.errors[0] ? err.errors[0].message : "";
    const ids = (message.match(/session\(s\): ([^;]+);/) || [])[1];
    const runs = ids ? ids.split(", ") : [];
    const which = runs.length ? ` (${runs.length === 1 ? "run" : "runs"} ${runs.join(", ")})` : "";
    return `${filename} is used by a run${which}; delete ${runs.length === 1 ? "that run" : "those runs"} first (Runs tab).`;
  }
  if (err && err.status === 404) return `${filename} was already deleted.`;
  return `${filename} could not be deleted: ${err && err.message ? err.message : err}`;
}

/** The list of stored uploads in the Data section, kept in step with the Dataset menu. */
export class UploadList {
  constructor(controls) {
    this.controls = controls;
    this.box = document.getElementById("upload-list");
    this.error = document.getElementById("upload-error");
    this.entries = [];
  }

  /** Load the server's uploads and show them (on start and after an upload or a delete). */
  async refresh() {
    let answer;
    try {
      answer = await api.uploads();
    } catch {
      return; // the header says when the server cannot be reached
    }
    this.show(answer);
  }

  /** Offer every upload in the Dataset menu and list it with a Delete button. */
  show(answer) {
    this.entries = answer.uploads || [];
    const { controls } = this;
    for (const up of this.entries) {
      controls.store.datasets[up.name] = datasetEntry(up);
      if (![...controls.datasetSelect.options].some((o) => o.value === up.name)) {
        controls.datasetSelect.append(el("option", { value: up.name, text: datasetEntry(up).title }));
      }
    }
    const items = this.entries.map((up) => this.item(up));
    const used = `${sizeText(answer.used_bytes)} of ${sizeText(answer.quota_bytes)} used`;
    this.box.replaceChildren(...(items.length ? [el("ul", {}, items), el("p", { class: "hint", text: used })] : []));
    this.box.hidden = items.length === 0;
  }

  item(up) {
    const n = up.columns.length;
    const runs = up.in_use_by.length;
    const words = `${fmtInt(up.rows)} rows, ${n} column${n === 1 ? "" : "s"}, ${describeTask(up)}, ${sizeText(up.bytes)}${runs ? `, used by ${runs} run${runs === 1 ? "" : "s"}` : ""}`;
    const button = el("button", { type: "button", class: "small", "data-upload": up.id, "aria-label": `Delete ${up.filename}`, text: "Delete" });
    button.addEventListener("click", () => this.remove(up));
    return el("li", { "data-upload": up.id }, [el("span", { class: "upload-name", text: up.filename }), " ", el("span", { class: "hint", text: words }), " ", button]);
  }

  /** DELETE the upload; on success it leaves the list and the Dataset menu. */
  async remove(up) {
    this.error.hidden = true;
    try {
      await api.deleteUpload(up.id);
    } catch (err) {
      this.error.textContent = plainDeleteError(err, up.filename);
      this.error.hidden = false;
      return;
    }
    const { controls } = this;
    delete controls.store.datasets[up.name];
    const option = [...controls.datasetSelect.options].find((o) => o.value === up.name);
    if (option && controls.datasetSelect.value !== up.name) option.remove();
    await this.refresh();
  }
}
