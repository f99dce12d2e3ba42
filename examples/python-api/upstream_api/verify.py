"""Bearer JWT verification with PyJWT: each rejection maps to exactly one
reason of the gateway's closed set, by exception class, never by message.

Order of checks (as the gateway's): the header (malformed), the algorithm
(alg_not_allowed), the key (kid_unknown; an outage is JwksUnavailableError),
the signature (bad_signature), then the claims PyJWT checks: nbf/iat
(not_yet_valid), exp (expired), iss (issuer_mismatch), aud
(audience_mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

from .jwks import JwksClient, KidUnknownError, declared_alg

# The gateway's limit: longer tokens are malformed before any parsing.
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]
    kid: str
    alg: str


class TokenRejected(Exception):
    """A 401: ``reason`` is one of reasons.JWT_REASONS."""

    def __init__(self, reason: str, *, kid: Optional[str] = None, alg: Optional[str] = None):
        super().__init__(reason)
        self.reason = reason
        self.kid = kid
        self.alg = alg


# PyJWT's exception for a claim check → reason. Subclasses before their bases
# (InvalidSignatureError is a DecodeError).
_CLAIM_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (InvalidSignatureError, "bad_signature"),
    (ExpiredSignatureError, "expired"),
    (ImmatureSignatureError, "not_yet_valid"),  # nbf, or iat, in the future
    (InvalidIssuerError, "issuer_mismatch"),
    (InvalidAudienceError, "audience_mismatch"),
    (InvalidAlgorithmError, "alg_not_allowed"),
    (InvalidIssuedAtError, "malformed"),  # iat not a number
    (DecodeError, "malformed"),  # payload not JSON, exp/nbf not numbers
)

# A required claim that is missing: no iss cannot match the issuer, no aud
# cannot match the audience (as at the gateway); no sub or exp is malformed.
_MISSING_CLAIM = {"iss": "issuer_mismatch", "aud": "audience_mismatch"}


class Verifier:
    def __init__(self, jwks: JwksClient, *, issuer: str, audience: str, algorithms: tuple[str, ...], leeway: float):
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience
        self._algorithms = algorithms
        self._leeway = leeway

    def verify(self, token: str) -> Verified:
        """The verified claims; TokenRejected, or JwksUnavailableError when keys cannot be loaded."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except InvalidTokenError:
            # Not three base64url parts, header not JSON, unsupported `crit`, non-string kid.
            raise TokenRejected("malformed") from None
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise TokenRejected("malformed")
        if alg not in self._algorithms:
            raise TokenRejected("alg_not_allowed", alg=alg[:16])
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("kid_unknown", alg=alg)
        shown_kid = kid[:64]
        try:
            key = self._jwks.get_signing_key(kid)
        except KidUnknownError:
            raise TokenRejected("kid_unknown", kid=shown_kid, alg=alg) from None
        if declared_alg(key) != alg:
            # A key published for another algorithm (RS256 key, PS256 token …).
            raise TokenRejected("alg_not_allowed", kid=shown_kid, alg=alg)
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "sub"]},
            )
        except MissingRequiredClaimError as err:
            raise TokenRejected(_MISSING_CLAIM.get(err.claim, "malformed"), kid=shown_kid, alg=alg) from None
        except InvalidTokenError as err:
            raise TokenRejected(_reason_of(err), kid=shown_kid, alg=alg) from None
        except InvalidKeyError:
            # Not an InvalidTokenError: the key cannot do this algorithm.
            raise TokenRejected("alg_not_allowed", kid=shown_kid, alg=alg) from None
        if not isinstance(claims.get("sub"), str):
            raise TokenRejected("malformed", kid=shown_kid, alg=alg)
        return Verified(claims=claims, kid=kid, alg=alg)


def _reason_of(err: Exception) -> str:
    for cls, reason in _CLAIM_ERRORS:
        if isinstance(err, cls):
            return reason
    return "malformed"
