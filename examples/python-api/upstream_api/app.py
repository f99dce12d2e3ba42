"""The FastAPI app: routes, the bearer check on protected routes, and the one
way to deny (status, body, header, counters and log fields in one place).

Built from its parts (config, verifier, key store, metrics, logger) and never
listening: __main__ runs it under uvicorn, tests under TestClient.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder
from starlette.exceptions import HTTPException

from .config import Config
from .jwks import JwksClient, JwksUnavailableError
from .metrics import Metrics
from .reasons import JWKS_UNAVAILABLE, NO_CREDENTIALS
from .request_context import RequestContextMiddleware
from .verify import TokenRejected, Verified, Verifier

RETRY_AFTER_SECONDS = "5"


class Denied(Exception):
    """A request the auth step refuses: 401 with a reason, or 503 jwks_unavailable."""

    def __init__(self, status: int, reason: str, *, kid: Optional[str] = None, alg: Optional[str] = None, detail: Optional[str] = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.kid = kid
        self.alg = alg
        self.detail = detail


def bearer_token(authorization: Optional[str]) -> Optional[str]:
    """The token of ``Authorization: Bearer <token>`` (scheme case-insensitive, RFC 7235)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def build_app(*, config: Config, jwks: JwksClient, verifier: Verifier, metrics: Metrics, logger: logging.Logger) -> FastAPI:
    app = FastAPI(title="authgw example upstream (Python)", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestContextMiddleware, logger=logger, metrics=metrics)

    def authenticate(request: Request) -> Verified:
        """The verified JWT of the request, or Denied. Sync: FastAPI runs it in
        its thread pool, where a JWKS fetch may block up to JWKS_TIMEOUT_SECONDS."""
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Denied(401, NO_CREDENTIALS)
        try:
            verified = verifier.verify(token)
        except TokenRejected as rejected:
            raise Denied(401, rejected.reason, kid=rejected.kid, alg=rejected.alg) from None
        except JwksUnavailableError as err:
            raise Denied(503, JWKS_UNAVAILABLE, detail=str(err)) from None
        ctx = request.state.ctx
        ctx.outcome = "allowed"
        ctx.user = verified.claims["sub"]
        ctx.kid = verified.kid
        ctx.alg = verified.alg
        return verified

    @app.exception_handler(Denied)
    async def deny(request: Request, denied: Denied) -> JSONResponse:
        ctx = request.state.ctx
        ctx.reason = denied.reason
        ctx.kid = denied.kid
        ctx.alg = denied.alg
        ctx.detail = denied.detail
        if denied.status == 503:
            ctx.outcome = "error"
            metrics.unavailable.labels(denied.reason).inc()
            body = {"error": "service_unavailable", "reason": denied.reason, "requestId": ctx.request_id}
            return JSONResponse(body, status_code=503, headers={"retry-after": RETRY_AFTER_SECONDS})
        ctx.outcome = "denied"
        metrics.rejected(denied.reason)
        # RFC 6750 §3.1: no error code when no credentials were sent.
        challenge = 'Bearer realm="api"' if denied.reason == NO_CREDENTIALS else 'Bearer realm="api", error="invalid_token"'
        body = {"error": "unauthorized", "reason": denied.reason, "requestId": ctx.request_id}
        return JSONResponse(body, status_code=401, headers={"www-authenticate": challenge})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        reason = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "bad_request")
        body = {"error": reason, "reason": reason, "requestId": request.state.ctx.request_id}
        return JSONResponse(body, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, _err: RequestValidationError) -> JSONResponse:
        body = {"error": "bad_request", "reason": "bad_request", "requestId": request.state.ctx.request_id}
        return JSONResponse(body, status_code=400)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        # Ready once keys are loaded; an outage after that keeps the loaded keys working.
        if jwks.loaded:
            return JSONResponse({"status": "ready", "keys": jwks.key_count})
        return JSONResponse({"status": "not_ready", "reason": JWKS_UNAVAILABLE}, status_code=503)

    @app.get("/metrics")
    async def metrics_route(request: Request) -> Response:
        # Not under /api/: the gateway never proxies it. Scrape the port directly.
        encoder, content_type = choose_encoder(request.headers.get("accept"))
        return Response(encoder(metrics.registry), media_type=content_type)

    api = APIRouter(prefix="/api")

    @api.get("/public/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    @api.get("/me")
    async def me(identity: Verified = Depends(authenticate)) -> dict[str, Any]:
        """The identity the gateway vouched for, as the demo upstream answers it."""
        claims = identity.claims
        return {
            "id": claims["sub"],
            "email": claims.get("email"),
            "name": claims.get("name"),
            "sessionId": claims.get("sid"),
            "issuer": claims.get("iss"),
            "expiresAt": claims.get("exp"),
        }

    app.include_router(api)
    return app
