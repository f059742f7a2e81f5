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

/** Directory of the commands a process on the remote GPU finds on PATH (`nvidia-smi`). */
export function shimDir(): string {
  return path.join(repoRoot(), 'gpu-runtime', 'cli', 'shims');
}

/** `env` with shimDir() first on PATH, and the node that runs the shims (PATH may have none). */
export function withShims(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, PATH: env.PATH ? `${shimDir()}${path.delimiter}${env.PATH}` : shimDir(), REMOTE_GPU_NODE: process.execPath };
}
