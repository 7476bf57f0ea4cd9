"""The page's REST client (static/js/api.js) reads the server's problem bodies (docs/errors.md):
every failed call is an ApiError with the status, the problem's code and detail, and the fields
it names (or the detail alone when it names none)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.helpers import session_id

pytestmark = pytest.mark.browser

CALLS = """async (sid) => {
  const { api, ApiError } = await import("/static/js/api.js");
  const caught = async (call) => {
    try {
      await call;
      return null;
    } catch (e) {
      const { status, code, detail, message, errors } = e;
      return { apiError: e instanceof ApiError, status, code, detail, message, errors };
    }
  };
  const out = {};
  out.step = await caught(api.step(sid, "5"));
  out.missing = await caught(api.session("no-such-id"));
  await api.start(sid);
  out.running = await caught(api.start(sid));
  await api.stop(sid);
  return out;
}"""


def test_a_failed_call_carries_the_problem_code_detail_and_fields(lens: Any) -> None:
    page = lens
    got = page.evaluate(CALLS, session_id(page))
    message = "must be an integer, got '5'"
    assert got["step"] == {
        "apiError": True,
        "status": 422,
        "code": "validation_error",
        "detail": f"steps: {message}",
        "message": f"steps: {message}",
        "errors": [{"field": "steps", "message": message, "code": "int_type"}],
    }
    missing = "no session with id 'no-such-id'"
    assert got["missing"] == {
        "apiError": True,
        "status": 404,
        "code": "not_found",
        "detail": missing,
        "message": missing,
        "errors": [{"field": "", "message": missing, "code": "not_found"}],
    }
    running = got["running"]
    assert (running["status"], running["code"]) == (409, "session_running"), running
    assert running["message"] == running["detail"] and "already running" in running["detail"]
