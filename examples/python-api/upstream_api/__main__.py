"""Entry point: logging → configuration (with the JWKS check) → app → uvicorn.

    cd examples/python-api && JWKS_URL=… JWT_ISSUER=… JWT_AUDIENCE=… /usr/bin/python3 -m upstream_api

Exits 1 with one JSON line listing every configuration problem.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, Optional

import uvicorn
from prometheus_client import CollectorRegistry

from .app import build_app
from .config import ConfigError, load_config, redact_url
from .jwks import JwksClient, probe_jwks
from .logs import LEVELS, configure_logging, log_config
from .metrics import Metrics
from .verify import Verifier


def main(env: Mapping[str, str]) -> int:
    requested_level = env.get("LOG_LEVEL", "info").strip().lower()
    level = requested_level if requested_level in LEVELS else "info"
    logger = configure_logging(level)

    fetched: dict[str, Optional[dict[str, Any]]] = {}

    def probe(url: str, algorithms: tuple[str, ...], timeout: float) -> list[str]:
        problems, fetched["jwks"] = probe_jwks(url, algorithms, timeout)
        return problems

    try:
        config = load_config(env, probe=probe)
    except ConfigError as err:
        logger.critical("configuration invalid", extra={"event": "config_invalid", "problems": err.problems})
        return 1

    jwks_url = redact_url(config.jwks_url)
    metrics = Metrics(
        CollectorRegistry(),
        config_labels={"issuer": config.issuer, "audience": config.audience, "jwks_url": jwks_url, "algorithms": ",".join(config.algorithms)},
    )
    jwks = JwksClient(
        config.jwks_url,
        timeout=config.jwks_timeout_seconds,
        refresh_interval=config.jwks_refresh_interval_seconds,
        cooldown=config.jwks_refresh_cooldown_seconds,
        on_refresh=metrics.refreshed,
        initial=fetched.get("jwks"),
    )
    metrics.refreshed("success", jwks.key_count, 0.0)
    verifier = Verifier(jwks, issuer=config.issuer, audience=config.audience, algorithms=config.algorithms, leeway=config.leeway_seconds)
    app = build_app(config=config, jwks=jwks, verifier=verifier, metrics=metrics, logger=logger)
    logger.info(
        "starting",
        extra={
            "event": "start",
            "host": config.host,
            "port": config.port,
            "jwks_url": jwks_url,
            "jwks_keys": jwks.key_count,
            "issuer": config.issuer,
            "audience": config.audience,
            "algorithms": list(config.algorithms),
        },
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=log_config(level),
            access_log=False,  # one line per request comes from RequestContextMiddleware
            server_header=False,
            proxy_headers=False,  # X-Forwarded-* are the gateway's business, not trusted here
            lifespan="off",
        )
    )
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main(os.environ))
