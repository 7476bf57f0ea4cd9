// REST calls to the Backprop Lens server. Every failure becomes an ApiError whose `errors` is a list
// of {field, message}: FastAPI's 422 detail list ("field" or "loc"), or one entry for a string detail.

/** An HTTP error with the server's problems, each naming the field it is about ("" when none). */
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/** ["body", "config", "layers", 2, "units"] -> "layers[2].units" (request-body prefixes dropped). */
export function locToField(loc) {
  if (!Array.isArray(loc)) return "";
  const parts = loc.slice();
  while (parts.length && (parts[0] === "body" || parts[0] === "config" || parts[0] === "query" || parts[0] === "path")) parts.shift();
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${p}` : String(p);
  }
  return out;
}

/** The {field, message} list of an error response body. */
export function parseErrors(status, body) {
  const detail = body && typeof body === "object" ? body.detail : undefined;
  if (Array.isArray(detail)) {
    return detail.map((d) => ({
      field: typeof d.field === "string" ? d.field : locToField(d.loc),
      message: String(d.message ?? d.msg ?? "is invalid"),
    }));
  }
  if (typeof detail === "string") return [{ field: "", message: detail }];
  if (typeof body === "string" && body) return [{ field: "", message: body.slice(0, 300) }];
  return [{ field: "", message: `the server answered HTTP ${status}` }];
}

async function request(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return send(path, init);
}

/** POST a multipart form (a file upload); errors become ApiError like every other call. */
function postForm(path, form) {
  return send(path, { method: "POST", body: form });
}

/** fetch, then the JSON answer, or an ApiError naming what went wrong. */
async function send(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, [{ field: "", message: `the server is unreachable (${err.message})` }]);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text for the error message */
  }
  if (!response.ok) throw new ApiError(response.status, parseErrors(response.status, data));
  return data;
}

const enc = encodeURIComponent;

export const api = {
  health: () => request("GET", "/api/health"),
  /** The run configuration's JSON Schema and the fields PATCH changes (server/routes/config_schema.py). */
  schema: () => request("GET", "/api/schema"),
  datasets: () => request("GET", "/api/datasets"),
  presets: () => request("GET", "/api/presets"),
  sessions: () => request("GET", "/api/sessions"),
  session: (id) => request("GET", `/api/sessions/${enc(id)}`),
  create: (config, name) => request("POST", "/api/sessions", name ? { config, name } : { config }),
  patch: (id, changes) => request("PATCH", `/api/sessions/${enc(id)}`, changes),
  /** Train in the background; `pace` steps per second at most (a watchable speed), or null for full speed. */
  start: (id, pace = null) => request("POST", `/api/sessions/${enc(id)}/start`, pace ? { pace } : undefined),
  stop: (id) => request("POST", `/api/sessions/${enc(id)}/stop`),
  step: (id, steps) => request("POST", `/api/sessions/${enc(id)}/step`, { steps }),
  reset: (id) => request("POST", `/api/sessions/${enc(id)}/reset`),
  /** An external run's script: {action: "pause"|"resume"|"stop"|"learning_rate", learning_rate?}. */
  control: (id, action, learningRate) =>
    request("POST", `/api/sessions/${enc(id)}/control`, action === "learning_rate" ? { action, learning_rate: learningRate } : { action }),
  remove: (id) => request("DELETE", `/api/sessions/${enc(id)}`),
  metrics: (id, since = 0, limit = 2000) => request("GET", `/api/sessions/${enc(id)}/metrics?since=${since}&limit=${limit}`),
  trace: (id, inputs, targets) => request("POST", `/api/sessions/${enc(id)}/trace`, { inputs, targets }),
  predict: (id, inputs) => request("POST", `/api/sessions/${enc(id)}/predict`, { inputs }),
  boundary: (id, resolution = 100) => request("GET", `/api/sessions/${enc(id)}/boundary?resolution=${resolution}`),
  data: (id, limit = 2000) => request("GET", `/api/sessions/${enc(id)}/data?limit=${limit}`),
  weights: (id) => request("GET", `/api/sessions/${enc(id)}/weights`),
  putWeights: (id, weights) => request("PUT", `/api/sessions/${enc(id)}/weights`, weights),
  config: (id) => request("GET", `/api/sessions/${enc(id)}/config`),
  snapshot: (id) => request("GET", `/api/sessions/${enc(id)}/snapshot`),
  /** Upload a CSV or NPZ file; `target` names the CSV's target column (default: the last). */
  upload: (file, target) => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (target) form.append("target", target);
    return postForm("/api/datasets/upload", form);
  },
};
