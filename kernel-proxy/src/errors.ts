// Errors of the kernel-proxy and the `rgpu` CLI, each with a stable RGPU_ERR_* code that callers (the
// extension, tests, scripts) can switch on without parsing messages.

export type ProxyErrorCode =
  | 'RGPU_ERR_BAD_ARGS'
  | 'RGPU_ERR_BAD_POOL_URL'
  | 'RGPU_ERR_POOL_UNAVAILABLE'
  | 'RGPU_ERR_POOL_REJECTED'
  | 'RGPU_ERR_POOL_TIMEOUT'
  | 'RGPU_ERR_TOKEN_FILE'
  | 'RGPU_ERR_SOCKET_DIR'
  | 'RGPU_ERR_EMBEDDED_SERVER'
  | 'RGPU_ERR_MISSING_MODULE';

export class ProxyError extends Error {
  constructor(readonly code: ProxyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProxyError';
  }
}

/** The pool could not be reached (refused, timed out, closed); new sessions get DEVICE_UNAVAILABLE. */
export class PoolUnavailableError extends ProxyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RGPU_ERR_POOL_UNAVAILABLE', message, options);
    this.name = 'PoolUnavailableError';
  }
}

/** The pool answered HELLO with an error (bad token, unknown type, version mismatch). */
export class PoolRejectedError extends ProxyError {
  constructor(readonly result: number, message: string) {
    super('RGPU_ERR_POOL_REJECTED', message);
    this.name = 'PoolRejectedError';
  }
}

/** Bad command-line arguments: the CLI prints the message and exits with status 2. */
export class UsageError extends ProxyError {
  constructor(message: string) {
    super('RGPU_ERR_BAD_ARGS', message);
    this.name = 'UsageError';
  }
}

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));
