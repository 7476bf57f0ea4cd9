"""The set-up form takes its defaults, bounds and live-changeable fields from the server (GET
/api/schema, built from engine.config), so the numbers the page shows are the engine's own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.config import (
    ClipConfig,
    DenseLayer,
    EarlyStoppingConfig,
    HyperparameterUpdate,
    RunConfig,
)
from server.schemas import MAX_NAME_LENGTH
from tests.browser.helpers import open_page, url_for_config
from tests.support import LiveServer

pytestmark = pytest.mark.browser

# Only what the config requires: everything else the form shows must be the engine's default.
MINIMAL = {
    "dataset": {"name": "xor"},
    "layers": [
        {"type": "dense", "units": 3},
        {"type": "dense", "units": 1, "activation": "sigmoid"},
    ],
}
# Every field of the form (layers aside): its config path, type, value, min, max, step, live mark.
FORM_JS = """() => [...document.querySelectorAll('#config-form [data-field][data-type]')]
  .filter((i) => !i.dataset.field.startsWith('layers['))
  .map((i) => ({field: i.dataset.field, type: i.type, value: i.type === 'checkbox' ? i.checked : i.value,
                min: i.getAttribute('min'), max: i.getAttribute('max'), step: i.getAttribute('step'),
                live: i.dataset.live || null, rowLive: i.closest('.row').classList.contains('live')}))"""


def engine_defaults() -> dict[str, Any]:
    """The form's reading of MINIMAL, from the engine: a switched-off part shows its defaults."""
    doc = RunConfig.model_validate(MINIMAL).model_dump(mode="json")
    doc["gradient_clip"] = {**ClipConfig().model_dump(mode="json"), "kind": "off"}
    doc["early_stopping"] = {**EarlyStoppingConfig().model_dump(mode="json"), "enabled": False}
    return doc


def lookup(doc: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        doc = doc[part]
    return doc


def field_schema(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The JSON Schema node of a config path (following $ref and optional objects)."""
    defs = schema["$defs"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in node:
            return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
        for branch in node.get("anyOf", []):
            if "$ref" in branch:
                return resolve(branch)
        return node

    node = schema
    for part in path.split("."):
        node = resolve(node)["properties"][part]
    return resolve(node) if "$ref" in node else node


def same_number(shown: str | None, expected: float | None) -> bool:
    if expected is None:
        return shown is None
    return shown is not None and float(shown) == pytest.approx(expected, rel=1e-12)


def test_the_form_shows_the_engines_defaults_bounds_and_live_fields(
    shared_server: LiveServer, page: Any
) -> None:
    served = httpx.get(f"{shared_server.url}/api/schema", timeout=10).json()
    assert served["config"] == {
        **RunConfig.model_json_schema(),
        "properties": served["config"]["properties"],
    }
    hot = served["hot"]
    assert set(hot) == set(HyperparameterUpdate.model_fields)
    assert hot["batch_size"] == "batch_size" and hot["momentum"] == "optimizer.momentum"
    assert served["name_max_length"] == MAX_NAME_LENGTH

    open_page(page, url_for_config(shared_server.url, MINIMAL))
    fields = page.evaluate(FORM_JS)
    assert len(fields) >= 30
    defaults = engine_defaults()
    for f in fields:
        path = f["field"]
        expected = lookup(defaults, path)
        if f["type"] == "checkbox":
            assert f["value"] == expected, path
        elif f["type"] in ("number", "range"):
            assert float(f["value"]) == pytest.approx(expected), path
        else:
            assert f["value"] == expected, path
        # the PATCH-able fields are marked live, and only they
        live = next((n for n, p in hot.items() if path == p or path.startswith(p + ".")), None)
        assert (f["live"], f["rowLive"] or None) == (live, live and True), path
        if f["type"] not in ("number", "range") or path == "early_stopping.enabled":
            continue
        node = field_schema(served["config"], path)
        low = node.get("minimum", node.get("exclusiveMinimum"))
        high = node.get("maximum")
        if high is None and "exclusiveMaximum" in node and f["step"] != "any":
            high = node["exclusiveMaximum"] - float(f["step"])  # the last step below the bound
        assert same_number(f["min"], low), (path, f["min"], node)
        assert same_number(f["max"], high), (path, f["max"], node)
    # a new layer starts with the engine's defaults (a size the engine requires: the page's)
    page.click("#add-layer")
    row = page.locator("#layers .layer-item").nth(1)
    dense = DenseLayer.model_json_schema()["properties"]
    assert (
        row.locator("[data-field$='.activation']").input_value() == dense["activation"]["default"]
    )
    units = row.locator("[data-field$='.units']")
    assert same_number(units.get_attribute("min"), dense["units"]["minimum"])
    assert same_number(units.get_attribute("max"), dense["units"]["maximum"])
    assert page.console_errors == []
