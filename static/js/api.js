// REST calls to the Backprop Lens server. Every error answer is a problem body (docs/errors.md):
// {code, detail, errors: [{field, message, code}], ...}; it becomes an ApiError whose `errors` lists
// the fields it names, or one entry with the detail when it names none.

/** An HTTP error: `status`, the problem's `code` and `detail`, and `errors` as {field, message}
 * ("" for field when the problem names none). */
export class ApiError extends Error {
  constructor(status, errors, code = "", detail = "") {
    super(errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ") || detail || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
    this.code = code;
    this.detail = detail || this.message;
  }
}

/** The {field, message, code} list of an error answer's body. */
export function parseErrors(status, body) {
  if (body && typeof body === "object") {
    const fields = Array.isArray(body.errors) ? body.errors : [];
    if (fields.length) {
      return fields.map((e) => ({ field: typeof e.field === "string" ? e.field : "", message: String(e.message ?? "is invalid"), code: e.code }));
    }
    if (typeof body.detail === "string" && body.detail) return [{ field: "", message: body.detail, code: body.code }];
  }
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
  if (!response.ok) {
    const problem = data && typeof data === "object" ? data : {};
    throw new ApiError(response.status, parseErrors(response.status, data), problem.code || "", typeof problem.detail === "string" ? problem.detail : "");
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  health: () => request("GET", "/api/health"),
  /** The run configuration's JSON Schema and the fields PATCH changes (server/routes/config_schema.py). */
  schema: () => request("GET", "/api/schema"),
  datasets: () => request("GET", "/api/datasets"),
  presets: () => request("GET", "/api/presets"),
  /** Every session, newest first: GET /api/sessions answers a page at a time, so its
   * next_cursor is followed to the last page ({sessions, next_cursor: null}, as one page). */
  sessions: async (pageSize = 1000) => {
    const sessions = [];
    let cursor = null;
    do {
      const query = `limit=${pageSize}${cursor ? `&cursor=${enc(cursor)}` : ""}`;
      const page = await request("GET", `/api/sessions?${query}`);
      sessions.push(...page.sessions);
      cursor = page.next_cursor;
    } while (cursor);
    return { sessions, next_cursor: null };
  },
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
  /** The stored uploads with their columns, rows, task, size and the runs using them; the quota. */
  uploads: () => request("GET", "/api/datasets/uploads"),
  /** Delete an upload (409 while a run trains on it). */
  deleteUpload: (id) => request("DELETE", `/api/datasets/uploads/${enc(id)}`),
  /** Upload a CSV or NPZ file; `target` names the CSV's target column (default: the last). */
  upload: (file, target) => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (target) form.append("target", target);
    return postForm("/api/datasets/upload", form);
  },
};
