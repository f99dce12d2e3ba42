"""Every reason of the closed set produced by a real token against a real
JWKS, answered 401 with that reason, counted on exactly that series, and
logged on the request's one line; accepted tokens (EdDSA and RS256) answer
the verified identity."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from upstream_api.reasons import JWT_REASONS, UNAUTHORIZED_REASONS

from conftest import AUDIENCE, ISSUER, Service, SigningKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resign(key: SigningKey, header: dict, payload: bytes) -> str:
    """A compact JWS over arbitrary payload bytes, really signed with key."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    return f"{signing_input}.{b64(key.private.sign(signing_input.encode()))}"


def call(service: Service, token: str | None, **headers: str):
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return service.client.get("/api/me", headers=headers)


def test_eddsa_token_answers_the_verified_identity(service: Service) -> None:
    token = service.tokens.make()
    res = call(service, token)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["id"] == "user-123"
    assert body["email"] == "ada@example.test"
    assert body["sessionId"] == "session-9"
    assert body["issuer"] == ISSUER
    assert isinstance(body["expiresAt"], int)
    line = service.logs.requests()[-1]
    assert line["outcome"] == "allowed"
    assert line["user"] == "user-123"
    assert line["kid"] == "ed-1"
    assert line["alg"] == "EdDSA"


def test_rs256_token_is_accepted(service: Service) -> None:
    res = call(service, service.tokens.make(service.tokens.rs))
    assert res.status_code == 200, res.text
    assert service.logs.requests()[-1]["alg"] == "RS256"


def test_audience_in_a_list_is_accepted(service: Service) -> None:
    res = call(service, service.tokens.make(claims={"aud": ["http://other.test", AUDIENCE]}))
    assert res.status_code == 200, res.text


def _cases(service: Service) -> list[tuple[str, str, str]]:
    """(label, token, expected reason): every reason, some more than one way."""
    t = service.tokens
    now = int(time.time())
    impostor = SigningKey("ed-1", "EdDSA", Ed25519PrivateKey.generate())  # same kid, other key
    good = t.make()
    h, p, s = good.split(".")
    tampered_payload = b64(json.dumps({**json.loads(base64.urlsafe_b64decode(p + "==")), "sub": "admin"}).encode())
    unsigned = f"{b64(json.dumps({'alg': 'none', 'kid': 'ed-1'}).encode())}.{p}."
    return [
        ("not a JWT", "opaque-session-token", "malformed"),
        ("two parts", f"{h}.{p}", "malformed"),
        ("header not JSON", f"{b64(b'nope')}.{p}.{s}", "malformed"),
        ("payload not JSON, validly signed", resign(t.ed, {"alg": "EdDSA", "kid": "ed-1"}, b"not json"), "malformed"),
        ("no sub", t.make(drop=("sub",)), "malformed"),
        ("no exp", t.make(drop=("exp",)), "malformed"),
        ("exp not a number", t.make(claims={"exp": "tomorrow"}), "malformed"),
        ("unknown crit extension", t.make(headers={"crit": ["x-unknown"], "x-unknown": 1}), "malformed"),
        ("over 8192 characters", t.make(claims={"pad": "x" * 9000}), "malformed"),
        ("alg none", unsigned, "alg_not_allowed"),
        ("HS256 with the public key as secret", t.make(alg="HS256", signer=json.dumps(t.ed.jwk())), "alg_not_allowed"),
        ("ES256 not in JWT_ALGORITHMS", f"{b64(json.dumps({'alg': 'ES256', 'kid': 'ed-1'}).encode())}.{p}.{s}", "alg_not_allowed"),
        ("RS256 token on an EdDSA key's kid", t.make(t.rs, headers={"kid": "ed-1"}), "alg_not_allowed"),
        ("unknown kid", t.make(headers={"kid": "rotated-away"}), "kid_unknown"),
        ("no kid", resign(t.ed, {"alg": "EdDSA"}, json.dumps({"sub": "u", "exp": now + 60, "iss": ISSUER, "aud": AUDIENCE}).encode()), "kid_unknown"),
        ("signed by another key", t.make(impostor), "bad_signature"),
        ("tampered payload", f"{h}.{tampered_payload}.{s}", "bad_signature"),
        ("expired", t.make(claims={"exp": now - 60, "iat": now - 960}), "expired"),
        ("nbf in the future", t.make(claims={"nbf": now + 600}), "not_yet_valid"),
        ("iat in the future (clock skew)", t.make(claims={"iat": now + 600}), "not_yet_valid"),
        ("other issuer", t.make(claims={"iss": "http://preview.gateway.test"}), "issuer_mismatch"),
        ("no iss", t.make(drop=("iss",)), "issuer_mismatch"),
        ("other audience", t.make(claims={"aud": "http://other-api.test"}), "audience_mismatch"),
        ("no aud", t.make(drop=("aud",)), "audience_mismatch"),
    ]


def test_every_reason_is_produced_counted_and_logged(service: Service) -> None:
    cases = _cases(service)
    assert {reason for _, _, reason in cases} == set(JWT_REASONS), "a case for every reason"
    for i, (label, token, reason) in enumerate(cases):
        before = service.counters()
        request_id = f"req-{i}"
        res = call(service, token, **{"x-request-id": request_id})
        assert res.status_code == 401, f"{label}: {res.status_code} {res.text}"
        assert res.json() == {"error": "unauthorized", "reason": reason, "requestId": request_id}, label
        assert res.headers["www-authenticate"] == 'Bearer realm="api", error="invalid_token"', label
        assert res.headers["x-request-id"] == request_id
        after = service.counters()
        moved = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        expected = {("api_jwt_validation_failures_total", reason): 1, ("api_unauthorized_total", reason): 1}
        if reason == "kid_unknown":
            # The unknown kid refreshed the JWKS once (or was suppressed inside the cooldown).
            moved = {k: v for k, v in moved.items() if k[0] != "api_jwks_refreshes_total"}
        assert moved == expected, f"{label}: {moved}"
        line = service.logs.requests()[-1]
        assert line["reqId"] == request_id, label
        assert line["status"] == 401 and line["reason"] == reason and line["outcome"] == "denied", f"{label}: {line}"


def test_no_bearer_token_is_no_credentials(service: Service) -> None:
    for headers in ({}, {"authorization": "Basic dXNlcjpwYXNz"}):
        before = service.counters()
        res = service.client.get("/api/me", headers=headers)
        assert res.status_code == 401
        assert res.json()["reason"] == "no_credentials"
        assert res.headers["www-authenticate"] == 'Bearer realm="api"'
        after = service.counters()
        assert after[("api_unauthorized_total", "no_credentials")] == before[("api_unauthorized_total", "no_credentials")] + 1
        assert all(after[k] == before[k] for k in after if k[0] == "api_jwt_validation_failures_total"), "not a JWT failure"
    res = service.client.get("/api/me", headers={"authorization": "Bearer "})
    assert res.json()["reason"] == "malformed", "an empty bearer token is a malformed one"


def test_every_reason_series_starts_at_zero(service: Service) -> None:
    text = service.client.get("/metrics").text
    for reason in JWT_REASONS:
        assert f'api_jwt_validation_failures_total{{reason="{reason}"}} 0.0' in text
    for reason in UNAUTHORIZED_REASONS:
        assert f'api_unauthorized_total{{reason="{reason}"}} 0.0' in text
    assert 'api_auth_unavailable_total{reason="jwks_unavailable"} 0.0' in text
    for outcome in ("success", "failure", "suppressed"):
        assert f'api_jwks_refreshes_total{{outcome="{outcome}"}}' in text
    assert f'api_config_info{{algorithms="EdDSA,RS256",audience="{AUDIENCE}",issuer="{ISSUER}",' in text


@pytest.mark.parametrize("path", ["/healthz", "/api/public/ping"])
def test_unprotected_routes_need_no_token(service: Service, path: str) -> None:
    assert service.client.get(path).status_code == 200
