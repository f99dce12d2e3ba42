"""Every metric of the service, on a registry passed in (never the global
one, so tests can build many apps). Fixed label combinations start at zero,
so a rate() is defined before the first event and an alert can see it.

Names are ``api_…``: the gateway's are ``authgw_…``; the two sides of a hop
compare on one dashboard (authgw_unauthorized_total{source="upstream"} against
api_unauthorized_total).
"""

from __future__ import annotations

from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from .reasons import JWT_REASONS, REFRESH_OUTCOMES, UNAUTHORIZED_REASONS, UNAVAILABLE_REASONS

# Methods get their own label value; anything else is "other" (bounded labels).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Route label of a request that matched no route (never the raw path).
UNMATCHED_ROUTE = "unmatched"

# The names, written once; README.md's metrics table is checked against them.
NAMES = {
    "jwt_failures": "api_jwt_validation_failures_total",
    "unauthorized": "api_unauthorized_total",
    "unavailable": "api_auth_unavailable_total",
    "jwks_refreshes": "api_jwks_refreshes_total",
    "jwks_keys": "api_jwks_keys",
    "requests": "api_http_request_duration_seconds",
    "config": "api_config_info",
}


def _base(name: str) -> str:
    """prometheus_client adds `_total` to counters itself."""
    return name[: -len("_total")] if name.endswith("_total") else name


class Metrics:
    def __init__(self, registry: CollectorRegistry, *, config_labels: dict[str, str]):
        self.registry = registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.jwt_failures = Counter(
            _base(NAMES["jwt_failures"]),
            "Bearer JWTs rejected, by reason (the gateway's JWT reasons).",
            ["reason"],
            registry=registry,
        )
        self.unauthorized = Counter(
            _base(NAMES["unauthorized"]),
            "401 answers, by reason: the JWT reasons and no_credentials.",
            ["reason"],
            registry=registry,
        )
        self.unavailable = Counter(
            _base(NAMES["unavailable"]),
            "Requests answered 503 because the keys could not be loaded (never 401).",
            ["reason"],
            registry=registry,
        )
        self.jwks_refreshes = Counter(
            _base(NAMES["jwks_refreshes"]),
            "JWKS fetches by outcome; suppressed: an unknown kid inside the refresh cooldown.",
            ["outcome"],
            registry=registry,
        )
        self.jwks_keys = Gauge(NAMES["jwks_keys"], "Signing keys loaded from the JWKS.", registry=registry)
        self.requests = Histogram(
            NAMES["requests"],
            "Request duration by method, route template and status.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        config = Gauge(
            NAMES["config"],
            "Verification settings of this instance (1): compare with authgw_config_info.",
            ["issuer", "audience", "jwks_url", "algorithms"],
            registry=registry,
        )
        config.labels(**config_labels).set(1)
        for reason in JWT_REASONS:
            self.jwt_failures.labels(reason)
        for reason in UNAUTHORIZED_REASONS:
            self.unauthorized.labels(reason)
        for reason in UNAVAILABLE_REASONS:
            self.unavailable.labels(reason)
        for outcome in REFRESH_OUTCOMES:
            self.jwks_refreshes.labels(outcome)

    def rejected(self, reason: str) -> None:
        """A 401: every one on api_unauthorized_total, JWT ones also on the JWT counter."""
        self.unauthorized.labels(reason).inc()
        if reason in JWT_REASONS:
            self.jwt_failures.labels(reason).inc()

    def refreshed(self, outcome: str, keys: int, _seconds: float) -> None:
        self.jwks_refreshes.labels(outcome).inc()
        if outcome == "success":
            self.jwks_keys.set(keys)

    def observe_request(self, method: str, route: Optional[str], status: int, seconds: float) -> None:
        self.requests.labels(method if method in METHODS else "other", route or UNMATCHED_ROUTE, str(status)).observe(seconds)
