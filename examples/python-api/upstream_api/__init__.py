"""An API service behind authgw that trusts nothing but the gateway's JWT.

It verifies every request's ``Authorization: Bearer`` JWT with PyJWT against
the gateway's JWKS, issuer and audience, and makes each decision as
diagnosable as the gateway's: one reason from the gateway's closed JWT reason
set, a Prometheus counter, and one JSON log line carrying the gateway's
request id and trace id.
"""
