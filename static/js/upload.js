// Your own data: upload a CSV or NPZ file, then build a run on it (its columns are the inputs, the
// output layer and the loss fit its task). The server's problems with the file are said in the
// page's words, naming the file.

import { api } from "./api.js";
import { el, fmtInt } from "./util.js";

function taskWords(up) {
  if (up.task === "multiclass") return `${up.num_classes} classes`;
  if (up.task === "binary") return "two classes";
  return "a number to predict (regression)";
}

/** A server's upload error ({field, message}) in the words of the page: what is wrong with the file. */
export function plainUploadError({ field, message }, filename) {
  const m = String(message);
  let r;
  if (field === "dataset.target" || field === "target") {
    if ((r = m.match(/^expected one of the columns \[(.*)\], got '(.*)'$/))) return `${filename} has no column named “${r[2]}”; its columns are ${r[1].replace(/'/g, "")}. Leave “target column” empty to use the last one.`;
    return `Target column: ${m}`;
  }
  const rules = [
    [/^expected a CSV file with a header row, got an empty file$/, () => `${filename} is empty.`],
    [/^expected a header row, got none$/, () => `${filename} has no header row: its first line must name the columns.`],
    [/^expected at least 2 columns \(inputs and a target\), got (\d+)$/, (x) => `${filename} has ${x[1]} column; it needs at least 2 (inputs and a target).`],
    [/^expected at most (\d+) columns, got (\d+)$/, (x) => `${filename} has ${x[2]} columns; at most ${x[1]} are allowed.`],
    [/^expected unique column names, got \[(.*)\] repeated$/, (x) => `Each column needs its own name; in ${filename} these appear more than once: ${x[1].replace(/'/g, "")}.`],
    [/^row (\d+): expected (\d+) cells like the header, got (\d+)$/, (x) => `Data row ${x[1]} of ${filename} (the header not counted) has ${x[3]} values, but the header names ${x[2]} columns.`],
    [/^row (\d+), column '(.*)': expected a (?:finite )?number, got (.*)$/, (x) => `Data row ${x[1]}, column “${x[2]}” of ${filename} holds ${x[3].replace(/^'(.*)'$/, "“$1”")}, which is not a number.`],
    [/^expected data rows below the header, got none$/, () => `${filename} has a header row but no data rows.`],
    [/^expected at least (\d+) rows, got (\d+)$/, (x) => `${filename} has ${x[2]} rows; a run needs at least ${x[1]}.`],
    [/^expected at least 2 classes in y, got only (.*)$/, (x) => `The target column of ${filename} holds only one value (${x[1]}); there must be at least two classes to learn.`],
    [/^expected an \.npz \(zip\) file, got something else$/, () => `${filename} is not an .npz file (nor a CSV with a header row).`],
    [/^expected the arrays X and y once each in the \.npz, got (.*)$/, (x) => `${filename} must hold exactly two arrays named X (inputs) and y (targets); it holds ${x[1]}.`],
    [/^expected only the arrays X and y in the \.npz, got also (.*)$/, (x) => `${filename} must hold only the arrays X and y; it also holds ${x[1]}.`],
    [/^expected as many rows in y as in X \((\d+)\), got (\d+)$/, (x) => `In ${filename}, X has ${x[1]} rows but y has ${x[2]}: they must match.`],
    [/^the uploaded file is larger than the (.*) limit$/, (x) => `${filename} is larger than the ${x[1]} upload limit.`],
  ];
  for (const [re, say] of rules) {
    const x = m.match(re);
    if (x) return say(x);
  }
  return `${filename} could not be used: ${m.replace(/^expected /, "it should have ").replace(/, got /, ", but has ")}.`;
}

/** Upload a CSV/NPZ, then build a run on it: its columns are the inputs, the output fits its task. */
export async function uploadData(controls, input) {
  const file = input.files && input.files[0];
  input.value = "";
  if (!file) return;
  const box = document.getElementById("upload-error");
  const note = document.getElementById("upload-note");
  box.hidden = true;
  box.textContent = "";
  const target = document.getElementById("upload-target").value.trim();
  note.textContent = `uploading ${file.name}…`;
  let up;
  try {
    up = await api.upload(file, target || undefined);
  } catch (err) {
    note.textContent = "";
    box.hidden = false;
    const errors = err && err.errors ? err.errors : [{ field: "", message: String(err) }];
    box.textContent = errors.map((e) => plainUploadError(e, file.name)).join(" ");
    box.scrollIntoView({ block: "nearest" });
    return;
  }
  const inputKind = up.columns === 2 ? "2d" : up.columns === 1 ? "1d" : "table";
  const title = `Your data: ${file.name}`;
  controls.store.datasets[up.name] = { name: up.name, title, task: up.task, input_kind: inputKind, num_classes: up.num_classes, source: "upload", description: `${fmtInt(up.rows)} rows, ${up.columns} input column${up.columns === 1 ? "" : "s"}, ${taskWords(up)}` };
  if (![...controls.datasetSelect.options].some((o) => o.value === up.name)) controls.datasetSelect.append(el("option", { value: up.name, text: title }));
  note.textContent = `${file.name}: ${fmtInt(up.rows)} rows, ${up.columns} input column${up.columns === 1 ? "" : "s"}, ${taskWords(up)}. The run now trains on it.`;
  const cfg = controls.readConfig();
  cfg.dataset = { name: up.name, test_fraction: cfg.dataset.test_fraction, ...(target ? { target } : {}) };
  if (inputKind === "table") delete cfg.features; // its columns are the inputs, as they are
  else cfg.features = inputKind === "2d" ? ["x1", "x2"] : ["x1"];
  const layers = cfg.layers.slice();
  const out = { ...layers[layers.length - 1], type: "dense" };
  if (up.task === "multiclass") Object.assign(out, { units: up.num_classes, activation: "softmax" });
  else if (up.task === "regression") Object.assign(out, { units: 1, activation: "linear" });
  else Object.assign(out, { units: 1, activation: out.activation === "softmax" || out.activation === "linear" ? "tanh" : out.activation || "tanh" });
  layers[layers.length - 1] = out;
  cfg.layers = layers;
  cfg.loss = up.task === "multiclass" ? "cross_entropy" : up.task === "regression" ? "mse" : cfg.loss === "cross_entropy" ? "mse" : cfg.loss;
  controls.writeConfig(cfg);
  controls.handlers.onStructure(controls.readConfig());
  controls.uploads.refresh(); // the list under "Your data" shows it, with its size
}
