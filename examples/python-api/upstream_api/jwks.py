"""The gateway's JWKS, through PyJWT's PyJWKClient with what production needs
on top (PyJWT 2.6, Debian bookworm's, has none of it):

- a fetch timeout (PyJWKClient's urlopen waits for ever);
- a failed fetch keeps the keys already loaded (PyJWKClient empties its cache),
  so a JWKS outage only affects tokens whose kid is not loaded yet;
- an outage and an unknown kid are different errors (both are
  PyJWKClientError in PyJWT): the first is a 503 ``jwks_unavailable``, the
  second a 401 ``kid_unknown``;
- an unknown kid refreshes the set at most once per cooldown (PyJWKClient
  refetches on every unknown kid, so junk kids would become a flood of
  fetches), like the gateway's own key store;
- keys are parsed once per fetch, not on every request;
- a key without ``alg`` is ignored, as by the gateway, so the algorithm of a
  token must be the algorithm its key was published for.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Optional

from jwt import PyJWK, PyJWKClient, PyJWKSet
from jwt.exceptions import PyJWKClientError, PyJWTError

from .config import redact_url

# A JWKS is a few keys; anything much larger is not one.
MAX_JWKS_BYTES = 1 << 20
# Kids longer than this never trigger a refresh (the gateway's limit).
MAX_KID_LENGTH = 256

# outcome ("success" | "failure" | "suppressed"), keys loaded, seconds taken
RefreshListener = Callable[[str, int, float], None]


class JwksUnavailableError(PyJWKClientError):
    """The key set cannot be fetched or has no usable key: a 503, never a 401."""


class KidUnknownError(PyJWKClientError):
    """No key with this kid, even after a refresh (or inside the cooldown)."""


def fetch_jwks(url: str, timeout: float) -> dict[str, Any]:
    """GET the JWKS document; JwksUnavailableError with a reason on any failure."""
    request = urllib.request.Request(url, headers={"accept": "application/json", "user-agent": "authgw-python-api"})
    shown = redact_url(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
    except urllib.error.HTTPError as err:
        raise JwksUnavailableError(f"{shown} answered HTTP {err.code}") from err
    except urllib.error.URLError as err:
        raise JwksUnavailableError(f"{shown} is unreachable: {err.reason}") from err
    except (TimeoutError, OSError, http.client.HTTPException) as err:
        what = f"timed out after {timeout:g} s" if isinstance(err, TimeoutError) else f"failed: {type(err).__name__}"
        raise JwksUnavailableError(f"{shown} {what}") from err
    if len(body) > MAX_JWKS_BYTES:
        raise JwksUnavailableError(f"{shown} answered more than {MAX_JWKS_BYTES} bytes")
    try:
        data = json.loads(body)
    except ValueError as err:
        raise JwksUnavailableError(f"{shown} did not answer JSON") from err
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksUnavailableError(f'{shown} did not answer a JWK Set (no "keys" array)')
    return data


def declared_alg(key: PyJWK) -> Optional[str]:
    """The ``alg`` the JWK was published with (PyJWT 2.6 has no public accessor)."""
    alg = key._jwk_data.get("alg")  # noqa: SLF001 — PyJWK keeps the JWK it was built from
    return alg if isinstance(alg, str) else None


def signing_keys(data: dict[str, Any]) -> list[PyJWK]:
    """The usable signing keys of a JWK Set: use "sig" or absent, a kid, an alg.

    Built key by key: PyJWKSet fails the whole set on one key it cannot read
    (a missing kty), and one odd key must not take the others down.
    """
    keys = []
    for jwk in data.get("keys", []):
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not isinstance(jwk.get("alg"), str):
            continue
        if jwk.get("use") not in ("sig", None):
            continue
        try:
            keys.append(PyJWK(jwk))
        except (PyJWTError, ValueError, KeyError, TypeError):
            continue  # a key PyJWT cannot import cannot verify anything
    return keys


def probe_jwks(url: str, algorithms: tuple[str, ...], timeout: float) -> tuple[list[str], Optional[dict[str, Any]]]:
    """Start-up check: problems with the JWKS at ``url``, and the document when usable."""
    try:
        data = fetch_jwks(url, timeout)
    except JwksUnavailableError as err:
        return [f"JWKS_URL: {err}"], None
    keys = signing_keys(data)
    if not keys:
        return [f"JWKS_URL: {redact_url(url)} serves no usable signing key (each needs kid and alg)"], None
    if algorithms and not any(declared_alg(k) in algorithms for k in keys):
        served = ", ".join(sorted({f"{declared_alg(k)}" for k in keys}))
        return [f"JWKS_URL: {redact_url(url)} serves no key for JWT_ALGORITHMS={','.join(algorithms)} (it serves {served})"], None
    return [], data


class JwksClient(PyJWKClient):
    """PyJWKClient with a timeout, kept keys on failure, and a refresh cooldown.

    Thread-safe: FastAPI runs the verifying dependency in its thread pool.
    """

    def __init__(
        self,
        uri: str,
        *,
        timeout: float,
        refresh_interval: float,
        cooldown: float,
        on_refresh: Optional[RefreshListener] = None,
        initial: Optional[dict[str, Any]] = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        # PyJWT's own caches are off: this class keeps the parsed keys itself.
        super().__init__(uri, cache_keys=False, cache_jwk_set=False)
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self.cooldown = cooldown
        self._on_refresh = on_refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._next_attempt = float("-inf")  # after a failure, no refetch before this
        self._last_unknown_kid_refresh = float("-inf")
        self._last_refresh_failed = False
        if initial is not None:
            self._adopt(initial)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    @property
    def loaded(self) -> bool:
        return bool(self._keys)

    def fetch_data(self) -> Any:
        return fetch_jwks(self.uri, self.timeout)

    def _adopt(self, data: dict[str, Any]) -> int:
        keys = signing_keys(data)
        if not keys:
            raise JwksUnavailableError(f"{redact_url(self.uri)} serves no usable signing key")
        self._keys = {k.key_id: k for k in keys}
        self._fetched_at = self._clock()
        self._last_refresh_failed = False
        return len(keys)

    def refresh(self) -> None:
        """Fetch now (one fetch at a time); keeps the old keys when it fails."""
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        started = time.perf_counter()
        try:
            count = self._adopt(self.fetch_data())
        except JwksUnavailableError:
            self._last_refresh_failed = True
            self._next_attempt = self._clock() + self.cooldown
            self._notify("failure", time.perf_counter() - started)
            raise
        self._notify("success", time.perf_counter() - started, count)

    def _notify(self, outcome: str, seconds: float, count: Optional[int] = None) -> None:
        if self._on_refresh is not None:
            self._on_refresh(outcome, len(self._keys) if count is None else count, seconds)

    def get_signing_keys(self, refresh: bool = False) -> list[PyJWK]:
        if refresh:
            self.refresh()
        else:
            self._refresh_if_stale()
        if not self._keys:
            raise JwksUnavailableError(f"no keys loaded from {redact_url(self.uri)}")
        return list(self._keys.values())

    def get_jwk_set(self, refresh: bool = False) -> PyJWKSet:
        # Only for callers of PyJWKClient's API; verification uses get_signing_key.
        return PyJWKSet([k._jwk_data for k in self.get_signing_keys(refresh)])  # noqa: SLF001

    def _refresh_if_stale(self) -> None:
        now = self._clock()
        if now - self._fetched_at < self.refresh_interval or now < self._next_attempt:
            return
        with self._lock:
            now = self._clock()
            if now - self._fetched_at < self.refresh_interval or now < self._next_attempt:
                return  # another thread refreshed (or failed) meanwhile
            try:
                self._refresh_locked()
            except JwksUnavailableError:
                if not self._keys:
                    raise
                # Stale keys still verify the tokens they signed: keep serving.

    def get_signing_key(self, kid: str) -> PyJWK:
        """The key for ``kid``; KidUnknownError or JwksUnavailableError otherwise.

        An unknown kid refreshes the set at most once per cooldown. Inside the
        cooldown it is simply unknown, unless the latest fetch failed: then
        the key store, not the token, is the problem (503, not 401).
        """
        self._refresh_if_stale()
        key = self._keys.get(kid)
        if key is not None:
            return key
        if len(kid) > MAX_KID_LENGTH:
            raise KidUnknownError("kid too long to look up")
        with self._lock:
            key = self._keys.get(kid)  # a concurrent refresh may have brought it
            if key is not None:
                return key
            now = self._clock()
            if self._last_refresh_failed and now < self._next_attempt:
                raise JwksUnavailableError("the latest JWKS fetch failed; no refetch inside the cooldown")
            if self._keys and now - self._last_unknown_kid_refresh < self.cooldown:
                self._notify("suppressed", 0.0)
                raise KidUnknownError("kid not in the JWKS (refresh suppressed by the cooldown)")
            self._last_unknown_kid_refresh = now
            self._refresh_locked()
            key = self._keys.get(kid)
        if key is None:
            raise KidUnknownError("kid not in the JWKS, even after a refresh")
        return key
