"""Real parts for the service's tests: keys generated here (Ed25519, as the
gateway signs by default, and RSA), a JWKS served over a real local HTTP
server that can be switched to failing or hanging, tokens signed with PyJWT,
and the app built from its real parts with its log lines captured as JSON.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator, Optional

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from prometheus_client import CollectorRegistry

from upstream_api.app import build_app
from upstream_api.config import load_config
from upstream_api.jwks import JwksClient, probe_jwks
from upstream_api.logs import JsonFormatter
from upstream_api.metrics import Metrics
from upstream_api.verify import Verifier

ISSUER = "http://gateway.test:3000"
AUDIENCE = "http://gateway.test:3000"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        body = OKPAlgorithm.to_jwk(public) if self.alg == "EdDSA" else RSAAlgorithm.to_jwk(public)
        return {**json.loads(body), "kid": self.kid, "alg": self.alg, "use": "sig"}


@pytest.fixture(scope="session")
def ed_key() -> SigningKey:
    return SigningKey("ed-1", "EdDSA", Ed25519PrivateKey.generate())


@pytest.fixture(scope="session")
def rs_key() -> SigningKey:
    return SigningKey("rs-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


class JwksServer:
    """A JWKS over real HTTP on 127.0.0.1; `mode` switches it between answering
    (ok), failing (error: HTTP 500) and hanging past any client timeout (hang)."""

    def __init__(self, keys: list[dict[str, Any]]):
        self.keys = keys
        self.mode = "ok"
        self.fetches = 0
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.fetches += 1
                if server.mode == "hang":
                    server._release.wait(10)
                    return
                if server.mode == "error":
                    self.send_response(500)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/auth/jwks"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks_server(ed_key: SigningKey, rs_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer([ed_key.jwk(), rs_key.jwk()])
    yield server
    server.close()


class ListHandler(logging.Handler):
    """Formats with the service's JsonFormatter and keeps each line."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def requests(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["msg"] == "request"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Service:
    client: TestClient
    registry: CollectorRegistry
    logs: ListHandler
    jwks: JwksClient
    clock: FakeClock
    tokens: "Tokens"

    def sample(self, name: str, labels: Optional[dict[str, str]] = None) -> float:
        value = self.registry.get_sample_value(name, labels or {})
        assert value is not None, f"{name}{labels or ''} is not exposed"
        return value

    def counters(self) -> dict[tuple[str, str], float]:
        """Every series of the auth counters, for diffs: (name, label value) → value."""
        out = {}
        for metric in self.registry.collect():
            for s in metric.samples:
                if s.name in ("api_jwt_validation_failures_total", "api_unauthorized_total", "api_auth_unavailable_total", "api_jwks_refreshes_total"):
                    out[(s.name, next(iter(s.labels.values())))] = s.value
        return out


@dataclass
class Tokens:
    ed: SigningKey
    rs: SigningKey
    issued: list[str] = field(default_factory=list)

    def make(
        self,
        key: Optional[SigningKey] = None,
        *,
        claims: Optional[dict[str, Any]] = None,
        drop: tuple[str, ...] = (),
        headers: Optional[dict[str, Any]] = None,
        alg: Optional[str] = None,
        signer: Any = None,
    ) -> str:
        key = key or self.ed
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": "user-123",
            "email": "ada@example.test",
            "name": "Ada",
            "sid": "session-9",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 900,
            **(claims or {}),
        }
        for name in drop:
            body.pop(name, None)
        token = jwt.encode(body, signer if signer is not None else key.private, algorithm=alg or key.alg, headers={"kid": key.kid, **(headers or {})})
        self.issued.append(token)
        return token


ServiceFactory = Callable[..., Service]


@pytest.fixture
def make_service(jwks_server: JwksServer, ed_key: SigningKey, rs_key: SigningKey) -> Iterator[ServiceFactory]:
    clients: list[TestClient] = []

    def factory(**env_overrides: str) -> Service:
        env = {
            "JWKS_URL": jwks_server.url,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "JWT_ALGORITHMS": "EdDSA,RS256",
            "JWKS_TIMEOUT_SECONDS": "0.5",
            **env_overrides,
        }
        fetched: dict[str, Any] = {}

        def probe(url: str, algorithms: tuple[str, ...], timeout: float) -> list[str]:
            problems, fetched["jwks"] = probe_jwks(url, algorithms, timeout)
            return problems

        config = load_config(env, probe=probe)
        registry = CollectorRegistry()
        metrics = Metrics(registry, config_labels={"issuer": config.issuer, "audience": config.audience, "jwks_url": config.jwks_url, "algorithms": ",".join(config.algorithms)})
        clock = FakeClock()
        jwks = JwksClient(
            config.jwks_url,
            timeout=config.jwks_timeout_seconds,
            refresh_interval=config.jwks_refresh_interval_seconds,
            cooldown=config.jwks_refresh_cooldown_seconds,
            on_refresh=metrics.refreshed,
            initial=fetched["jwks"],
            clock=clock,
        )
        verifier = Verifier(jwks, issuer=config.issuer, audience=config.audience, algorithms=config.algorithms, leeway=config.leeway_seconds)
        logs = ListHandler()
        logger = logging.getLogger(f"upstream_api.test.{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(logs)
        app = build_app(config=config, jwks=jwks, verifier=verifier, metrics=metrics, logger=logger)
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return Service(client=client, registry=registry, logs=logs, jwks=jwks, clock=clock, tokens=Tokens(ed_key, rs_key))

    yield factory
    for client in clients:
        client.close()


@pytest.fixture
def service(make_service: ServiceFactory) -> Service:
    return make_service()
