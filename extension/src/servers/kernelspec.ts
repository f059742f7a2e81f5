// Installs the remote-gpu kernelspec into the extension's private Jupyter prefix through the runtime's own
// `rgpu kernel install` (so the launcher, intercept path and proxy socket are the runtime's business).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JupyterServerError } from '../common/errors';
import type { RuntimeLocation } from '../proxy/runtime';
import { KERNEL_NAME } from './localJupyter';

export interface KernelSpecRequest { prefix: string; socket: string; python: string; gpuType?: string }

export function installKernelSpecWithRuntime(rt: RuntimeLocation | undefined, r: KernelSpecRequest): void {
  if (!rt) { writePlainKernelSpec(r); return; }
  const args = [rt.cli, 'kernel', 'install', '--prefix', r.prefix, '--name', KERNEL_NAME, '--socket', r.socket, '--python', r.python];
  if (r.gpuType) args.push('--gpu', r.gpuType);
  const res = spawnSync(rt.node, args, { env: rt.nodeEnv, encoding: 'utf8', timeout: 30000 });
  if (res.status !== 0) {
    throw new JupyterServerError(`rgpu kernel install failed (${res.status ?? res.signal}): ${(res.stderr || res.stdout || '').trim().slice(0, 500)}`);
  }
}

/**
 * Without the runtime there is no launcher and no intercept library: the kernel still starts (so the user sees
 * the server and a clear message in the notebook) but has no GPU. The display name says so.
 */
export function writePlainKernelSpec(r: KernelSpecRequest): void {
  const dir = path.join(r.prefix, 'share', 'jupyter', 'kernels', KERNEL_NAME);
  fs.mkdirSync(dir, { recursive: true });
  const spec = {
    argv: [r.python, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
    display_name: 'Remote GPU (runtime not found: no GPU)',
    language: 'python',
    interrupt_mode: 'signal',
    env: { REMOTE_GPU_PROXY: r.socket },
    metadata: { remoteGpu: { gpuType: r.gpuType } },
  };
  fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify(spec, null, 1) + '\n');
}
