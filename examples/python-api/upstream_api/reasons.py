"""The closed vocabularies: label values, log fields and response bodies.

The JWT reasons are the gateway's own (``JwtReason`` in src/reasons.ts) with
the same meaning, so a denial reads the same on either side of the hop;
test/examples/python-api.test.ts compares the two sets. Add values; never
rename them.
"""

from typing import Final

JWT_REASONS: Final = (
    "malformed",  # not a well-formed compact JWS with the required claims
    "alg_not_allowed",  # alg not in JWT_ALGORITHMS (none, HS256 …) or not the key's alg
    "kid_unknown",  # no key with this kid in the JWKS, even after a refresh
    "bad_signature",  # the signature does not verify
    "expired",  # exp is past (JWT_LEEWAY_SECONDS tolerance)
    "not_yet_valid",  # nbf (or iat) is in the future
    "issuer_mismatch",  # iss differs from JWT_ISSUER
    "audience_mismatch",  # aud does not contain JWT_AUDIENCE
)

# No bearer token at all: the gateway always sends one, so this means a caller
# that bypassed the gateway (the gateway's own NoCredentialReason).
NO_CREDENTIALS: Final = "no_credentials"

# Every reason of a 401 (api_unauthorized_total{reason}).
UNAUTHORIZED_REASONS: Final = (*JWT_REASONS, NO_CREDENTIALS)

# The keys cannot be loaded: a 503, never a 401 (the gateway's UnavailableReason).
JWKS_UNAVAILABLE: Final = "jwks_unavailable"
UNAVAILABLE_REASONS: Final = (JWKS_UNAVAILABLE,)

# Outcomes of a JWKS refresh (the gateway's JwksRefreshOutcome).
REFRESH_OUTCOMES: Final = ("success", "failure", "suppressed")
