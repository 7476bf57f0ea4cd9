// The run configuration as the server defines it (GET /api/schema: engine.config's JSON Schema,
// the fields PATCH changes on a live session and where they sit in the document). The form takes
// its defaults, bounds and choices from here, and so does every comparison of two set-ups; none
// of them is typed a second time in the page. `configSchema` is loaded once, before the form is
// first filled.

/** The set-up a fresh page starts from when no preset is available (the rest: server defaults). */
export const STARTING_SETUP = {
  dataset: { name: "xor" },
  layers: [
    { type: "dense", units: 8, activation: "tanh" },
    { type: "dense", units: 8, activation: "tanh" },
    { type: "dense", units: 1, activation: "sigmoid" },
  ],
};

function clone(v) {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** "layers[2].units" -> ["layers", 2, "units"]. */
function pathParts(path) {
  return path.match(/[^.[\]]+/g).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

export function getPath(obj, path) {
  let o = obj;
  for (const p of pathParts(path)) {
    if (o === null || o === undefined) return undefined;
    o = o[p];
  }
  return o;
}

export function setPath(obj, path, value) {
  const parts = pathParts(path);
  let o = obj;
  for (let k = 0; k < parts.length - 1; k++) {
    if (o[parts[k]] === undefined || o[parts[k]] === null) o[parts[k]] = typeof parts[k + 1] === "number" ? [] : {};
    o = o[parts[k]];
  }
  o[parts[parts.length - 1]] = value;
}

function deletePath(obj, path) {
  const parts = pathParts(path);
  const parent = parts.length > 1 ? getPath(obj, parts.slice(0, -1).join(".")) : obj;
  if (isObject(parent)) delete parent[parts[parts.length - 1]];
}

/** Stable JSON (sorted keys, null-valued keys dropped) for comparing documents. */
export function stableJson(v) {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).filter((k) => v[k] !== null && v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export class ConfigSchema {
  constructor() {
    this.doc = null;
  }

  /** Take the answer of GET /api/schema. */
  load(doc) {
    if (!doc || !isObject(doc.config) || !isObject(doc.hot)) throw new Error(`expected a schema document with "config" and "hot", got ${JSON.stringify(doc).slice(0, 80)}`);
    this.doc = doc;
  }

  get loaded() {
    return this.doc !== null;
  }

  get root() {
    if (!this.doc) throw new Error("the run configuration schema is not loaded yet (GET /api/schema)");
    return this.doc.config;
  }

  /** PATCH field -> its path in the config document ({learning_rate: "optimizer.learning_rate", ...}). */
  get hot() {
    return this.root && this.doc.hot;
  }

  /** The longest run name the server takes. */
  get nameMaxLength() {
    return this.root && this.doc.name_max_length;
  }

  /** A schema node with its $ref followed (keys beside the $ref, such as a default, kept). */
  resolve(node) {
    if (!node || !node.$ref) return node || null;
    const { $ref, ...rest } = node;
    const target = (this.root.$defs || {})[$ref.split("/").pop()];
    if (!target) throw new Error(`expected ${$ref} among the schema's $defs, got none`);
    return { ...this.resolve(target), ...rest };
  }

  /** The object schema a node describes (the non-null branch of an optional object), or null. */
  objectOf(node) {
    const n = this.resolve(node);
    if (!n) return null;
    if (n.properties) return n;
    for (const branch of n.anyOf || []) {
      const b = this.resolve(branch);
      if (b && b.properties) return b;
    }
    return null;
  }

  /** The schema of one layer type ("dense", "conv2d", ...). */
  layerSchema(type) {
    const ref = this.root.properties.layers.items.discriminator.mapping[type];
    return ref ? this.resolve({ $ref: ref }) : null;
  }

  /** The schema node of a config path ("optimizer.momentum", "layers[2].units" given the layer's type). */
  node(path, layerType = null) {
    const parts = pathParts(path);
    if (parts[0] === "layers" && parts.length > 2) {
      const layer = this.layerSchema(layerType);
      return layer ? this.resolve(layer.properties[parts[2]]) : null;
    }
    let node = this.root;
    for (const p of parts) {
      const obj = this.objectOf(node);
      if (!obj || !obj.properties[p]) return null;
      node = obj.properties[p];
    }
    return this.resolve(node);
  }

  /** A node's default: its own, else (an object) the defaults of its fields; undefined when required. */
  defaultOf(node) {
    const n = this.resolve(node);
    if (!n) return undefined;
    if ("default" in n) return clone(n.default);
    if (!n.properties) return undefined;
    const out = {};
    for (const [key, field] of Object.entries(n.properties)) {
      const v = this.defaultOf(field);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }

  /** Values of an enum (or a list of enums) at a path: the choices the server takes. */
  choices(path, layerType = null) {
    const n = this.node(path, layerType);
    const items = n && n.items ? this.resolve(n.items) : n;
    return items && Array.isArray(items.enum) ? items.enum.slice() : [];
  }

  /** Layer types in the order the config lists them. */
  layerTypes() {
    return this.root.properties.layers.items.oneOf.map((ref) => this.resolve(ref).properties.type.const);
  }

  /** The server's defaults of a layer type ({type: "dense", activation: "tanh"}; required fields left out). */
  layerDefaults(type) {
    const layer = this.layerSchema(type);
    return layer ? { ...this.defaultOf(layer), type } : { type };
  }

  /**
   * min / max attributes of a number input for a node. An exclusive upper bound (momentum < 1)
   * becomes the last value one `step` below it; with step "any", no max is set.
   */
  inputBounds(node, step) {
    const n = this.resolve(node);
    const out = {};
    if (!n) return out;
    const lo = n.minimum ?? n.exclusiveMinimum;
    if (lo !== undefined) out.min = lo;
    if (n.maximum !== undefined) out.max = n.maximum;
    else if (n.exclusiveMaximum !== undefined && Number(step) > 0) out.max = Number((n.exclusiveMaximum - Number(step)).toPrecision(12));
    return out;
  }

  /** A node's defaults merged under `value` (objects field by field; lists and scalars as given). */
  fill(node, value) {
    const n = this.resolve(node);
    if (value === undefined || value === null) {
      if (value === null && n && (n.anyOf || []).some((b) => b.type === "null")) return null;
      return this.defaultOf(n);
    }
    const obj = this.objectOf(n);
    if (!obj || !isObject(value)) return value;
    const out = { ...value };
    for (const [key, field] of Object.entries(obj.properties)) {
      const v = this.fill(field, value[key]);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }

  /** The full config document of a (possibly partial) one: every field of the schema, defaults filled. */
  withDefaults(cfg) {
    const c = clone(cfg || {});
    if (typeof c.init === "string") c.init = { kind: c.init }; // the document's shorthand for an init kind
    const out = {};
    for (const [key, field] of Object.entries(this.root.properties)) {
      const v = this.fill(field, c[key] ?? clone(STARTING_SETUP[key]));
      out[key] = v === undefined ? null : v;
    }
    return out;
  }

  /** What needs a new session when it changes: everything but the PATCH-able fields. */
  structuralKey(cfg) {
    const c = this.withDefaults(cfg);
    for (const path of Object.values(this.hot)) deletePath(c, path);
    return stableJson(c);
  }

  /** The PATCH document of a config: every PATCH-able field with its value. */
  hyperOf(cfg) {
    const c = this.withDefaults(cfg);
    const out = {};
    for (const [name, path] of Object.entries(this.hot)) out[name] = getPath(c, path) ?? null;
    return out;
  }

  /** A PATCH error's field ("momentum") as the form names it ("optimizer.momentum"). */
  fieldOfPatch(field) {
    if (!field) return field;
    const head = field.split(/[.[]/)[0];
    return this.hot[head] ? this.hot[head] + field.slice(head.length) : field;
  }

  /** The PATCH field a config path belongs to ("regularization.rate" -> "regularization"), or null. */
  hotFieldOf(path) {
    for (const [name, p] of Object.entries(this.hot)) if (path === p || path.startsWith(`${p}.`)) return name;
    return null;
  }
}

/** The page's one schema (loaded by main.js before the form is filled). */
export const configSchema = new ConfigSchema();
