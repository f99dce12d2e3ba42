"""The key store against a real JWKS server that fails, hangs and rotates:
an outage is a 503 jwks_unavailable (never a 401), loaded keys keep working
through it, fetches have a timeout, and unknown kids refresh at most once per
cooldown."""

from __future__ import annotations

import pytest

from upstream_api.jwks import JwksClient, JwksUnavailableError, KidUnknownError

from conftest import JwksServer, Service, SigningKey


def get_me(service: Service, token: str):
    return service.client.get("/api/me", headers={"authorization": f"Bearer {token}"})


def moved(before: dict, after: dict) -> dict:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def test_outage_is_503_jwks_unavailable_and_loaded_keys_keep_working(service: Service, jwks_server: JwksServer) -> None:
    jwks_server.mode = "error"
    before = service.counters()
    res = get_me(service, service.tokens.make(headers={"kid": "new-after-rotation"}))
    assert res.status_code == 503, res.text
    assert res.json()["reason"] == "jwks_unavailable"
    assert res.headers["retry-after"] == "5"
    assert moved(before, service.counters()) == {
        ("api_auth_unavailable_total", "jwks_unavailable"): 1,
        ("api_jwks_refreshes_total", "failure"): 1,
    }, "a 503, not a JWT failure or a 401"
    line = service.logs.requests()[-1]
    assert line["status"] == 503 and line["reason"] == "jwks_unavailable" and line["level"] == 50
    assert "HTTP 500" in line["detail"]

    # A token whose kid is loaded does not need the JWKS.
    assert get_me(service, service.tokens.make()).status_code == 200

    # Inside the cooldown an unknown kid is still undecidable (503), and not refetched.
    fetches = jwks_server.fetches
    assert get_me(service, service.tokens.make(headers={"kid": "another"})).status_code == 503
    assert jwks_server.fetches == fetches

    # After the cooldown the JWKS is back: an unknown kid is unknown again.
    jwks_server.mode = "ok"
    service.clock.now += 31
    res = get_me(service, service.tokens.make(headers={"kid": "another"}))
    assert res.status_code == 401 and res.json()["reason"] == "kid_unknown"


def test_fetch_times_out(make_service, jwks_server: JwksServer) -> None:
    service = make_service(JWKS_TIMEOUT_SECONDS="0.3")
    jwks_server.mode = "hang"
    res = get_me(service, service.tokens.make(headers={"kid": "unknown"}))
    assert res.status_code == 503
    assert "timed out after 0.3 s" in service.logs.requests()[-1]["detail"]


def test_unknown_kids_refresh_once_per_cooldown(service: Service, jwks_server: JwksServer) -> None:
    fetches = jwks_server.fetches
    before = service.counters()
    for i in range(5):
        res = get_me(service, service.tokens.make(headers={"kid": f"junk-{i}"}))
        assert res.json()["reason"] == "kid_unknown"
    assert jwks_server.fetches == fetches + 1, "one fetch for five unknown kids"
    assert moved(before, service.counters()) == {
        ("api_jwks_refreshes_total", "success"): 1,
        ("api_jwks_refreshes_total", "suppressed"): 4,
        ("api_jwt_validation_failures_total", "kid_unknown"): 5,
        ("api_unauthorized_total", "kid_unknown"): 5,
    }
    service.clock.now += 31
    get_me(service, service.tokens.make(headers={"kid": "junk-after-cooldown"}))
    assert jwks_server.fetches == fetches + 2


def test_rotated_key_is_fetched_on_first_sight(service: Service, jwks_server: JwksServer) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    rotated = SigningKey("ed-2", "EdDSA", Ed25519PrivateKey.generate())
    jwks_server.keys = [*jwks_server.keys, rotated.jwk()]
    res = get_me(service, service.tokens.make(rotated))
    assert res.status_code == 200, res.text
    assert service.sample("api_jwks_keys") == 3


def test_stale_keys_are_refetched_and_kept_when_the_refetch_fails(service: Service, jwks_server: JwksServer) -> None:
    fetches = jwks_server.fetches
    service.clock.now += 301  # past JWKS_REFRESH_INTERVAL_SECONDS
    assert get_me(service, service.tokens.make()).status_code == 200
    assert jwks_server.fetches == fetches + 1, "a stale set is refetched"

    jwks_server.mode = "error"
    service.clock.now += 301
    assert get_me(service, service.tokens.make()).status_code == 200, "the stale keys still verify"
    assert get_me(service, service.tokens.make()).status_code == 200
    assert jwks_server.fetches == fetches + 2, "no refetch before the cooldown after a failure"
    assert service.sample("api_jwks_refreshes_total", {"outcome": "failure"}) == 1


def test_a_store_that_never_loaded_is_unavailable_not_unknown(jwks_server: JwksServer) -> None:
    jwks_server.mode = "error"
    client = JwksClient(jwks_server.url, timeout=0.5, refresh_interval=300, cooldown=30)
    with pytest.raises(JwksUnavailableError):
        client.get_signing_key("ed-1")
    assert not client.loaded
    jwks_server.mode = "ok"
    client2 = JwksClient(jwks_server.url, timeout=0.5, refresh_interval=300, cooldown=30)
    assert client2.get_signing_key("ed-1").key_id == "ed-1"
    with pytest.raises(KidUnknownError):
        client2.get_signing_key("nope")


def test_readyz_reports_loaded_keys(service: Service) -> None:
    res = service.client.get("/readyz")
    assert res.status_code == 200
    assert res.json() == {"status": "ready", "keys": 2}


def test_odd_keys_are_skipped_not_fatal(jwks_server: JwksServer, ed_key: SigningKey) -> None:
    jwks_server.keys = [{"kid": "no-kty", "alg": "EdDSA"}, {"kty": "RSA", "kid": "no-alg", "n": "AQAB", "e": "AQAB"}, {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "alg": "EdDSA", "use": "enc", "x": ed_key.jwk()["x"]}, ed_key.jwk()]
    client = JwksClient(jwks_server.url, timeout=0.5, refresh_interval=300, cooldown=30)
    client.refresh()
    assert client.key_count == 1
    assert client.get_signing_key("ed-1").key_id == "ed-1"


def test_concurrent_unknown_kids_share_one_fetch(jwks_server: JwksServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = JwksClient(jwks_server.url, timeout=2, refresh_interval=300, cooldown=30)
    client.refresh()
    fetches = jwks_server.fetches

    def lookup(i: int) -> str:
        try:
            client.get_signing_key(f"junk-{i}")
        except KidUnknownError:
            return "kid_unknown"
        return "found"

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lookup, range(64)))
    assert results == ["kid_unknown"] * 64
    assert jwks_server.fetches == fetches + 1, "one fetch for 64 concurrent unknown kids"
