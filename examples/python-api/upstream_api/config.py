"""Configuration: every setting read once from the environment and validated
together, so a bad deploy is refused with every problem listed at once.

``load_config`` has no side effects; ``check_jwks`` is the one check that
talks to the network (is the JWKS reachable, and does it serve a key for an
allowed algorithm?). Neither puts a credential into a message: URLs are shown
without their userinfo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from jwt.algorithms import get_default_algorithms, has_crypto

# Asymmetric algorithms only: a JWKS publishes public keys, and an HMAC "key"
# in a JWKS would be a published secret (the algorithm-confusion attack).
ASYMMETRIC_ALGORITHMS = (
    "EdDSA",
    "ES256",
    "ES256K",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
)

LOG_LEVELS = ("debug", "info", "warn", "error")

# name: (default, minimum, maximum) — all in seconds except the ports.
_NUMBERS = {
    "PORT": ("8000", 1, 65535),
    "JWKS_TIMEOUT_SECONDS": ("2", 0.1, 30),
    "JWKS_REFRESH_INTERVAL_SECONDS": ("300", 1, 86400),
    "JWKS_REFRESH_COOLDOWN_SECONDS": ("30", 0, 3600),
    "JWT_LEEWAY_SECONDS": ("5", 0, 300),
}


@dataclass(frozen=True)
class Config:
    jwks_url: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    host: str
    port: int
    jwks_timeout_seconds: float
    jwks_refresh_interval_seconds: float
    jwks_refresh_cooldown_seconds: float
    leeway_seconds: float
    log_level: str


class ConfigError(Exception):
    """Every problem with the configuration, one per line."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid configuration: " + "; ".join(problems))
        self.problems = problems


def redact_url(url: str) -> str:
    """The URL without user:password@ (for logs, metrics and messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"[redacted]@{host}", parts.path, parts.query, parts.fragment))


# (JWKS URL, allowed algorithms, timeout in seconds) -> problems found there.
JwksProbe = Callable[[str, "tuple[str, ...]", float], "list[str]"]


def load_config(env: Mapping[str, str], probe: JwksProbe | None = None) -> Config:
    """The configuration, or ConfigError listing every problem.

    With ``probe``, a usable JWKS_URL is also fetched (whatever else is wrong),
    so one start-up attempt reports the environment and the JWKS together.
    """
    problems: list[str] = []

    def text(name: str, hint: str) -> str:
        value = env.get(name, "")
        if value.strip() == "":
            problems.append(f"{name} is required ({hint})")
        elif value != value.strip():
            problems.append(f"{name} has leading or trailing whitespace")
        return value.strip()

    jwks_url = text("JWKS_URL", "the gateway's JWKS, e.g. http://gateway:3000/api/auth/jwks")
    jwks_url_valid = False
    if jwks_url:
        try:
            parts = urlsplit(jwks_url)
            jwks_url_valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            pass
        if not jwks_url_valid:
            problems.append(f"JWKS_URL must be an http:// or https:// URL with a host (got {redact_url(jwks_url)!r})")
        elif "@" in parts.netloc:
            jwks_url_valid = False
            problems.append("JWKS_URL must not carry user:password@ (a JWKS is public; the credentials are not shown)")
    issuer = text("JWT_ISSUER", "the gateway's BETTER_AUTH_ISSUER, by default the origin of its BETTER_AUTH_URL")
    audience = text("JWT_AUDIENCE", "the gateway's BETTER_AUTH_AUDIENCE, by default the origin of its BETTER_AUTH_URL")

    algorithms = tuple(a.strip() for a in env.get("JWT_ALGORITHMS", "EdDSA").split(",") if a.strip())
    if not algorithms:
        problems.append("JWT_ALGORITHMS must name at least one algorithm (default EdDSA, the gateway's default)")
    known = get_default_algorithms()
    for alg in algorithms:
        if alg not in ASYMMETRIC_ALGORITHMS:
            why = "is never accepted" if alg.lower() == "none" else (
                "is symmetric: a JWKS publishes public keys" if alg.startswith("HS") else "is not a JWS algorithm PyJWT knows"
            )
            problems.append(f"JWT_ALGORITHMS: {alg!r} {why} (allowed: {', '.join(ASYMMETRIC_ALGORITHMS)})")
        elif alg not in known or not has_crypto:
            problems.append(f"JWT_ALGORITHMS: {alg} needs the cryptography package (Debian: python3-cryptography)")

    numbers: dict[str, float] = {}
    for name, (default, low, high) in _NUMBERS.items():
        raw = env.get(name, default)
        try:
            value = float(raw) if name != "PORT" else int(raw)
        except ValueError:
            value = None
        if value is None or not (low <= value <= high):
            kind = "an integer" if name == "PORT" else "a number"
            problems.append(f"{name} must be {kind} between {low} and {high} (got {raw!r})")
            value = float(default)
        numbers[name] = value

    log_level = env.get("LOG_LEVEL", "info").strip().lower()
    if log_level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (got {log_level!r})")

    if probe is not None and jwks_url_valid:
        usable = tuple(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS and a in known)
        problems.extend(probe(jwks_url, usable, numbers["JWKS_TIMEOUT_SECONDS"]))

    if problems:
        raise ConfigError(problems)
    return Config(
        jwks_url=jwks_url,
        issuer=issuer,
        audience=audience,
        algorithms=algorithms,
        host=env.get("HOST", "0.0.0.0").strip() or "0.0.0.0",
        port=int(numbers["PORT"]),
        jwks_timeout_seconds=numbers["JWKS_TIMEOUT_SECONDS"],
        jwks_refresh_interval_seconds=numbers["JWKS_REFRESH_INTERVAL_SECONDS"],
        jwks_refresh_cooldown_seconds=numbers["JWKS_REFRESH_COOLDOWN_SECONDS"],
        leeway_seconds=numbers["JWT_LEEWAY_SECONDS"],
        log_level=log_level,
    )
