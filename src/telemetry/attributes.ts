// Every span attribute name the gateway sets, in one place.
export const Attr = {
  mechanism: 'authgw.mechanism',
  outcome: 'authgw.outcome',
  reason: 'authgw.reason',
  source: 'authgw.source',
  jwtKid: 'authgw.jwt.kid',
  jwtAlg: 'authgw.jwt.alg',
  cookieNames: 'authgw.cookie.names',
  /** A bearer failure while a valid session cookie was also present (a stale token shadowing a good cookie). */
  alsoHadSessionCookie: 'authgw.jwt.also_had_session_cookie',
  cacheHit: 'authgw.cache.hit',
  authEndpoint: 'authgw.auth.endpoint',
  jwksKeys: 'authgw.jwks.keys',
  requestId: 'authgw.request_id',
  // OpenTelemetry semantic conventions
  errorType: 'error.type',
  userPseudoId: 'enduser.pseudo.id',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  httpMethod: 'http.request.method',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  urlPath: 'url.path',
} as const

export const SpanName = {
  sessionValidate: 'authgw.session.validate',
  jwtVerify: 'authgw.jwt.verify',
  tokenMint: 'authgw.token.mint',
  jwksRefresh: 'authgw.jwks.refresh',
} as const
