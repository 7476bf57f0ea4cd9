// Sharing a set-up: the URL fragment (#run=<id>&c=<config JSON>) keeps the set-up, so a copied
// link reproduces it (and reopens the run while it exists); Export / Import JSON save and load it
// as a file.

import { el } from "./util.js";

/** #run=<id>&c=<config JSON>: a link that reproduces the setup (and reopens the run if it exists). */
export function writeFragment(cfg, runId) {
  const params = new URLSearchParams();
  if (runId) params.set("run", runId);
  params.set("c", JSON.stringify(cfg));
  const hash = `#${params.toString()}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

/** What the page's link asks for: {runId, config, preset}. */
export function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  let config = null;
  try {
    config = params.get("c") ? JSON.parse(params.get("c")) : null;
  } catch {
    config = null;
  }
  return { runId: params.get("run"), config, preset: params.get("preset") };
}

let noteTimer = null;

/** A short note beside the share buttons. */
function shareNote(text, ms = 3000) {
  const n = document.getElementById("share-note");
  n.textContent = text;
  clearTimeout(noteTimer);
  noteTimer = setTimeout(() => (n.textContent = ""), ms);
}

function exportJson(cfg) {
  const blob = new Blob([`${JSON.stringify(cfg, null, 2)}\n`], { type: "application/json" });
  const a = el("a", { href: URL.createObjectURL(blob), download: "backprop-lens-config.json" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

/** Load a set-up file into the form (a config, or a session document holding one). */
async function importJson(controls, input) {
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  let doc;
  try {
    doc = JSON.parse(await file.text());
  } catch (err) {
    controls.showErrors([{ field: "", message: `${file.name} is not a JSON file this page can read (${String(err.message).replace(/^JSON\.parse: /, "")}). Export a setup with “Export JSON” to see what one looks like.` }]);
    return;
  }
  const cfg = doc && typeof doc === "object" && doc.config && doc.layers === undefined ? doc.config : doc;
  if (!cfg || typeof cfg !== "object" || Array.isArray(cfg) || !cfg.dataset || !Array.isArray(cfg.layers)) {
    controls.showErrors([{ field: "", message: `${file.name} holds JSON, but not a Backprop Lens setup: it needs a “dataset” and a list of “layers”. Export a setup with “Export JSON” to see what one looks like.` }]);
    return;
  }
  const known = new Set(Object.keys(controls.schema.withDefaults({})));
  const ignored = Object.keys(cfg).filter((k) => !known.has(k));
  controls.writeConfig(cfg);
  controls.handlers.onStructure(controls.readConfig());
  shareNote(ignored.length ? `imported ${file.name}; not settings, so left out: ${ignored.join(", ")}` : `imported ${file.name}`, ignored.length ? 8000 : 3000);
}

async function copyLink() {
  try {
    await navigator.clipboard.writeText(location.href);
    shareNote("link copied");
  } catch {
    shareNote("copy the address bar: it holds the setup");
  }
}

/** Wire the share buttons of the set-up form. */
export function shareBindings(controls) {
  document.getElementById("export-json").addEventListener("click", () => exportJson(controls.readConfig()));
  document.getElementById("import-json").addEventListener("change", (e) => importJson(controls, e.target));
  document.getElementById("import-json-btn").addEventListener("click", () => document.getElementById("import-json").click());
  document.getElementById("copy-link").addEventListener("click", () => copyLink());
}
