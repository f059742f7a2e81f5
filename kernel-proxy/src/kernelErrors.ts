/** Errors of the notebook-kernel side (kernelspec install, launcher, demo), with stable codes. */
export class KernelSetupError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KernelSetupError';
  }
}

/** No Python on this machine can `import ipykernel`. */
export class PythonNotFoundError extends KernelSetupError {
  constructor(tried: string[]) {
    super('RGPU_ERR_NO_IPYKERNEL',
      `no Python with ipykernel found (tried ${tried.join(', ') || 'nothing'}); ` +
      'install it (Debian: apt-get install python3-ipykernel) or set RGPU_PYTHON to such an interpreter');
    this.name = 'PythonNotFoundError';
  }
}

/** The kernel-proxy did not come up (or its socket never answered). */
export class ProxyStartError extends KernelSetupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RGPU_ERR_PROXY_START', message, options);
    this.name = 'ProxyStartError';
  }
}

/** Bad command-line usage of `rgpu kernel` / the launcher. */
export class KernelUsageError extends KernelSetupError {
  constructor(message: string) {
    super('RGPU_ERR_USAGE', message);
    this.name = 'KernelUsageError';
  }
}
