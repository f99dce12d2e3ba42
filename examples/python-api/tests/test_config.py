"""Configuration: every problem listed at once, the JWKS checked at start-up,
no credential in a message."""

from __future__ import annotations

import pytest

from upstream_api.config import ConfigError, load_config
from upstream_api.jwks import probe_jwks as probe_with_document

from conftest import AUDIENCE, ISSUER, JwksServer



def probe_jwks(url: str, algorithms: tuple[str, ...], timeout: float) -> list[str]:
    return probe_with_document(url, algorithms, timeout)[0]


GOOD = {"JWKS_URL": "http://127.0.0.1:1/api/auth/jwks", "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}


def problems_of(env: dict[str, str], probe=None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(env, probe=probe)
    return err.value.problems


def test_defaults() -> None:
    config = load_config(GOOD)
    assert config.algorithms == ("EdDSA",)
    assert config.port == 8000 and config.host == "0.0.0.0"
    assert config.jwks_timeout_seconds == 2 and config.jwks_refresh_cooldown_seconds == 30
    assert config.jwks_refresh_interval_seconds == 300 and config.leeway_seconds == 5
    assert config.log_level == "info"


def test_every_problem_is_listed_at_once() -> None:
    problems = problems_of(
        {
            "JWKS_URL": "ftp://example.test/jwks",
            "JWT_ISSUER": " ",
            "JWT_ALGORITHMS": "EdDSA,none,HS256,FOO",
            "PORT": "http",
            "JWKS_TIMEOUT_SECONDS": "0",
            "JWKS_REFRESH_COOLDOWN_SECONDS": "-1",
            "JWT_LEEWAY_SECONDS": "nan",
            "LOG_LEVEL": "loud",
        }
    )
    expected = [
        "JWKS_URL must be an http:// or https:// URL",
        "JWT_ISSUER is required",
        "JWT_AUDIENCE is required",
        "JWT_ALGORITHMS: 'none' is never accepted",
        "JWT_ALGORITHMS: 'HS256' is symmetric",
        "JWT_ALGORITHMS: 'FOO' is not a JWS algorithm",
        "PORT must be an integer",
        "JWKS_TIMEOUT_SECONDS must be a number",
        "JWKS_REFRESH_COOLDOWN_SECONDS must be a number",
        "JWT_LEEWAY_SECONDS must be a number",
        "LOG_LEVEL must be one of",
    ]
    assert len(problems) == len(expected), problems
    for prefix, problem in zip(expected, problems):
        assert problem.startswith(prefix), (prefix, problem)


def test_empty_algorithm_list() -> None:
    assert problems_of({**GOOD, "JWT_ALGORITHMS": " , "}) == ["JWT_ALGORITHMS must name at least one algorithm (default EdDSA, the gateway's default)"]


def test_unreachable_jwks_is_listed_with_the_other_problems() -> None:
    problems = problems_of({"JWKS_URL": "http://127.0.0.1:1/api/auth/jwks", "JWT_AUDIENCE": AUDIENCE}, probe=probe_jwks)
    assert problems[0].startswith("JWT_ISSUER is required")
    assert problems[1].startswith("JWKS_URL: http://127.0.0.1:1/api/auth/jwks is unreachable")
    assert len(problems) == 2


def test_jwks_without_a_key_for_the_algorithms(jwks_server: JwksServer) -> None:
    problems = problems_of({**GOOD, "JWKS_URL": jwks_server.url, "JWT_ALGORITHMS": "ES256"}, probe=probe_jwks)
    assert problems == [f"JWKS_URL: {jwks_server.url} serves no key for JWT_ALGORITHMS=ES256 (it serves EdDSA, RS256)"]


def test_jwks_failing_and_empty(jwks_server: JwksServer) -> None:
    jwks_server.mode = "error"
    assert problems_of({**GOOD, "JWKS_URL": jwks_server.url}, probe=probe_jwks) == [f"JWKS_URL: {jwks_server.url} answered HTTP 500"]
    jwks_server.mode = "ok"
    jwks_server.keys = []
    assert problems_of({**GOOD, "JWKS_URL": jwks_server.url}, probe=probe_jwks) == [
        f"JWKS_URL: {jwks_server.url} serves no usable signing key (each needs kid and alg)"
    ]


def test_a_good_jwks_passes(jwks_server: JwksServer) -> None:
    config = load_config({**GOOD, "JWKS_URL": jwks_server.url, "JWT_ALGORITHMS": "RS256"}, probe=probe_jwks)
    assert config.algorithms == ("RS256",)


def test_credentials_in_the_jwks_url_are_never_shown() -> None:
    problems = problems_of({**GOOD, "JWKS_URL": "http://jwks-user:hunter2-secret@127.0.0.1:1/jwks"}, probe=probe_jwks)
    assert problems == ["JWKS_URL must not carry user:password@ (a JWKS is public; the credentials are not shown)"]
    problems = problems_of({**GOOD, "JWKS_URL": "ftp://jwks-user:hunter2-secret@127.0.0.1:1/jwks"})
    assert problems == ["JWKS_URL must be an http:// or https:// URL with a host (got 'ftp://[redacted]@127.0.0.1:1/jwks')"]
