// Keyboard and screen-reader wiring that spans the page: every role="tablist" follows the ARIA tabs
// pattern (one tab stop, arrow keys, aria-selected kept in step with the "active" class the views
// toggle), the compare dialog takes focus when it opens, keeps it inside and gives it back when it
// closes, and focus leaving the explainer or a popover with them lands somewhere visible.
// The views keep their own click handlers; this module only follows the DOM they write.

const FOCUSABLE = "button, [href], input, select, textarea, [tabindex]:not([tabindex='-1'])";

/** Whether an element is rendered and can take focus right now. */
export function canFocus(node) {
  return node instanceof HTMLElement && node !== document.body && node.isConnected && !node.disabled && node.getClientRects().length > 0;
}

/** The focusable elements inside `root`, in tab order (document order; no positive tabindex here). */
export function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter((n) => n.tabIndex >= 0 && canFocus(n));
}

/**
 * ARIA tabs on a tablist whose tabs are its buttons: the selected tab (class "active") is the only
 * tab stop; Left/Right (and Up/Down), Home and End move focus and select, like a click does.
 * `panel(tab)` names the element a tab controls when the markup does not say.
 */
export function ariaTabs(list, panel = null) {
  const tabs = () => [...list.querySelectorAll("button")];
  const sync = () => {
    const all = tabs();
    const usable = all.filter((t) => !t.hidden);
    const selected = usable.find((t) => t.classList.contains("active")) || null;
    const stop = selected || usable[0] || null;
    for (const t of all) {
      if (t.getAttribute("role") !== "tab") t.setAttribute("role", "tab");
      const on = t === selected ? "true" : "false";
      if (t.getAttribute("aria-selected") !== on) t.setAttribute("aria-selected", on);
      const index = t === stop ? 0 : -1;
      if (t.tabIndex !== index) t.tabIndex = index;
      if (panel && !t.hasAttribute("aria-controls")) {
        const id = panel(t);
        if (id) t.setAttribute("aria-controls", id);
      }
    }
  };
  list.addEventListener("keydown", (e) => {
    const usable = tabs().filter((t) => !t.hidden && !t.disabled);
    const k = usable.indexOf(e.target);
    if (k < 0 || e.altKey || e.ctrlKey || e.metaKey) return;
    const n = usable.length;
    let next = null;
    if (e.key === "ArrowRight" || e.key === "ArrowDown") next = usable[(k + 1) % n];
    else if (e.key === "ArrowLeft" || e.key === "ArrowUp") next = usable[(k - 1 + n) % n];
    else if (e.key === "Home") next = usable[0];
    else if (e.key === "End") next = usable[n - 1];
    if (!next) return;
    e.preventDefault(); // also tells the page's shortcuts (explainer arrows) the key is taken
    next.focus();
    if (!next.classList.contains("active")) next.click();
  });
  // the views switch tabs by toggling classes (and rebuild some lists): follow them
  new MutationObserver(sync).observe(list, { subtree: true, childList: true, attributes: true, attributeFilter: ["class", "hidden"] });
  sync();
}

/**
 * A modal overlay (shown and hidden through its `hidden` attribute by someone else): focus moves to
 * its first control when it opens, Tab and Shift+Tab stay inside, Escape presses `closeButton`, and
 * focus returns to where it was (or to `fallback()`) when it closes.
 */
export function modalFocus(overlay, closeButton, fallback) {
  let opener = null;
  let open = !overlay.hidden;
  new MutationObserver(() => {
    if (!overlay.hidden && !open) {
      open = true;
      // (a lesson opened from its list item leaves focus on <body>: the list hides meanwhile)
      opener = canFocus(document.activeElement) ? document.activeElement : null;
      const first = focusables(overlay)[0];
      (first || closeButton).focus();
    } else if (overlay.hidden && open) {
      open = false;
      const back = opener;
      opener = null;
      const here = document.activeElement;
      if (here && here !== document.body && !overlay.contains(here)) return; // the user moved on
      const target = canFocus(back) && !overlay.contains(back) ? back : fallback ? fallback() : null;
      if (target) target.focus();
    }
  }).observe(overlay, { attributes: true, attributeFilter: ["hidden"] });
  overlay.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      closeButton.click();
      return;
    }
    if (e.key !== "Tab") return;
    const list = focusables(overlay);
    if (!list.length) return;
    const k = list.indexOf(document.activeElement);
    if (e.shiftKey && k <= 0) {
      e.preventDefault();
      list[list.length - 1].focus();
    } else if (!e.shiftKey && (k === list.length - 1 || k < 0)) {
      e.preventDefault();
      list[0].focus();
    }
  });
}

/** When `region` hides while focus is inside it, focus `target()` instead of losing it to <body>. */
export function returnFocusOnHide(region, target) {
  let inside = false;
  region.addEventListener("focusin", () => (inside = true));
  region.addEventListener("focusout", (e) => (inside = region.contains(e.relatedTarget)));
  new MutationObserver(() => {
    if (!region.hidden || !inside) return;
    inside = false;
    const here = document.activeElement;
    if (here && here !== document.body && !region.contains(here)) return;
    const t = target();
    if (canFocus(t)) t.focus();
  }).observe(region, { attributes: true, attributeFilter: ["hidden"] });
}

/** The page's tablists, the compare dialog and the explainer's focus return. */
export function initA11y() {
  const $ = (id) => document.getElementById(id);
  for (const list of document.querySelectorAll("[role='tablist']")) {
    ariaTabs(list, list.id === "bn-layers" ? () => "bn-body" : null);
  }
  const selectedLeftTab = () => document.querySelector(".tabs [aria-selected='true']");
  modalFocus($("compare"), $("compare-close"), () => {
    const lesson = $("learn-compare");
    return canFocus(lesson) ? lesson : canFocus($("compare-runs")) ? $("compare-runs") : selectedLeftTab();
  });
  returnFocusOnHide($("explainer"), () => $("explain-btn"));
}
