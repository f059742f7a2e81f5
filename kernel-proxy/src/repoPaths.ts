import * as path from 'node:path';

/** The checkout (or installed package) root: this file compiles to <root>/out/kernel-proxy/src. */
export function repoRoot(): string {
  return path.resolve(__dirname, '..', '..', '..');
}

/** Directory holding the intercept libcuda.so.1; RGPU_INTERCEPT_DIR overrides (packaged installs). */
export function interceptDir(): string {
  return process.env.RGPU_INTERCEPT_DIR || path.join(repoRoot(), 'gpu-runtime', 'intercept', 'build');
}

/** Directory holding the `remote_gpu` IPython extension package. */
export function pythonExtensionDir(): string {
  return path.join(repoRoot(), 'kernel-proxy', 'python');
}
