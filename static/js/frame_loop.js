// The ONE requestAnimationFrame loop of the page. Messages and REST answers only mark the store
// dirty; each frame applies everything that arrived since the last one (the status line ~15 times
// a second, charts ~10), then advances the animations and repaints what changed.

const STATUS_INTERVAL_MS = 66; // status line and gradient bars: ~15 updates a second

/** {name: {grad_norm}} of a history's newest step (the layers' last recorded norms). */
function lastRow(history) {
  const out = {};
  const n = history.step.length;
  if (!n) return out;
  for (const [name, cols] of Object.entries(history.layers)) out[name] = { name, grad_norm: cols.grad_norm[n - 1] };
  return out;
}

/**
 * Start the loop over the page's parts: store, status (StatusLine), health, view, dataView,
 * histograms, chartPanel, compareView, predictions, pulse, explainer, and for external runs
 * external (ExternalMode) and extView (ExternalView), which replace the engine's views.
 */
export function startFrameLoop(parts) {
  const { store, status, health, view, dataView, histograms, chartPanel, compareView, predictions, pulse, explainer, external, extView } = parts;
  let lastStatus = 0;
  let lastHistory = null;
  let lastLayers = null; // the per-layer stats the external view last showed (one object per metrics frame)

  function frame(now) {
    try {
      const d = store.dirty;
      if (d.session) {
        d.session = false;
        status.renderSession();
      }
      if (d.latest && now - lastStatus >= STATUS_INTERVAL_MS) {
        d.latest = false;
        lastStatus = now;
        status.renderLatest();
      }
      if (d.events) {
        d.events = false;
        status.renderEvents();
      }
      if (d.connection) {
        d.connection = false;
        status.renderConnection(() => health.check()); // a dropped stream: is the server gone?
      }
      if (d.data) {
        d.data = false;
        dataView.setData(store.data);
        if (dataView.kind === "image" && store.data) {
          const s = dataView.gallerySamples(1)[0];
          if (s) view.setInputImage(Array.isArray(s.x[0][0]) ? s.x[0] : s.x);
        }
        predictions.reset();
      }
      if (external.active) {
        // an external run: its histograms, its topology drawing and a sweep per metrics frame
        if (d.snapshot) {
          d.snapshot = false;
          histograms.setSnapshot(store.snapshot);
        }
        if (store.latestLayers !== lastLayers) {
          lastLayers = store.latestLayers;
          if (Object.keys(lastLayers).length) extView.setLayerStats(lastLayers);
        } else if (store.history !== lastHistory) {
          // a run opened between two frames of its script (or finished): its last recorded norms
          lastHistory = store.history;
          if (!Object.keys(lastLayers).length) extView.setLayerStats(lastRow(store.history));
        }
        external.render();
        extView.render(now);
      } else if (d.snapshot) {
        d.snapshot = false;
        const snap = store.snapshot;
        if (!explainer.active) view.setSnapshot(snap);
        else view.snap = snap;
        dataView.setGrid(snap ? snap.grid : null);
        histograms.setSnapshot(snap);
        if (pulse.enabled && !explainer.active) pulse.trigger();
        predictions.soon(now);
      }
      chartPanel.frame(now);
      compareView.frame(now);
      if (!external.active) {
        predictions.refresh(now);
        pulse.frame(now);
        explainer.frame(now);
        view.render(now);
        dataView.render();
      }
    } catch (err) {
      console.error(err); // eslint-disable-line no-console
    }
    requestAnimationFrame(frame);
  }

  requestAnimationFrame(frame);
}
