/** Base of the extension's errors: a stable `code` (RGPU_ERR_*) for logs and tests, and the cause. */
export class RemoteGpuError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The kernel-proxy could not be started, exited, or did not answer. */
export class ProxyUnavailableError extends RemoteGpuError {
  constructor(message: string, options?: { cause?: unknown }) { super('RGPU_ERR_PROXY_UNAVAILABLE', message, options); }
}

/** The local Jupyter server the extension owns could not be started or reached. */
export class JupyterServerError extends RemoteGpuError {
  constructor(message: string, options?: { cause?: unknown }) { super('RGPU_ERR_JUPYTER_SERVER', message, options); }
}

/** The Jupyter extension (ms-toolsai.jupyter) is missing or its API is unusable. */
export class JupyterExtensionMissingError extends RemoteGpuError {
  constructor(message: string) { super('RGPU_ERR_JUPYTER_EXTENSION', message); }
}

/** A message from the webview, or a value from the proxy, had the wrong shape. */
export class BadMessageError extends RemoteGpuError {
  constructor(message: string) { super('RGPU_ERR_BAD_MESSAGE', message); }
}

/** A pool address the user typed is not `tcp://host:port` or `tls://host:port`. */
export class BadPoolAddressError extends RemoteGpuError {
  constructor(message: string) { super('RGPU_ERR_BAD_POOL_ADDRESS', message); }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
