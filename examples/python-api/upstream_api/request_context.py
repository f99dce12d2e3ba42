"""Per-request correlation and the access line: the gateway's request id
(``X-Request-Id``) and W3C trace id (``traceparent``) are read once, echoed,
and written on the request's one JSON line together with the decision.

A pure ASGI middleware (not BaseHTTPMiddleware): it sees every request,
including 404s and unhandled errors, which it answers 500 itself so that the
request still gets exactly one line.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

from .metrics import Metrics

# The gateway's own pattern (src/server.ts): anything else is replaced.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# https://www.w3.org/TR/trace-context/#traceparent-header-field-values
TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def parse_traceparent(value: Optional[str]) -> Optional[tuple[str, str]]:
    """(trace id, parent span id) of a valid traceparent, else None."""
    if value is None:
        return None
    m = TRACEPARENT.match(value.strip())
    if m is None:
        return None
    version, trace_id, parent_id, _flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id, parent_id


@dataclass
class RequestContext:
    """What the access line reports; the auth step fills in the decision."""

    request_id: str
    trace_id: Optional[str] = None
    parent_span_id: Optional[str] = None
    outcome: Optional[str] = None  # allowed | denied | error (protected routes only)
    reason: Optional[str] = None
    user: Optional[str] = None
    kid: Optional[str] = None
    alg: Optional[str] = None
    detail: Optional[str] = None

    @classmethod
    def from_headers(cls, headers: list[tuple[bytes, bytes]]) -> "RequestContext":
        given: Optional[str] = None
        traceparent: Optional[str] = None
        for name, value in headers:
            if name == b"x-request-id" and given is None:
                given = value.decode("latin-1")
            elif name == b"traceparent" and traceparent is None:
                traceparent = value.decode("latin-1")
        request_id = given if given is not None and REQUEST_ID.match(given) else str(uuid.uuid4())
        ids = parse_traceparent(traceparent)
        return cls(request_id=request_id, trace_id=ids[0] if ids else None, parent_span_id=ids[1] if ids else None)


def context_of(scope: Scope) -> RequestContext:
    return scope["state"]["ctx"]


class RequestContextMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], *, logger: logging.Logger, metrics: Metrics):
        self.app = app
        self.logger = logger
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        ctx = RequestContext.from_headers(scope["headers"])
        scope.setdefault("state", {})["ctx"] = ctx
        status = 500
        response_started = False
        error: Optional[BaseException] = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", ctx.request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as err:  # noqa: BLE001 — answered and logged here, once
            error = err
            ctx.outcome = ctx.outcome or "error"
            if not response_started:
                body = json.dumps({"error": "internal_error", "requestId": ctx.request_id}).encode()
                await send_with_id(
                    {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            self._log(scope, ctx, route, status, seconds, error)

    def _log(self, scope: Scope, ctx: RequestContext, route: Optional[str], status: int, seconds: float, error: Optional[BaseException]) -> None:
        fields: dict[str, Any] = {
            "reqId": ctx.request_id,
            "method": scope["method"],
            "route": route,
            "path": scope["path"][:256],
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "outcome": ctx.outcome,
            "reason": ctx.reason,
            "user": ctx.user,
            "kid": ctx.kid,
            "alg": ctx.alg,
            "detail": ctx.detail,
            "trace_id": ctx.trace_id,
            "parent_span_id": ctx.parent_span_id,
        }
        line = {k: v for k, v in fields.items() if v is not None}
        if status >= 500:
            exc_info = (type(error), error, error.__traceback__) if error is not None else None
            self.logger.error("request", extra=line, exc_info=exc_info)
        else:
            self.logger.info("request", extra=line)
