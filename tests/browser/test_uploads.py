"""The uploads the server keeps, on the real page: listed under "Your data" with their rows,
columns, task and size, offered in the Dataset menu after a reload, deleted with their Delete
button, and a refusal in plain words while a run trains on one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.helpers import XOR_2_8_8_1, open_page, session_id, url_for_config
from tests.support import LiveServer

pytestmark = pytest.mark.browser

TABLE = "height,width,depth,kind\n" + "".join(
    f"{i % 7 - 3},{(i * 3) % 5 - 2},{(i % 4) / 4},{i % 2}\n" for i in range(60)
)


def upload_csv(base: str, name: str, text: str) -> dict[str, Any]:
    answer = httpx.post(f"{base}/api/datasets/upload", files={"file": (name, text)}, timeout=10)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def listed(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#upload-list li", "lis => lis.map(l => l.textContent)"))


def test_stored_uploads_are_listed_offered_and_deleted_from_the_page(
    shared_server: LiveServer, page: Any
) -> None:
    base = shared_server.url
    up = upload_csv(base, "boxes.csv", TABLE)
    open_page(page, url_for_config(base, XOR_2_8_8_1))
    page.wait_for_selector(f"#upload-list li[data-upload='{up['id']}']", timeout=10_000)
    (text,) = [t for t in listed(page) if "boxes.csv" in t]
    assert "60 rows, 3 columns, two classes" in text and "Delete" in text
    catalogue = httpx.get(f"{base}/api/datasets/uploads", timeout=10).json()
    (entry,) = [u for u in catalogue["uploads"] if u["id"] == up["id"]]
    assert f"{entry['bytes'] / 1000:.1f} KB" in text  # the stored (decompressed) size
    options = page.eval_on_selector_all("#f-dataset option", "os => os.map(o => o.value)")
    assert up["name"] in options  # a reloaded page can train on it again

    config = {**XOR_2_8_8_1, "dataset": {"name": up["name"]}}
    config.pop("features", None)
    run = httpx.post(f"{base}/api/sessions", json={"config": config}, timeout=10).json()
    page.click(f"#upload-list button[data-upload='{up['id']}']")
    page.wait_for_selector("#upload-error:not([hidden])", timeout=10_000)
    refusal = page.text_content("#upload-error") or ""
    assert f"boxes.csv is used by a run (run {run['id']}); delete that run first" in refusal
    assert any("boxes.csv" in t for t in listed(page))

    assert httpx.delete(f"{base}/api/sessions/{run['id']}", timeout=10).status_code == 204
    page.click(f"#upload-list button[data-upload='{up['id']}']")
    page.wait_for_function(
        "(id) => !document.querySelector(`#upload-list li[data-upload='${id}']`)", arg=up["id"]
    )
    assert page.is_hidden("#upload-error")
    options = page.eval_on_selector_all("#f-dataset option", "os => os.map(o => o.value)")
    assert up["name"] not in options
    remaining = httpx.get(f"{base}/api/datasets/uploads", timeout=10).json()["uploads"]
    assert up["id"] not in [u["id"] for u in remaining]
    assert [e for e in page.console_errors if "409" not in e] == []


def test_a_table_uploaded_on_the_page_is_listed_and_trains_on_its_columns(
    shared_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    open_page(page, url_for_config(shared_server.url, XOR_2_8_8_1))
    old = session_id(page)
    path = tmp_path / "shapes.csv"
    path.write_text(TABLE)
    page.set_input_files("#upload-file", str(path))
    page.wait_for_function("(old) => window.__bl.store.session.id !== old", arg=old, timeout=15_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#upload-list li')].some(l => l.textContent.includes('shapes.csv'))",
        timeout=10_000,
    )
    sid = session_id(page)
    config = httpx.get(f"{shared_server.url}/api/sessions/{sid}", timeout=10).json()["config"]
    assert "features" not in config  # its three columns are the inputs, as they are
    assert config["dataset"]["name"].startswith("upload:")
    assert page.console_errors == []
