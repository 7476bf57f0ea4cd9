// Keys that work anywhere on the page (unless a field or a widget takes them): space starts or
// pauses training, the arrows step the open explainer, Escape closes the explainer and the
// compare view.

/** @param {{transport: object, explainer: object, compareView: object}} parts */
export function bindPageKeys({ transport, explainer, compareView }) {
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.defaultPrevented) return; // a widget (tabs, the network, a dialog) used the key
    if (t instanceof HTMLElement && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (e.key === " " && t instanceof HTMLElement && t.closest("button, a[href], summary")) return; // Space presses the focused button
    if (e.key === " " && !e.repeat) {
      e.preventDefault();
      transport.startOrPause();
    } else if (explainer.active && e.key === "ArrowRight") explainer.go(explainer.k + 1, true);
    else if (explainer.active && e.key === "ArrowLeft") explainer.go(explainer.k - 1, true);
    else if (e.key === "Escape") {
      if (explainer.active) explainer.close();
      if (!document.getElementById("compare").hidden) compareView.close();
    }
  });
}
