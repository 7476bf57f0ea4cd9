"""GET /api/sessions over real HTTP, a page at a time: `limit` (default 100, at most 1,000),
an opaque `cursor` that keeps its place while sessions are created and deleted, newest first,
`configs=false` for a listing without the configs, `next_cursor` null on the last page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import LiveServer

XOR = {
    "dataset": {"name": "xor", "samples": 40},
    "layers": [{"type": "dense", "units": 2}, {"type": "dense", "units": 1}],
}


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """A client of a fresh server, so the listing holds only this test's sessions."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


def create(http: httpx.Client, count: int, prefix: str = "run") -> list[str]:
    """Create `count` sessions named prefix-0, prefix-1, ...; their ids in creation order."""
    ids = []
    for n in range(count):
        response = http.post("/api/sessions", json={"config": XOR, "name": f"{prefix}-{n}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def listing(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/api/sessions", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def walk(http: httpx.Client, **params: Any) -> list[list[str]]:
    """Every page's ids, following next_cursor to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = listing(http, **params, **({"cursor": cursor} if cursor else {}))
        pages.append([s["id"] for s in page["sessions"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "next_cursor never ends"


def fields_named(response: httpx.Response) -> list[str]:
    """The fields a 422 names (whichever of the two error shapes the server speaks)."""
    body = response.json()
    entries = body.get("errors") if isinstance(body.get("errors"), list) else body["detail"]
    return [entry["field"] for entry in entries]


def test_pages_follow_one_another_newest_first(http: httpx.Client) -> None:
    ids = create(http, 5)
    newest_first = ids[::-1]
    whole = listing(http)
    assert [s["id"] for s in whole["sessions"]] == newest_first
    assert whole["next_cursor"] is None
    assert walk(http, limit=2) == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    # a last page that is exactly full still says it is the last
    assert walk(http, limit=5) == [newest_first]
    assert walk(http, limit=1) == [[sid] for sid in newest_first]


def test_a_cursor_keeps_its_place_while_sessions_come_and_go(http: httpx.Client) -> None:
    ids = create(http, 6)
    newest_first = ids[::-1]
    first = listing(http, limit=2)
    assert [s["id"] for s in first["sessions"]] == newest_first[:2]
    cursor = first["next_cursor"]
    newer = create(http, 3, prefix="later")  # all of them newer than the first page
    http.delete(f"/api/sessions/{newest_first[0]}").raise_for_status()  # one already seen
    second = listing(http, limit=2, cursor=cursor)
    assert [s["id"] for s in second["sessions"]] == newest_first[2:4]
    third = listing(http, limit=2, cursor=second["next_cursor"])
    assert [s["id"] for s in third["sessions"]] == newest_first[4:6]
    assert third["next_cursor"] is None
    # a new listing starts at the newest again
    assert [s["id"] for s in listing(http, limit=3)["sessions"]] == newer[::-1]


def test_configs_false_leaves_out_the_configs_only(http: httpx.Client) -> None:
    create(http, 2)
    full = listing(http)["sessions"]
    light = listing(http, configs="false")["sessions"]
    assert all("config" not in s for s in light)
    assert [{k: v for k, v in s.items() if k != "config"} for s in full] == light
    assert full[0]["config"]["layers"][0]["units"] == 2
    assert http.get(f"/api/sessions/{full[0]['id']}").json() == full[0]


def test_limit_defaults_to_100_and_reaches_1000(http: httpx.Client) -> None:
    ids = create(http, 101)
    first = listing(http, configs="false")
    assert [s["id"] for s in first["sessions"]] == ids[::-1][:100]
    rest = listing(http, cursor=first["next_cursor"])
    assert [s["id"] for s in rest["sessions"]] == [ids[0]] and rest["next_cursor"] is None
    everything = listing(http, limit=1000, configs="false")
    assert len(everything["sessions"]) == 101 and everything["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # valid base64 JSON [1, 2], not a position
        ({"configs": "maybe"}, "configs"),
    ],
)
def test_bad_paging_parameters_are_422_naming_the_field(
    http: httpx.Client, params: dict[str, Any], field: str
) -> None:
    response = http.get("/api/sessions", params=params)
    assert response.status_code == 422, response.text
    assert fields_named(response) == [field]
