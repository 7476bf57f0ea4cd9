// The data view: training and test points over the network's output on the input plane (2-D data),
// the fitted curve (1-D regression) or a grid of sample images with predicted and true labels.
// A multi-class net colours each point of the plane by its most likely class, paler where it is
// unsure, with one small map per class in the legend below. Clicking a point or an image picks the
// sample that "explain this step" traces.

import { classColor, divergingRGB, el, fitCanvas, fmt, rgbCss, setStyle, setText, tintRGB } from "./util.js";

const PAD = 22;
// Tint of a multi-class cell: from FLOOR (a tie) to FLOOR + RANGE (certain), so that even an unsure
// region shows its hue and a certain one stays pale enough for the points on it to stand out.
const CLASS_TINT_FLOOR = 0.1;
const CLASS_TINT_RANGE = 0.55;
const CLASS_TINT_DISCRETE = 0.5; // "discretize": one flat tint per class
const LEGEND_MAP_PX = 30; // side of a legend's per-class map, CSS pixels
const TABLE_ROWS = 8; // rows of a many-column dataset shown as a table
const TABLE_COLUMNS = 6; // its input columns shown; the rest are counted

function scalarOf(y) {
  return Array.isArray(y) ? Number(y.flat(Infinity)[0]) : Number(y);
}

export class DataView {
  /**
   * @param {HTMLElement} host
   * @param {{onPick?: Function}} handlers  onPick({x, y, split, index})
   */
  constructor(host, handlers = {}) {
    this.host = host;
    this.handlers = handlers;
    this.canvas = el("canvas", { id: "data-canvas", class: "data-canvas" });
    this.gallery = el("div", { id: "data-gallery", class: "gallery", hidden: true });
    this.caption = el("div", { class: "data-caption", id: "data-caption" });
    this.legend = el("div", { id: "data-legend", class: "legend data-legend", hidden: true });
    this.table = el("div", { id: "data-table", class: "data-table", hidden: true });
    host.append(this.canvas, this.gallery, this.table, this.legend, this.caption);
    this.config = null;
    this.info = null;
    this.data = null;
    this.grid = null;
    this.curve = null; // 1-D: {xs, ys}
    this.predictions = null; // image gallery: predicted class per shown sample
    this.showTest = true;
    this.discretize = false;
    this.selected = null; // {split, index}
    this.dirty = true;
    this.canvas.addEventListener("click", (e) => this.onClick(e));
    new ResizeObserver(() => (this.dirty = true)).observe(host);
  }

  get kind() {
    if (this.data && this.data.input_kind) return this.data.input_kind;
    if (this.info) return this.info.input_kind;
    return "2d";
  }

  get task() {
    return (this.data && this.data.task) || (this.info && this.info.task) || "binary";
  }

  /** Class names of the data (digit names for digits), from the data or the dataset's info. */
  get classNames() {
    if (this.data && Array.isArray(this.data.class_names) && this.data.class_names.length) return this.data.class_names;
    const k = (this.info && this.info.num_classes) || (this.task === "regression" ? 0 : 2);
    return Array.from({ length: k }, (_, i) => String(i));
  }

  /** Colour of class k in this run (Playground's orange and blue for two classes). */
  classRGB(k) {
    return classColor(k, this.classNames.length);
  }

  setRun(config, info) {
    this.config = config;
    this.info = info;
    this.data = null;
    this.grid = null;
    this.curve = null;
    this.predictions = null;
    this.selected = null;
    this.dirty = true;
  }

  setData(data) {
    this.data = data;
    this.yRange = null;
    if (data && this.task === "regression") {
      let lo = Infinity;
      let hi = -Infinity;
      for (const split of [data.train, data.test]) {
        for (const y of (split && split.y) || []) {
          const v = scalarOf(y);
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      this.yRange = Number.isFinite(lo) ? [lo, hi] : [-1, 1];
    }
    this.dirty = true;
  }

  setGrid(grid) {
    this.grid = grid || null;
    this.dirty = true;
  }

  setCurve(curve) {
    this.curve = curve;
    this.dirty = true;
  }

  setPredictions(preds) {
    this.predictions = preds;
    this.dirty = true;
  }

  setSelected(sel) {
    this.selected = sel;
    this.dirty = true;
  }

  /** How many samples the gallery shows: more of small images (8x8 digits) than of larger ones. */
  get galleryLimit() {
    const s = this.data && ((this.data.test && this.data.test.x) || [])[0];
    const img = s && Array.isArray(s[0]) && Array.isArray(s[0][0]) ? s[0] : s;
    return img && img.length <= 8 ? 32 : 24;
  }

  /** The samples shown in the image gallery (test split first). */
  gallerySamples(limit = this.galleryLimit) {
    if (!this.data) return [];
    const out = [];
    for (const split of ["test", "train"]) {
      const s = this.data[split];
      if (!s || !s.x) continue;
      for (let i = 0; i < s.x.length && out.length < limit; i++) out.push({ split, index: i, x: s.x[i], y: s.y[i] });
    }
    return out;
  }

  /** Plane extent [[x0, x1], [y0, y1]] from the grid, the data's domain or the points. */
  extent() {
    if (this.grid && this.grid.x && this.grid.y) return [this.grid.x, this.grid.y];
    const d = this.data && this.data.domain;
    if (Array.isArray(d) && Array.isArray(d[0])) return d.length > 1 ? [d[0], d[1]] : [d[0], this.yRange || [-1.5, 1.5]];
    return [[-6, 6], [-6, 6]];
  }

  render() {
    if (!this.dirty) return;
    this.dirty = false;
    const kind = this.kind;
    this.host.dataset.kind = kind;
    const isImage = kind === "image";
    const isTable = kind === "table";
    if (kind !== "2d") delete this.host.dataset.output; // what the plane's colours mean: 2-D only
    this.canvas.hidden = isImage || isTable;
    this.gallery.hidden = !isImage;
    this.table.hidden = !isTable;
    this.renderLegend(kind);
    if (isImage) return this.renderGallery();
    if (isTable) return this.renderTable();
    const size = Math.max(160, Math.min(this.host.clientWidth, 246));
    const ctx = fitCanvas(this.canvas, size, kind === "1d" ? Math.round(size * 0.7) : size);
    const h = kind === "1d" ? Math.round(size * 0.7) : size;
    ctx.clearRect(0, 0, size, h);
    if (kind === "1d") this.render1d(ctx, size, h);
    else this.render2d(ctx, size);
  }

  toPx2d(size) {
    const [[x0, x1], [y0, y1]] = this.extent();
    const inner = size - PAD - 6;
    return {
      fx: (x) => PAD + ((x - x0) / (x1 - x0)) * inner,
      fy: (y) => 6 + inner - ((y - y0) / (y1 - y0)) * inner,
      inner,
    };
  }

  /**
   * What grid.output holds (the engine's convention): "01" a probability (sigmoid / bce, boundary
   * at 0.5), "pm1" a value with targets -1/+1 (tanh or linear with mse, boundary at 0), "margin"
   * p1 - p0 of a two-class softmax, "class" the most likely class index, "values" a regression.
   */
  outputMode() {
    if (this.task === "regression") return "values";
    const layers = (this.config && this.config.layers) || [];
    const last = layers[layers.length - 1] || {};
    const loss = this.config ? this.config.loss : "mse";
    if (last.units === 1) return loss === "bce" || last.activation === "sigmoid" ? "01" : "pm1";
    if (last.units === 2 && loss === "cross_entropy") return "margin";
    return "class";
  }

  /** Colour value t in [-1, 1] of one output cell, or null for a class index. */
  cellTone(v, mode) {
    if (Array.isArray(v)) v = v.length === 2 ? v[1] - v[0] : v[0];
    let t;
    if (mode === "values") {
      const [lo, hi] = this.yRange || [-1, 1];
      t = v / (Math.max(Math.abs(lo), Math.abs(hi)) || 1);
    } else if (mode === "01") {
      t = 2 * v - 1;
    } else if (mode === "class") {
      return null;
    } else {
      t = v; // pm1 and margin are already centred on the boundary at 0
    }
    return this.discretize ? (t >= 0 ? 1 : -1) : t;
  }

  render2d(ctx, size) {
    const { fx, fy, inner } = this.toPx2d(size);
    this.caption.textContent = this.drawing
      ? "click: blue point · shift-click: orange · alt-click: remove"
      : "click a point to explain its training step";
    const grid = this.grid;
    if (grid && grid.output) {
      const out = grid.output;
      const res = out.length;
      const off = document.createElement("canvas");
      off.width = res;
      off.height = res;
      const octx = off.getContext("2d");
      const img = octx.createImageData(res, res);
      const rgb = [0, 0, 0];
      const mode = this.outputMode();
      const classes = mode === "class" && Array.isArray(grid.classes) && grid.classes.length === this.classNames.length ? grid.classes : null;
      this.host.dataset.output = classes ? "classes" : mode;
      if (classes) this.paintClasses(img.data, classes, grid.class_values === "probability");
      else {
        for (let r = 0; r < res; r++) {
          for (let k = 0; k < res; k++) {
            const v = out[r][k];
            const t = this.cellTone(v, mode);
            if (t === null) {
              // many classes without per-class maps: the colour of the most likely class
              const best = Math.max(0, Math.round(Array.isArray(v) ? v.indexOf(Math.max(...v)) : v));
              const col = this.classRGB(best);
              const conf = 0.7;
              rgb[0] = 235 + (col[0] - 235) * conf;
              rgb[1] = 236 + (col[1] - 236) * conf;
              rgb[2] = 237 + (col[2] - 237) * conf;
            } else {
              divergingRGB(t * 0.85, rgb);
            }
            const o = ((res - 1 - r) * res + k) * 4;
            img.data[o] = rgb[0];
            img.data[o + 1] = rgb[1];
            img.data[o + 2] = rgb[2];
            img.data[o + 3] = 255;
          }
        }
      }
      octx.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = !this.discretize;
      ctx.drawImage(off, PAD, 6, inner, inner);
    } else {
      ctx.fillStyle = "#f3f4f6";
      ctx.fillRect(PAD, 6, inner, inner);
    }
    ctx.strokeStyle = "#c8ccd2";
    ctx.strokeRect(PAD + 0.5, 6.5, inner - 1, inner - 1);
    // axes ticks
    const [[x0, x1], [y0, y1]] = this.extent();
    ctx.fillStyle = "#667";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (const v of [x0, (x0 + x1) / 2, x1]) ctx.fillText(fmt(v, 2), fx(v), 6 + inner + 12);
    ctx.textAlign = "right";
    for (const v of [y0, (y0 + y1) / 2, y1]) ctx.fillText(fmt(v, 2), PAD - 3, fy(v) + 3);
    ctx.textAlign = "left";
    if (!this.data) return;
    const splits = this.showTest ? ["train", "test"] : ["train"];
    const rgb = [0, 0, 0];
    for (const split of splits) {
      const s = this.data[split];
      if (!s || !s.x) continue;
      ctx.lineWidth = 1;
      ctx.strokeStyle = split === "train" ? "#ffffff" : "#111111";
      for (let i = 0; i < s.x.length; i++) {
        const p = s.x[i];
        const y = s.y[i];
        if (this.task === "regression") {
          const [lo, hi] = this.yRange || [-1, 1];
          const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
          divergingRGB(scalarOf(y) / m, rgb);
          ctx.fillStyle = rgbCss(rgb);
        } else {
          ctx.fillStyle = rgbCss(this.classRGB(scalarOf(y)));
        }
        ctx.beginPath();
        ctx.arc(fx(p[0]), fy(p[1]), 2.8, 0, Math.PI * 2);
        ctx.fill();
        ctx.stroke();
      }
    }
    this.drawSelected(ctx, (p) => [fx(p[0]), fy(p[1])]);
  }

  /**
   * Per-class maps [class][row][col] -> RGBA pixels (row 0 = lowest x2, drawn at the bottom): each
   * cell in the colour of its most likely class, tinted by how sure the network is. With
   * probabilities, sureness runs from a tie (1/K) to certainty (1); with raw outputs it is the lead
   * of the best unit over the runner-up.
   */
  paintClasses(pixels, classes, probability) {
    const count = classes.length;
    const res = classes[0].length;
    const rgb = [0, 0, 0];
    const colors = classes.map((_, c) => this.classRGB(c));
    for (let r = 0; r < res; r++) {
      for (let k = 0; k < res; k++) {
        let best = 0;
        let top = classes[0][r][k];
        let second = -Infinity;
        for (let c = 1; c < count; c++) {
          const v = classes[c][r][k];
          if (v > top) {
            second = top;
            top = v;
            best = c;
          } else if (v > second) second = v;
        }
        let sure = probability ? (top - 1 / count) / (1 - 1 / count) : top - second;
        if (!(sure > 0)) sure = 0;
        else if (sure > 1) sure = 1;
        tintRGB(colors[best], this.discretize ? CLASS_TINT_DISCRETE : CLASS_TINT_FLOOR + CLASS_TINT_RANGE * sure, rgb);
        const o = ((res - 1 - r) * res + k) * 4;
        pixels[o] = rgb[0];
        pixels[o + 1] = rgb[1];
        pixels[o + 2] = rgb[2];
        pixels[o + 3] = 255;
      }
    }
  }

  /**
   * The class legend under a multi-class plane: per class its colour, its name and, once the grid
   * has per-class maps, a small map of that class's probability (grey where 0, its colour where 1).
   * Hidden for binary, regression and image data, whose views explain themselves.
   */
  renderLegend(kind) {
    const names = this.classNames;
    const show = kind === "2d" && this.task !== "regression" && names.length > 2;
    this.legend.hidden = !show;
    if (!show) return;
    const classes = this.grid && Array.isArray(this.grid.classes) && this.grid.classes.length === names.length ? this.grid.classes : null;
    const probability = !!(this.grid && this.grid.class_values === "probability");
    if (this.legend.childElementCount !== names.length) {
      this.legend.replaceChildren(
        ...names.map((_, c) => el("span", { class: "legend-item class-item", "data-class": c }, [el("canvas", { class: "class-map", width: 1, height: 1 }), el("i", { class: "swatch" }), el("span", { class: "class-name" })])),
      );
    }
    names.forEach((name, c) => {
      const item = this.legend.children[c];
      const [map, swatch, label] = item.children;
      const col = this.classRGB(c);
      setStyle(swatch, "background", rgbCss(col));
      setText(label, name);
      map.hidden = !classes;
      item.title = classes ? `${probability ? "probability" : "output"} of ${name} over the plane` : name;
      if (classes) paintClassMap(map, classes[c], col, probability);
    });
  }

  render1d(ctx, w, h) {
    this.caption.textContent = "click a point to explain its training step";
    const [[x0, x1]] = this.extent();
    const [ylo, yhi] = this.yRange || [-1.5, 1.5];
    const ypad = (yhi - ylo) * 0.15 || 1;
    const lo = ylo - ypad;
    const hi = yhi + ypad;
    const fx = (x) => PAD + ((x - x0) / (x1 - x0)) * (w - PAD - 6);
    const fy = (y) => 6 + (h - 26) - ((y - lo) / (hi - lo)) * (h - 26);
    ctx.fillStyle = "#fbfbfc";
    ctx.fillRect(PAD, 6, w - PAD - 6, h - 26);
    ctx.strokeStyle = "#c8ccd2";
    ctx.strokeRect(PAD + 0.5, 6.5, w - PAD - 7, h - 27);
    ctx.strokeStyle = "#e4e6ea";
    ctx.beginPath();
    ctx.moveTo(PAD, fy(0));
    ctx.lineTo(w - 6, fy(0));
    ctx.stroke();
    ctx.fillStyle = "#667";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (const v of [x0, (x0 + x1) / 2, x1]) ctx.fillText(fmt(v, 2), fx(v), h - 8);
    ctx.textAlign = "right";
    for (const v of [ylo, yhi]) ctx.fillText(fmt(v, 2), PAD - 3, fy(v) + 3);
    ctx.textAlign = "left";
    if (this.data) {
      for (const split of this.showTest ? ["train", "test"] : ["train"]) {
        const s = this.data[split];
        if (!s || !s.x) continue;
        ctx.fillStyle = split === "train" ? "rgba(8,119,189,0.55)" : "rgba(245,147,34,0.75)";
        for (let i = 0; i < s.x.length; i++) {
          ctx.beginPath();
          ctx.arc(fx(scalarOf(s.x[i])), fy(scalarOf(s.y[i])), 2.2, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    }
    if (this.curve) {
      ctx.strokeStyle = "#183153";
      ctx.lineWidth = 2;
      ctx.beginPath();
      this.curve.xs.forEach((x, i) => {
        const y = this.curve.ys[i];
        if (i === 0) ctx.moveTo(fx(x), fy(y));
        else ctx.lineTo(fx(x), fy(y));
      });
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    this.drawSelected(ctx, (p) => [fx(scalarOf(p)), fy(0)], (p, y) => [fx(scalarOf(p)), fy(scalarOf(y))]);
  }

  drawSelected(ctx, toPx, toPxWithY) {
    if (!this.selected || !this.data) return;
    const s = this.data[this.selected.split];
    if (!s || !s.x[this.selected.index]) return;
    const p = s.x[this.selected.index];
    const [x, y] = toPxWithY ? toPxWithY(p, s.y[this.selected.index]) : toPx(p);
    ctx.strokeStyle = "#e0245e";
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, Math.PI * 2);
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  renderGallery() {
    const samples = this.gallerySamples();
    const classNames = (this.data && this.data.class_names) || [];
    if (this.gallery.childElementCount !== samples.length) {
      this.gallery.replaceChildren(
        ...samples.map((s, k) => {
          const c = el("canvas", { width: 16, height: 16, class: "tile-img" });
          const tile = el("button", { class: "tile", type: "button", "data-k": k, title: "explain this sample" }, [c, el("span", { class: "tile-label" })]);
          tile.addEventListener("click", () => {
            this.setSelected({ split: s.split, index: s.index });
            if (this.handlers.onPick) this.handlers.onPick({ x: s.x, y: s.y, split: s.split, index: s.index });
          });
          return tile;
        }),
      );
    }
    samples.forEach((s, k) => {
      const tile = this.gallery.children[k];
      const img = Array.isArray(s.x[0]) && Array.isArray(s.x[0][0]) ? s.x[0] : s.x;
      paintGrey(tile.firstChild, img);
      const truth = scalarOf(s.y);
      const pred = this.predictions ? this.predictions[k] : null;
      const label = tile.lastChild;
      const name = (c) => classNames[c] ?? String(c);
      label.textContent = pred === null || pred === undefined ? name(truth) : `${name(pred)}${pred === truth ? "" : ` ≠ ${name(truth)}`}`;
      tile.title = pred === null || pred === undefined ? `true: ${name(truth)} · click to explain` : `predicted ${name(pred)}, true ${name(truth)} · click to explain`;
      tile.dataset.state = pred === null || pred === undefined ? "none" : pred === truth ? "right" : "wrong";
      tile.dataset.selected = this.selected && this.selected.split === s.split && this.selected.index === s.index ? "yes" : "no";
    });
    const right = this.predictions ? samples.filter((s, k) => this.predictions[k] === scalarOf(s.y)).length : null;
    this.caption.textContent = right === null ? "" : `${right} of ${samples.length} shown samples right`;
  }

  /**
   * Data with more than two inputs has no plane to draw: the first rows of the training set as a
   * table, each with its target and (once predictions come in) what the network makes of it.
   */
  renderTable() {
    const samples = this.gallerySamples(TABLE_ROWS);
    const data = this.data;
    const width = samples.length ? samples[0].x.length : 0;
    const names = (data && data.input_names && data.input_names.length === width ? data.input_names : Array.from({ length: width }, (_, j) => `x${j + 1}`)).slice(0, TABLE_COLUMNS);
    const classes = (data && data.class_names) || [];
    const regression = this.task === "regression";
    const label = (v) => (regression ? fmt(v, 3) : classes[v] ?? String(v));
    const head = el("tr", {}, [...names.map((n) => el("th", { scope: "col", text: n })), ...(width > TABLE_COLUMNS ? [el("th", { scope: "col", text: `+${width - TABLE_COLUMNS}` })] : []), el("th", { scope: "col", text: "target" }), el("th", { scope: "col", text: "network" })]);
    const rows = samples.map((s, k) => {
      const pred = this.predictions ? this.predictions[k] : null;
      const truth = scalarOf(s.y);
      const right = pred === null || pred === undefined ? "none" : regression ? "value" : pred === truth ? "right" : "wrong";
      return el("tr", { "data-state": right }, [
        ...s.x.slice(0, TABLE_COLUMNS).map((v) => el("td", { text: fmt(v, 3) })),
        ...(width > TABLE_COLUMNS ? [el("td", { text: "…" })] : []),
        el("td", { text: label(truth) }),
        el("td", { class: "pred", text: pred === null || pred === undefined ? "–" : label(pred) }),
      ]);
    });
    this.table.replaceChildren(el("table", {}, [el("caption", { text: `${width} input columns, so no plane to draw: ${samples.length} of your rows` }), el("thead", {}, [head]), el("tbody", {}, rows)]));
    const right = this.predictions && !regression ? samples.filter((s, k) => this.predictions[k] === scalarOf(s.y)).length : null;
    this.caption.textContent = right === null ? "" : `${right} of ${samples.length} shown rows right`;
  }

  /** True when the run trains on points the user places ("points" dataset). */
  get drawing() {
    return !!(this.config && this.config.dataset && this.config.dataset.name === "points");
  }

  onClick(e) {
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    const size = r.width;
    if (this.drawing && this.kind === "2d" && this.handlers.onDraw) {
      // click: a blue point (class 1); shift-click: an orange one (class 0); alt-click: remove
      const [[x0, x1], [y0, y1]] = this.extent();
      const inner = size - PAD - 6;
      const px = x0 + ((mx - PAD) / inner) * (x1 - x0);
      const py = y0 + ((6 + inner - my) / inner) * (y1 - y0);
      if (px < x0 || px > x1 || py < y0 || py > y1) return;
      const label = e.shiftKey ? 0 : 1;
      if (!e.altKey && this.data && this.data.train) {
        this.data.train.x.push([px, py]);
        this.data.train.y.push(label);
        this.dirty = true;
      }
      this.handlers.onDraw({ x1: px, x2: py, label, remove: e.altKey });
      return;
    }
    if (!this.data || !this.handlers.onPick) return;
    let best = null;
    let bestD = 12;
    const kind = this.kind;
    let toPx;
    if (kind === "1d") {
      const [[x0, x1]] = this.extent();
      const [ylo, yhi] = this.yRange || [-1.5, 1.5];
      const ypad = (yhi - ylo) * 0.15 || 1;
      const hgt = r.height;
      toPx = (p, y) => [PAD + ((scalarOf(p) - x0) / (x1 - x0)) * (size - PAD - 6), 6 + (hgt - 26) - ((scalarOf(y) - (ylo - ypad)) / (yhi - ylo + 2 * ypad)) * (hgt - 26)];
    } else {
      const { fx, fy } = this.toPx2d(size);
      toPx = (p) => [fx(p[0]), fy(p[1])];
    }
    for (const split of this.showTest ? ["train", "test"] : ["train"]) {
      const s = this.data[split];
      if (!s || !s.x) continue;
      for (let i = 0; i < s.x.length; i++) {
        const [px, py] = toPx(s.x[i], s.y[i]);
        const d = Math.hypot(px - mx, py - my);
        if (d < bestD) {
          bestD = d;
          best = { split, index: i };
        }
      }
    }
    if (!best) return;
    this.setSelected(best);
    const s = this.data[best.split];
    this.handlers.onPick({ x: s.x[best.index], y: s.y[best.index], split: best.split, index: best.index });
  }
}

/**
 * One class's map [row][col] (row 0 = lowest x2) into a small canvas: grey where the value is 0,
 * the class colour where it is 1 (raw outputs are scaled by their largest magnitude first).
 */
export function paintClassMap(canvas, map, col, probability) {
  const res = map.length;
  if (!res) return;
  if (canvas.width !== res) canvas.width = res;
  if (canvas.height !== res) canvas.height = res;
  setStyle(canvas, "width", `${LEGEND_MAP_PX}px`);
  setStyle(canvas, "height", `${LEGEND_MAP_PX}px`);
  let scale = 1;
  if (!probability) {
    let m = 0;
    for (const row of map) for (const v of row) if (Math.abs(v) > m) m = Math.abs(v);
    scale = m > 0 ? 1 / m : 1;
  }
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(res, res);
  const rgb = [0, 0, 0];
  for (let r = 0; r < res; r++) {
    for (let k = 0; k < res; k++) {
      tintRGB(col, map[r][k] * scale, rgb);
      const o = ((res - 1 - r) * res + k) * 4;
      img.data[o] = rgb[0];
      img.data[o + 1] = rgb[1];
      img.data[o + 2] = rgb[2];
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

/** Draw a [h][w] array into a canvas as grey levels (min..max). */
export function paintGrey(canvas, img) {
  const h = img.length;
  const w = h ? img[0].length : 0;
  if (!h || !w) return;
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d");
  const data = ctx.createImageData(w, h);
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of img) for (const v of row) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  for (let r = 0; r < h; r++) {
    for (let k = 0; k < w; k++) {
      const t = hi > lo ? (img[r][k] - lo) / (hi - lo) : 0;
      const g = 250 - t * 220;
      const o = (r * w + k) * 4;
      data.data[o] = g;
      data.data[o + 1] = g;
      data.data[o + 2] = g;
      data.data[o + 3] = 255;
    }
  }
  ctx.putImageData(data, 0, 0);
}
