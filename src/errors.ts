// Typed error codes of the gateway, each with the HTTP status it maps to.
// test/readme.test.ts keeps this table and docs/error-codes.md in step.

export const ErrorCode = {
  AUTHGW_ERR_CONFIG: { status: 500, message: 'invalid configuration' },
  AUTHGW_ERR_DB_UNREACHABLE: { status: 503, message: 'database unreachable' },
  AUTHGW_ERR_STORE_UNAVAILABLE: { status: 503, message: 'session store unavailable' },
  AUTHGW_ERR_JWKS_UNAVAILABLE: { status: 503, message: 'signing keys unavailable' },
} as const
export type ErrorCode = keyof typeof ErrorCode

export class AuthgwError extends Error {
  readonly code: ErrorCode
  readonly status: number
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ErrorCode[code].message, options)
    this.name = 'AuthgwError'
    this.code = code
    this.status = ErrorCode[code].status
  }
}

/** A failure of the session store or key store: answered 503, never 401. */
export class StoreUnavailableError extends AuthgwError {
  constructor(cause: unknown) {
    super('AUTHGW_ERR_STORE_UNAVAILABLE', undefined, { cause })
  }
}
