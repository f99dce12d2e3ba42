"""One JSON line per request, carrying the gateway's request id and trace id,
and never a token."""

from __future__ import annotations

import json
import re

import pytest

from upstream_api.request_context import parse_traceparent

from conftest import Service

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_one_line_per_request_with_request_id_and_trace_id(service: Service) -> None:
    good = service.tokens.make()
    bad = service.tokens.make(claims={"aud": "http://other-api.test"})
    requests = [
        ("/api/me", {"authorization": f"Bearer {good}"}, 200),
        ("/api/me", {"authorization": f"Bearer {bad}"}, 401),
        ("/api/me", {}, 401),
        ("/healthz", {}, 200),
        ("/api/nothing-here", {}, 404),
    ]
    for i, (path, headers, status) in enumerate(requests):
        res = service.client.get(path, headers={**headers, "x-request-id": f"gw-{i}", "traceparent": TRACEPARENT})
        assert res.status_code == status, res.text
        assert res.headers["x-request-id"] == f"gw-{i}"
    lines = service.logs.requests()
    assert len(lines) == len(requests), "exactly one line per request"
    assert len(service.logs.lines) == len(requests), "and no other line"
    for i, line in enumerate(lines):
        assert line["reqId"] == f"gw-{i}"
        assert line["trace_id"] == TRACE_ID
        assert line["parent_span_id"] == PARENT_ID
        assert line["msg"] == "request" and line["level"] == 30 and line["service"] == "python-api"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line["time"])
        assert isinstance(line["duration_ms"], float)
    assert lines[0]["route"] == "/api/me" and lines[0]["outcome"] == "allowed"
    assert lines[1]["reason"] == "audience_mismatch"
    assert lines[2]["reason"] == "no_credentials"
    assert "outcome" not in lines[3], "unprotected routes make no auth decision"
    assert "route" not in lines[4] and lines[4]["path"] == "/api/nothing-here"
    assert service.sample("api_http_request_duration_seconds_count", {"method": "GET", "route": "unmatched", "status": "404"}) == 1


def test_no_token_reaches_a_log_line(service: Service) -> None:
    tokens = [service.tokens.make(), service.tokens.make(claims={"exp": 1}), "opaque-secret-token-value"]
    for token in tokens:
        service.client.get("/api/me?token=" + token, headers={"authorization": f"Bearer {token}", "cookie": "session=cookie-secret"})
    output = "\n".join(service.logs.lines)
    for token in tokens:
        assert token not in output
        for part in token.split("."):
            if len(part) > 16:
                assert part not in output
    assert "cookie-secret" not in output
    assert all(line["path"] == "/api/me" for line in service.logs.requests()), "query strings are not logged"


def test_a_missing_or_invalid_request_id_is_replaced(service: Service) -> None:
    service.client.get("/healthz")
    service.client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    first, second = service.logs.requests()
    assert UUID.match(first["reqId"]) and UUID.match(second["reqId"])
    assert "trace_id" not in first


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # version ff is invalid
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # upper case
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
    ],
)
def test_invalid_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_future_traceparent_versions_are_read() -> None:
    assert parse_traceparent(f"01-{TRACE_ID}-{PARENT_ID}-00-more") == (TRACE_ID, PARENT_ID)
    assert parse_traceparent(TRACEPARENT) == (TRACE_ID, PARENT_ID)


def test_an_unhandled_error_is_a_500_with_one_line(service: Service) -> None:
    @service.client.app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    res = service.client.get("/boom", headers={"x-request-id": "gw-boom"})
    assert res.status_code == 500
    assert res.json() == {"error": "internal_error", "requestId": "gw-boom"}
    (line,) = service.logs.requests()
    assert line["level"] == 50 and line["status"] == 500 and line["outcome"] == "error"
    assert line["err"]["type"] == "RuntimeError" and "kaboom" in line["err"]["stack"]
    assert len(service.logs.lines) == 1
    json.dumps(line)
