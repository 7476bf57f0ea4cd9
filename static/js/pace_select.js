// A pace <select> (steps per second, or "max" for full speed): the header's speed control and the
// compare view's pace both read and set it this way, so a lesson's own pace shows in the list.

import { el, fmtInt } from "./util.js";

/** Steps per second the select asks for, or null for full speed. */
export function selectedPace(select) {
  return select.value === "max" ? null : Number(select.value);
}

/** Put the select at `pace` steps/s (null: full speed), adding that option in order when it is not listed. */
export function showPace(select, pace) {
  const value = pace ? String(pace) : "max";
  if (![...select.options].some((o) => o.value === value)) {
    const before = [...select.options].find((o) => o.value === "max" || Number(o.value) > pace);
    select.insertBefore(el("option", { value, text: `${fmtInt(pace)} steps/s` }), before || null);
  }
  select.value = value;
}
